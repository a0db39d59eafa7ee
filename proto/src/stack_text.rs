//! Stack frames for human eyes, for the event table (`table`): one frame as
//! `symbol (module+0xoffset)`, control characters in module paths and symbols escaped.

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
}
