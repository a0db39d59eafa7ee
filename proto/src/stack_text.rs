//! User stacks for human eyes, shared by the tapper's table and the CLI's watch: one frame
//! as `symbol (module+0xoffset)`, or a stack as its innermost few names. Control characters
//! in module paths and symbols are escaped.

use crate::{text::escape_control, v1::StackFrame};

/// One frame: `name (module+0xoffset)`; `?` for an unknown name, the bare address when the
/// frame lies in no file mapping.
pub fn frame_text(frame: &StackFrame) -> String {
    let name = frame.symbol.as_deref().unwrap_or("?");
    let place = match (&frame.module, frame.offset) {
        (Some(module), Some(offset)) => format!("{module}+{offset:#x}"),
        _ => format!("{:#x}", frame.address),
    };
    escape_control(&format!("{name} ({place})")).into_owned()
}

/// The innermost `shown` frames' names, innermost first, joined by ` < ` (a caller after
/// its callee), with `< …` when frames were left out; unknown names show their address.
pub fn stack_summary(frames: &[StackFrame], shown: usize) -> String {
    let mut names: Vec<String> = frames
        .iter()
        .take(shown)
        .map(|f| match &f.symbol {
            Some(name) => escape_control(name).into_owned(),
            None => format!("{:#x}", f.address),
        })
        .collect();
    if frames.len() > shown {
        names.push("…".into());
    }
    names.join(" < ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(symbol: Option<&str>, module: Option<&str>) -> StackFrame {
        StackFrame {
            address: 0x5555_0000_1234,
            offset: module.map(|_| 0x1234),
            module: module.map(Into::into),
            symbol: symbol.map(Into::into),
            build_id: None,
        }
    }

    #[test]
    fn a_frame_shows_what_is_known() {
        assert_eq!(
            frame_text(&frame(Some("inner"), Some("/bin/w"))),
            "inner (/bin/w+0x1234)"
        );
        assert_eq!(
            frame_text(&frame(None, Some("/bin/w"))),
            "? (/bin/w+0x1234)"
        );
        assert_eq!(frame_text(&frame(None, None)), "? (0x555500001234)");
        assert_eq!(
            frame_text(&frame(Some("\x1b[2J"), None)),
            "\\x1b[2J (0x555500001234)"
        );
    }

    #[test]
    fn a_summary_keeps_the_innermost_names() {
        let frames = [
            frame(Some("inner"), Some("/bin/w")),
            frame(None, None),
            frame(Some("outer"), Some("/bin/w")),
        ];
        assert_eq!(stack_summary(&frames, 3), "inner < 0x555500001234 < outer");
        assert_eq!(stack_summary(&frames, 1), "inner < …");
        assert_eq!(stack_summary(&[], 3), "");
    }
}
