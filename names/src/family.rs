//! Address family names (`AF_INET`), from `<linux/socket.h>`, with the aliases `AF_LOCAL`
//! and `AF_ROUTE` and the short forms without `AF_` (`inet`).

use crate::{
    NameError, What,
    table::{Table, name_of, value_of},
};

/// Canonical names; each number once.
pub(crate) const FAMILIES: Table = &[
    (libc::AF_UNSPEC, "AF_UNSPEC"),
    (libc::AF_UNIX, "AF_UNIX"),
    (libc::AF_INET, "AF_INET"),
    (libc::AF_AX25, "AF_AX25"),
    (libc::AF_IPX, "AF_IPX"),
    (libc::AF_APPLETALK, "AF_APPLETALK"),
    (libc::AF_NETROM, "AF_NETROM"),
    (libc::AF_BRIDGE, "AF_BRIDGE"),
    (libc::AF_ATMPVC, "AF_ATMPVC"),
    (libc::AF_X25, "AF_X25"),
    (libc::AF_INET6, "AF_INET6"),
    (libc::AF_ROSE, "AF_ROSE"),
    (libc::AF_DECnet, "AF_DECnet"),
    (libc::AF_NETBEUI, "AF_NETBEUI"),
    (libc::AF_SECURITY, "AF_SECURITY"),
    (libc::AF_KEY, "AF_KEY"),
    (libc::AF_NETLINK, "AF_NETLINK"),
    (libc::AF_PACKET, "AF_PACKET"),
    (libc::AF_ASH, "AF_ASH"),
    (libc::AF_ECONET, "AF_ECONET"),
    (libc::AF_ATMSVC, "AF_ATMSVC"),
    (libc::AF_RDS, "AF_RDS"),
    (libc::AF_SNA, "AF_SNA"),
    (libc::AF_IRDA, "AF_IRDA"),
    (libc::AF_PPPOX, "AF_PPPOX"),
    (libc::AF_WANPIPE, "AF_WANPIPE"),
    (libc::AF_LLC, "AF_LLC"),
    (libc::AF_IB, "AF_IB"),
    (libc::AF_MPLS, "AF_MPLS"),
    (libc::AF_CAN, "AF_CAN"),
    (libc::AF_TIPC, "AF_TIPC"),
    (libc::AF_BLUETOOTH, "AF_BLUETOOTH"),
    (libc::AF_IUCV, "AF_IUCV"),
    (libc::AF_RXRPC, "AF_RXRPC"),
    (libc::AF_ISDN, "AF_ISDN"),
    (libc::AF_PHONET, "AF_PHONET"),
    (libc::AF_IEEE802154, "AF_IEEE802154"),
    (libc::AF_CAIF, "AF_CAIF"),
    (libc::AF_ALG, "AF_ALG"),
    (libc::AF_NFC, "AF_NFC"),
    (libc::AF_VSOCK, "AF_VSOCK"),
    (41, "AF_KCM"),
    (42, "AF_QIPCRTR"),
    (43, "AF_SMC"),
    (libc::AF_XDP, "AF_XDP"),
    (45, "AF_MCTP"),
];

/// Other names `<sys/socket.h>` gives the same numbers; they parse but never print.
const ALIASES: Table = &[(libc::AF_LOCAL, "AF_LOCAL"), (libc::AF_NETLINK, "AF_ROUTE")];

/// Largest family number accepted as a number.
const MAX_FAMILY: i32 = 255;

/// `AF_INET`, or the number when the family is unknown.
pub fn family_name(family: i32) -> String {
    name_of(FAMILIES, family).map_or_else(|| family.to_string(), str::to_owned)
}

/// `AF_INET`, `inet`, `af_local` (any case, `AF_` optional) or a number in 0..=255.
pub fn parse_family(text: &str) -> Result<i32, NameError> {
    let text = text.trim();
    if let Some(number) = NameError::number(What::Family, text, 0, MAX_FAMILY) {
        return number;
    }
    let full = if text.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("AF_")) {
        text.to_owned()
    } else {
        format!("AF_{text}")
    };
    value_of(FAMILIES, &full)
        .or_else(|| value_of(ALIASES, &full))
        .ok_or_else(|| NameError::unknown(What::Family, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips() {
        for (n, name) in FAMILIES {
            assert_eq!(family_name(*n), *name);
            assert_eq!(parse_family(name), Ok(*n), "{name}");
            assert_eq!(parse_family(&name[3..].to_lowercase()), Ok(*n), "{name}");
        }
        for n in -1..=300 {
            if name_of(FAMILIES, n).is_none() {
                assert_eq!(family_name(n), n.to_string());
            }
        }
    }

    #[test]
    fn aliases_and_short_forms_parse() {
        assert_eq!(parse_family("AF_LOCAL"), Ok(libc::AF_UNIX));
        assert_eq!(parse_family("af_route"), Ok(libc::AF_NETLINK));
        assert_eq!(parse_family("inet"), Ok(2));
        assert_eq!(parse_family("AF_DECNET"), Ok(libc::AF_DECnet));
        assert_eq!(parse_family("17"), Ok(17));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(
            parse_family("9999").unwrap_err().to_string(),
            "address family number 9999 is out of range 0..255 (use e.g. AF_INET or 2)"
        );
        assert_eq!(
            parse_family("AF_BOGUS").unwrap_err().to_string(),
            r#"unknown address family name "AF_BOGUS" (use e.g. AF_INET or 2)"#
        );
        assert!(parse_family("-1").is_err());
        assert!(parse_family("").is_err());
    }
}
