//! errno names (`EMFILE`) and messages, from the C library's table through `nix`, plus the
//! aliases that name the same number as a canonical errno.

use std::{collections::HashMap, sync::OnceLock};

use nix::errno::Errno;

use crate::{NameError, What};

/// Largest errno the kernel can return (`MAX_ERRNO`).
pub const MAX_ERRNO: i32 = 4095;

/// Alternative spellings of a canonical errno; they parse but never print.
const ALIASES: &[(&str, i32)] = &[
    ("EWOULDBLOCK", libc::EWOULDBLOCK),
    ("EDEADLOCK", libc::EDEADLOCK),
    ("ENOTSUP", libc::ENOTSUP),
];

/// Symbolic errno name (`EMFILE`), or the number when the C library does not know it.
pub fn errno_name(errno: i32) -> String {
    match Errno::from_raw(errno) {
        Errno::UnknownErrno => errno.to_string(),
        known => format!("{known:?}"),
    }
}

/// The C library's message for an errno ("Too many open files").
pub fn errno_message(errno: i32) -> &'static str {
    Errno::from_raw(errno).desc()
}

/// Every name that parses, canonical ones and aliases, upper case.
fn by_name() -> &'static HashMap<String, i32> {
    static TABLE: OnceLock<HashMap<String, i32>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let canonical = (1..=MAX_ERRNO)
            .filter(|&n| Errno::from_raw(n) != Errno::UnknownErrno)
            .map(|n| (errno_name(n), n));
        let aliases = ALIASES.iter().map(|(name, n)| ((*name).to_owned(), *n));
        canonical.chain(aliases).collect()
    })
}

/// `EMFILE`, `emfile`, an alias such as `ENOTSUP`, or a number in 1..=4095.
pub fn parse_errno(text: &str) -> Result<i32, NameError> {
    let text = text.trim();
    if let Some(number) = NameError::number(What::Errno, text, 1, MAX_ERRNO) {
        return number;
    }
    by_name()
        .get(&text.to_ascii_uppercase())
        .copied()
        .ok_or_else(|| NameError::unknown(What::Errno, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printed_name_parses_back() {
        for n in 1..=MAX_ERRNO {
            assert_eq!(parse_errno(&errno_name(n)), Ok(n), "{n}");
        }
    }

    #[test]
    fn aliases_parse_to_their_canonical_number() {
        for (alias, n) in ALIASES {
            assert_eq!(parse_errno(alias), Ok(*n));
            assert_eq!(parse_errno(&alias.to_lowercase()), Ok(*n));
        }
        assert_eq!(parse_errno("ENOTSUP"), Ok(libc::EOPNOTSUPP));
        assert_eq!(parse_errno("ENOTSUP"), parse_errno("EOPNOTSUPP"));
        assert_eq!(parse_errno("EWOULDBLOCK"), Ok(libc::EAGAIN));
        assert_eq!(parse_errno("EDEADLOCK"), Ok(libc::EDEADLK));
    }

    #[test]
    fn names_print_and_parse_in_any_case() {
        assert_eq!(errno_name(libc::EMFILE), "EMFILE");
        assert_eq!(errno_name(libc::EOPNOTSUPP), "EOPNOTSUPP");
        assert_eq!(errno_message(libc::EMFILE), "Too many open files");
        assert_eq!(errno_name(3000), "3000");
        assert_eq!(parse_errno(" enobufs "), Ok(libc::ENOBUFS));
        assert_eq!(parse_errno("24"), Ok(24));
    }

    #[test]
    fn bad_input_says_what_and_gives_an_example() {
        assert_eq!(
            parse_errno("EFOO").unwrap_err().to_string(),
            r#"unknown errno name "EFOO" (use e.g. EMFILE or 24)"#
        );
        assert_eq!(
            parse_errno("0").unwrap_err().to_string(),
            "errno number 0 is out of range 1..4095 (use e.g. EMFILE or 24)"
        );
        assert!(parse_errno("-3").is_err());
        assert!(parse_errno("4096").is_err());
        assert!(parse_errno("99999999999").is_err());
        assert!(parse_errno("").is_err());
    }
}
