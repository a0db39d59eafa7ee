//! Parses errno and address-family filter values given as names ("EMFILE", "AF_INET") or
//! numbers; errno names come from `nix::errno::Errno`.

use std::{collections::HashMap, sync::OnceLock};

use nix::errno::Errno;

/// Linux address families by number (linux/socket.h).
const FAMILIES: &[(&str, i32)] = &[
    ("AF_UNSPEC", 0),
    ("AF_UNIX", 1),
    ("AF_LOCAL", 1),
    ("AF_INET", 2),
    ("AF_AX25", 3),
    ("AF_IPX", 4),
    ("AF_APPLETALK", 5),
    ("AF_NETROM", 6),
    ("AF_BRIDGE", 7),
    ("AF_ATMPVC", 8),
    ("AF_X25", 9),
    ("AF_INET6", 10),
    ("AF_ROSE", 11),
    ("AF_DECNET", 12),
    ("AF_NETBEUI", 13),
    ("AF_SECURITY", 14),
    ("AF_KEY", 15),
    ("AF_NETLINK", 16),
    ("AF_ROUTE", 16),
    ("AF_PACKET", 17),
    ("AF_ASH", 18),
    ("AF_ECONET", 19),
    ("AF_ATMSVC", 20),
    ("AF_RDS", 21),
    ("AF_SNA", 22),
    ("AF_IRDA", 23),
    ("AF_PPPOX", 24),
    ("AF_WANPIPE", 25),
    ("AF_LLC", 26),
    ("AF_IB", 27),
    ("AF_MPLS", 28),
    ("AF_CAN", 29),
    ("AF_TIPC", 30),
    ("AF_BLUETOOTH", 31),
    ("AF_IUCV", 32),
    ("AF_RXRPC", 33),
    ("AF_ISDN", 34),
    ("AF_PHONET", 35),
    ("AF_IEEE802154", 36),
    ("AF_CAIF", 37),
    ("AF_ALG", 38),
    ("AF_NFC", 39),
    ("AF_VSOCK", 40),
    ("AF_KCM", 41),
    ("AF_QIPCRTR", 42),
    ("AF_SMC", 43),
    ("AF_XDP", 44),
    ("AF_MCTP", 45),
];

fn errno_table() -> &'static HashMap<String, i32> {
    static TABLE: OnceLock<HashMap<String, i32>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (1..4096)
            .map(Errno::from_raw)
            .filter(|e| *e != Errno::UnknownErrno)
            .map(|e| (format!("{e:?}"), e as i32))
            .collect()
    })
}

/// `"EMFILE"` (any case) or `"24"` → 24. `Err` says why, without the field name.
pub fn parse_errno(text: &str) -> Result<i32, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i32>() {
        return if (1..4096).contains(&n) {
            Ok(n)
        } else {
            Err(format!("errno number {n} is out of range 1..4095"))
        };
    }
    errno_table()
        .get(&t.to_ascii_uppercase())
        .copied()
        .ok_or_else(|| format!("unknown errno name {t:?} (use e.g. EMFILE or 24)"))
}

/// `"AF_INET"`, `"inet"` (any case) or `"2"` → 2.
pub fn parse_family(text: &str) -> Result<i32, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i32>() {
        return if (0..=255).contains(&n) {
            Ok(n)
        } else {
            Err(format!("family number {n} is out of range 0..255"))
        };
    }
    let upper = t.to_ascii_uppercase();
    let name = if upper.starts_with("AF_") {
        upper
    } else {
        format!("AF_{upper}")
    };
    FAMILIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| format!("unknown address family {t:?} (use e.g. AF_INET or 2)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_names_and_numbers() {
        assert_eq!(parse_errno("EMFILE"), Ok(24));
        assert_eq!(parse_errno("eafnosupport"), Ok(97));
        assert_eq!(parse_errno("24"), Ok(24));
        assert!(
            parse_errno("EFOO")
                .unwrap_err()
                .contains("unknown errno name")
        );
        assert!(parse_errno("0").is_err());
        assert!(parse_errno("-3").is_err());
    }

    #[test]
    fn family_names_and_numbers() {
        assert_eq!(parse_family("AF_INET6"), Ok(10));
        assert_eq!(parse_family("inet"), Ok(2));
        assert_eq!(
            parse_family("9999"),
            Err("family number 9999 is out of range 0..255".into())
        );
        assert_eq!(parse_family("17"), Ok(17));
        assert!(parse_family("AF_BOGUS").is_err());
    }
}
