//! Control characters made visible, for every human-readable rendering of event and hub
//! strings (the tapper's table, the CLI's tables). Those strings come from unprivileged
//! processes (`comm`, `exe`, `cmdline`) or remote tappers (node names), so printed raw they
//! could drive the operator's terminal (`ESC[2J`, `ESC]0;…BEL`). It lives here because the
//! tapper and the CLI both render these messages and both already depend on this crate;
//! JSON output needs none of it (serde_json escapes control characters itself).

use std::{borrow::Cow, fmt::Write};

/// `text` with C0 controls, DEL and `\` escaped as `\xHH` / `\\`, and C1 controls as
/// `\u{HH}`; borrowed unchanged when there is nothing to escape.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\0'..='\x1f' | '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            '\u{80}'..='\u{9f}' => {
                let _ = write!(out, "\\u{{{:02x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c == '\\' || c.is_control()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_sequences_become_visible() {
        assert_eq!(escape_control("\x1b[2Jevil"), "\\x1b[2Jevil");
        assert_eq!(escape_control("\x1b]0;title\x07"), "\\x1b]0;title\\x07");
        assert_eq!(escape_control("a\tb\nc\rd\x7f"), "a\\x09b\\x0ac\\x0dd\\x7f");
        assert_eq!(escape_control("\u{9b}2J"), "\\u{9b}2J");
        assert_eq!(escape_control("back\\slash"), "back\\\\slash");
    }

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for plain in ["nginx", "/usr/bin/python3 -c x", "héllo \u{fffd} 日本", ""] {
            assert!(matches!(escape_control(plain), Cow::Borrowed(t) if t == plain));
        }
    }
}
