//! Socket type names: the base type in the low four bits (`SOCK_STREAM`) and the flags
//! above them (`SOCK_CLOEXEC`), printed and parsed as `SOCK_STREAM|SOCK_CLOEXEC`.

use std::fmt::Write;

use crate::{
    NameError, What,
    table::{Table, name_of, value_of},
};

/// Base socket types (the low four bits of `type`).
const BASES: Table = &[
    (libc::SOCK_STREAM, "SOCK_STREAM"),
    (libc::SOCK_DGRAM, "SOCK_DGRAM"),
    (libc::SOCK_RAW, "SOCK_RAW"),
    (libc::SOCK_RDM, "SOCK_RDM"),
    (libc::SOCK_SEQPACKET, "SOCK_SEQPACKET"),
    (libc::SOCK_DCCP, "SOCK_DCCP"),
    (10, "SOCK_PACKET"),
];

/// Flags the kernel accepts in the `type` argument.
const FLAGS: Table = &[
    (libc::SOCK_CLOEXEC, "SOCK_CLOEXEC"),
    (libc::SOCK_NONBLOCK, "SOCK_NONBLOCK"),
];

const BASE_MASK: i32 = 0xf;

/// `SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK`; an unknown base prints as its number, unknown
/// flag bits as hex.
pub fn type_name(sock_type: i32) -> String {
    let base = sock_type & BASE_MASK;
    // One string, grown in place: this runs for every event.
    let mut name = name_of(BASES, base).map_or_else(|| base.to_string(), str::to_owned);
    let mut rest = sock_type & !BASE_MASK;
    for (bit, flag) in FLAGS {
        if rest & bit != 0 {
            name.push('|');
            name.push_str(flag);
            rest &= !bit;
        }
    }
    if rest != 0 {
        // Writing to a String cannot fail.
        let _ = write!(name, "|{rest:#x}");
    }
    name
}

/// What [`type_name`] prints, any case: `|`-separated names, decimal numbers or hex bits.
pub fn parse_type(text: &str) -> Result<i32, NameError> {
    let text = text.trim();
    let mut value = 0i32;
    for part in text.split('|').map(str::trim) {
        let bits = value_of(BASES, part)
            .or_else(|| value_of(FLAGS, part))
            .or_else(|| part.parse::<i32>().ok())
            .or_else(|| {
                let hex = part
                    .strip_prefix("0x")
                    .or_else(|| part.strip_prefix("0X"))?;
                // Bits, as `{:#x}` prints them: a negative type shows its sign bit.
                u32::from_str_radix(hex, 16).ok().map(|bits| bits as i32)
            })
            .ok_or_else(|| NameError::unknown(What::Type, text))?;
        value |= bits;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_and_flags_print() {
        assert_eq!(type_name(libc::SOCK_STREAM), "SOCK_STREAM");
        assert_eq!(
            type_name(libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK),
            "SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK"
        );
        // 12345 = 0x3039: base 9 is unknown, 0x3030 are unknown flag bits.
        assert_eq!(type_name(12345), "9|0x3030");
    }

    #[test]
    fn every_printed_type_parses_back() {
        let flags = [
            0,
            libc::SOCK_CLOEXEC,
            libc::SOCK_NONBLOCK,
            0x3030,
            !BASE_MASK,
        ];
        for base in 0..=BASE_MASK {
            for flag in flags {
                let raw = base | flag;
                assert_eq!(parse_type(&type_name(raw)), Ok(raw), "{}", type_name(raw));
            }
        }
        assert_eq!(
            parse_type("sock_dgram|sock_cloexec"),
            Ok(libc::SOCK_DGRAM | libc::SOCK_CLOEXEC)
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(
            parse_type("SOCK_STREAM|SOCK_BOGUS")
                .unwrap_err()
                .to_string(),
            r#"unknown socket type name "SOCK_STREAM|SOCK_BOGUS" (use e.g. SOCK_STREAM|SOCK_CLOEXEC or 1)"#
        );
        assert!(parse_type("").is_err());
    }
}
