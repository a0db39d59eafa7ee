//! The byte limits of an event's strings, one set for both sides: the tapper cuts its
//! strings to them before sending (naming each cut field in `Event.truncated`) and the hub
//! rejects anything beyond them. They keep one event, and so one batch, small.

use crate::v1::Event;

/// `comm`: the kernel keeps 15 bytes; after lossy UTF-8 conversion at most 45.
pub const COMM: usize = 64;
/// `exe`: a path (PATH_MAX).
pub const EXE: usize = 4096;
/// `cmdline`: the arguments joined with spaces.
pub const CMDLINE: usize = 4096;
/// `family_name`, `type_name`, `protocol_name`, `errno_name` and `probe`.
pub const NAME: usize = 128;
/// `message` (strerror text).
pub const MESSAGE: usize = 256;

/// `user_stack`: at most this many frames (the kernel captures up to 32).
pub const STACK_FRAMES: usize = 32;
/// `StackFrame.module` (a path); longer paths are cut.
pub const STACK_MODULE: usize = 1024;
/// `StackFrame.symbol` (a demangled name); longer names are cut.
pub const STACK_SYMBOL: usize = 512;

/// `truncated`: at most this many field names (the string fields of an event).
pub const TRUNCATED: usize = 9;

/// Cuts `text` to at most `max` bytes at a character boundary; true if it was cut.
pub fn truncate(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    text.truncate(text.floor_char_boundary(max));
    true
}

/// Cuts every string of `event` to its limit and adds each cut field's name to
/// `event.truncated` (once, in field order).
pub fn truncate_event(event: &mut Event) {
    let cut: Vec<&'static str> = [
        ("comm", &mut event.comm, COMM),
        ("exe", &mut event.exe, EXE),
        ("cmdline", &mut event.cmdline, CMDLINE),
        ("family_name", &mut event.family_name, NAME),
        ("type_name", &mut event.type_name, NAME),
        ("protocol_name", &mut event.protocol_name, NAME),
        ("errno_name", &mut event.errno_name, NAME),
        ("message", &mut event.message, MESSAGE),
        ("probe", &mut event.probe, NAME),
    ]
    .into_iter()
    .filter_map(|(name, text, max)| truncate(text, max).then_some(name))
    .collect();
    for name in cut {
        if !event.truncated.iter().any(|t| t == name) {
            event.truncated.push(name.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_a_character_boundary_and_says_so() {
        let mut ascii = "abcdef".to_owned();
        assert!(!truncate(&mut ascii, 6));
        assert!(truncate(&mut ascii, 4));
        assert_eq!(ascii, "abcd");
        // U+FFFD is 3 bytes: 2 of them do not fit in 5 bytes, and half of one is not kept.
        let mut replaced = "\u{fffd}\u{fffd}".to_owned();
        assert!(truncate(&mut replaced, 5));
        assert_eq!(replaced, "\u{fffd}");
    }

    #[test]
    fn lossy_conversion_growth_is_cut_after_converting() {
        // 2,000 invalid bytes become 6,000 bytes of U+FFFD.
        let mut exe = String::from_utf8_lossy(&[0xff; 2000]).into_owned();
        assert_eq!(exe.len(), 6000);
        assert!(truncate(&mut exe, EXE));
        assert_eq!(exe.len(), EXE / 3 * 3);
        assert!(exe.chars().all(|c| c == '\u{fffd}'));
    }

    #[test]
    fn an_event_names_each_cut_field_once() {
        let mut event = Event {
            comm: "c".repeat(COMM),
            exe: "e".repeat(EXE + 1),
            cmdline: "a".repeat(200_000),
            truncated: vec!["cmdline".into()],
            ..Default::default()
        };
        truncate_event(&mut event);
        assert_eq!((event.comm.len(), event.exe.len()), (COMM, EXE));
        assert_eq!(event.cmdline.len(), CMDLINE);
        assert_eq!(event.truncated, ["cmdline", "exe"]);
    }
}
