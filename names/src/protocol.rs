//! Protocol names, which depend on the family: `IPPROTO_*` for `AF_INET`/`AF_INET6`,
//! `NETLINK_*` for `AF_NETLINK`; other families have no protocol names.

use crate::{
    NameError, What,
    table::{Table, name_of, value_of},
};

/// IP protocol numbers, for `AF_INET` and `AF_INET6`.
const IP: Table = &[
    (libc::IPPROTO_IP, "IPPROTO_IP"),
    (libc::IPPROTO_ICMP, "IPPROTO_ICMP"),
    (libc::IPPROTO_IGMP, "IPPROTO_IGMP"),
    (libc::IPPROTO_IPIP, "IPPROTO_IPIP"),
    (libc::IPPROTO_TCP, "IPPROTO_TCP"),
    (libc::IPPROTO_EGP, "IPPROTO_EGP"),
    (libc::IPPROTO_PUP, "IPPROTO_PUP"),
    (libc::IPPROTO_UDP, "IPPROTO_UDP"),
    (libc::IPPROTO_IDP, "IPPROTO_IDP"),
    (libc::IPPROTO_TP, "IPPROTO_TP"),
    (libc::IPPROTO_DCCP, "IPPROTO_DCCP"),
    (libc::IPPROTO_IPV6, "IPPROTO_IPV6"),
    (libc::IPPROTO_RSVP, "IPPROTO_RSVP"),
    (libc::IPPROTO_GRE, "IPPROTO_GRE"),
    (libc::IPPROTO_ESP, "IPPROTO_ESP"),
    (libc::IPPROTO_AH, "IPPROTO_AH"),
    (libc::IPPROTO_ICMPV6, "IPPROTO_ICMPV6"),
    (libc::IPPROTO_MTP, "IPPROTO_MTP"),
    (libc::IPPROTO_BEETPH, "IPPROTO_BEETPH"),
    (libc::IPPROTO_ENCAP, "IPPROTO_ENCAP"),
    (libc::IPPROTO_PIM, "IPPROTO_PIM"),
    (libc::IPPROTO_COMP, "IPPROTO_COMP"),
    (libc::IPPROTO_SCTP, "IPPROTO_SCTP"),
    (libc::IPPROTO_UDPLITE, "IPPROTO_UDPLITE"),
    (libc::IPPROTO_MPLS, "IPPROTO_MPLS"),
    (libc::IPPROTO_RAW, "IPPROTO_RAW"),
    (libc::IPPROTO_MPTCP, "IPPROTO_MPTCP"),
];

/// Netlink protocol families, for `AF_NETLINK`.
const NETLINK: Table = &[
    (libc::NETLINK_ROUTE, "NETLINK_ROUTE"),
    (libc::NETLINK_UNUSED, "NETLINK_UNUSED"),
    (libc::NETLINK_USERSOCK, "NETLINK_USERSOCK"),
    (libc::NETLINK_FIREWALL, "NETLINK_FIREWALL"),
    (libc::NETLINK_SOCK_DIAG, "NETLINK_SOCK_DIAG"),
    (libc::NETLINK_NFLOG, "NETLINK_NFLOG"),
    (libc::NETLINK_XFRM, "NETLINK_XFRM"),
    (libc::NETLINK_SELINUX, "NETLINK_SELINUX"),
    (libc::NETLINK_ISCSI, "NETLINK_ISCSI"),
    (libc::NETLINK_AUDIT, "NETLINK_AUDIT"),
    (libc::NETLINK_FIB_LOOKUP, "NETLINK_FIB_LOOKUP"),
    (libc::NETLINK_CONNECTOR, "NETLINK_CONNECTOR"),
    (libc::NETLINK_NETFILTER, "NETLINK_NETFILTER"),
    (libc::NETLINK_IP6_FW, "NETLINK_IP6_FW"),
    (libc::NETLINK_DNRTMSG, "NETLINK_DNRTMSG"),
    (libc::NETLINK_KOBJECT_UEVENT, "NETLINK_KOBJECT_UEVENT"),
    (libc::NETLINK_GENERIC, "NETLINK_GENERIC"),
    (libc::NETLINK_SCSITRANSPORT, "NETLINK_SCSITRANSPORT"),
    (libc::NETLINK_ECRYPTFS, "NETLINK_ECRYPTFS"),
    (libc::NETLINK_RDMA, "NETLINK_RDMA"),
    (libc::NETLINK_CRYPTO, "NETLINK_CRYPTO"),
];

/// The protocol names of a family; empty for families without any.
fn table(family: i32) -> Table {
    match family {
        libc::AF_INET | libc::AF_INET6 => IP,
        libc::AF_NETLINK => NETLINK,
        _ => &[],
    }
}

/// The protocol's name in the namespace its family gives it, or the number.
pub fn protocol_name(family: i32, protocol: i32) -> String {
    name_of(table(family), protocol).map_or_else(|| protocol.to_string(), str::to_owned)
}

/// A protocol name of `family` (any case) or any number.
pub fn parse_protocol(family: i32, text: &str) -> Result<i32, NameError> {
    let text = text.trim();
    text.parse::<i32>()
        .ok()
        .or_else(|| value_of(table(family), text))
        .ok_or_else(|| NameError::unknown(What::Protocol, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_print_within_their_family() {
        assert_eq!(protocol_name(libc::AF_INET, 6), "IPPROTO_TCP");
        assert_eq!(protocol_name(libc::AF_INET6, 17), "IPPROTO_UDP");
        assert_eq!(protocol_name(libc::AF_INET, 200), "200");
        assert_eq!(protocol_name(libc::AF_NETLINK, 0), "NETLINK_ROUTE");
        assert_eq!(protocol_name(libc::AF_UNIX, 0), "0");
    }

    #[test]
    fn every_printed_protocol_parses_back() {
        for family in [
            libc::AF_INET,
            libc::AF_INET6,
            libc::AF_NETLINK,
            libc::AF_UNIX,
        ] {
            for protocol in -1..=300 {
                let name = protocol_name(family, protocol);
                assert_eq!(parse_protocol(family, &name), Ok(protocol), "{name}");
            }
        }
        assert_eq!(parse_protocol(libc::AF_INET, "ipproto_tcp"), Ok(6));
    }

    #[test]
    fn names_of_another_family_are_errors() {
        assert_eq!(
            parse_protocol(libc::AF_UNIX, "IPPROTO_TCP")
                .unwrap_err()
                .to_string(),
            r#"unknown protocol name "IPPROTO_TCP" (use e.g. IPPROTO_TCP or 6)"#
        );
        assert!(parse_protocol(libc::AF_NETLINK, "IPPROTO_TCP").is_err());
    }
}
