//! Turns the raw numbers of a `socket()` call into the names operators know:
//! `AF_INET`, `SOCK_STREAM|SOCK_CLOEXEC`, `IPPROTO_TCP`, `EMFILE`.
//! Unknown values decode to their decimal number, so nothing is ever hidden.

use nix::errno::Errno;

/// Address family names, from `<sys/socket.h>`.
const FAMILIES: &[(i32, &str)] = &[
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

/// Base socket types (the low four bits of `type`).
const SOCK_TYPES: &[(i32, &str)] = &[
    (libc::SOCK_STREAM, "SOCK_STREAM"),
    (libc::SOCK_DGRAM, "SOCK_DGRAM"),
    (libc::SOCK_RAW, "SOCK_RAW"),
    (libc::SOCK_RDM, "SOCK_RDM"),
    (libc::SOCK_SEQPACKET, "SOCK_SEQPACKET"),
    (libc::SOCK_DCCP, "SOCK_DCCP"),
    (10, "SOCK_PACKET"),
];

/// Flags the kernel accepts in the `type` argument.
const SOCK_FLAGS: &[(i32, &str)] = &[
    (libc::SOCK_CLOEXEC, "SOCK_CLOEXEC"),
    (libc::SOCK_NONBLOCK, "SOCK_NONBLOCK"),
];

const SOCK_TYPE_MASK: i32 = 0xf;

/// IP protocol numbers, for `AF_INET` and `AF_INET6`.
const IP_PROTOCOLS: &[(i32, &str)] = &[
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
const NETLINK_PROTOCOLS: &[(i32, &str)] = &[
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

fn lookup(table: &[(i32, &'static str)], value: i32) -> Option<&'static str> {
    table
        .iter()
        .find(|(v, _)| *v == value)
        .map(|(_, name)| *name)
}

/// `AF_INET`, or the number when the family is unknown.
pub fn family_name(family: i32) -> String {
    lookup(FAMILIES, family).map_or_else(|| family.to_string(), str::to_owned)
}

/// `SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK`; unknown bits are kept as hex.
pub fn type_name(sock_type: i32) -> String {
    let base = sock_type & SOCK_TYPE_MASK;
    let mut parts = vec![lookup(SOCK_TYPES, base).map_or_else(|| base.to_string(), str::to_owned)];
    let mut rest = sock_type & !SOCK_TYPE_MASK;
    for (bit, name) in SOCK_FLAGS {
        if rest & bit != 0 {
            parts.push((*name).to_owned());
            rest &= !bit;
        }
    }
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    parts.join("|")
}

/// The protocol's name in the namespace its family gives it, or the number.
pub fn protocol_name(family: i32, protocol: i32) -> String {
    let table = match family {
        libc::AF_INET | libc::AF_INET6 => IP_PROTOCOLS,
        libc::AF_NETLINK => NETLINK_PROTOCOLS,
        _ => &[],
    };
    lookup(table, protocol).map_or_else(|| protocol.to_string(), str::to_owned)
}

/// Symbolic errno name (`EMFILE`), or the number when the kernel sent one libc does not know.
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

/// Alternative spellings that name the same number as a canonical errno.
const ERRNO_ALIASES: &[(&str, i32)] = &[
    ("EWOULDBLOCK", libc::EWOULDBLOCK),
    ("EDEADLOCK", libc::EDEADLOCK),
    ("ENOTSUP", libc::ENOTSUP),
];

/// Largest errno the kernel can return (`MAX_ERRNO`).
pub const MAX_ERRNO: i32 = 4095;

/// Parses `EMFILE`, `emfile` or `24`.
pub fn parse_errno(text: &str) -> Option<i32> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i32>() {
        return (1..=MAX_ERRNO).contains(&n).then_some(n);
    }
    let upper = text.to_ascii_uppercase();
    if let Some((_, n)) = ERRNO_ALIASES.iter().find(|(name, _)| *name == upper) {
        return Some(*n);
    }
    (1..=MAX_ERRNO).find(|&n| errno_name(n) == upper)
}

/// A short readable name for a duration in nanoseconds (`12.3µs`).
pub fn duration_text(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{:.1}µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}ms", ns as f64 / 1e6),
        _ => format!("{:.2}s", ns as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_decode_to_names_and_unknown_ones_to_numbers() {
        assert_eq!(family_name(2), "AF_INET");
        assert_eq!(family_name(10), "AF_INET6");
        assert_eq!(family_name(16), "AF_NETLINK");
        assert_eq!(family_name(9999), "9999");
        assert_eq!(family_name(-1), "-1");
    }

    #[test]
    fn types_decode_base_and_flags() {
        assert_eq!(type_name(libc::SOCK_STREAM), "SOCK_STREAM");
        assert_eq!(
            type_name(libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK),
            "SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK"
        );
        assert_eq!(
            type_name(libc::SOCK_DGRAM | libc::SOCK_CLOEXEC),
            "SOCK_DGRAM|SOCK_CLOEXEC"
        );
        // 12345 = 0x3039: base 9 is unknown, 0x3030 are unknown flag bits.
        assert_eq!(type_name(12345), "9|0x3030");
    }

    #[test]
    fn protocols_decode_within_their_family() {
        assert_eq!(protocol_name(libc::AF_INET, 6), "IPPROTO_TCP");
        assert_eq!(protocol_name(libc::AF_INET6, 17), "IPPROTO_UDP");
        assert_eq!(protocol_name(libc::AF_INET, 0), "IPPROTO_IP");
        assert_eq!(protocol_name(libc::AF_INET, 200), "200");
        assert_eq!(protocol_name(libc::AF_NETLINK, 0), "NETLINK_ROUTE");
        assert_eq!(protocol_name(libc::AF_UNIX, 0), "0");
    }

    #[test]
    fn errnos_decode_to_name_and_message() {
        assert_eq!(errno_name(libc::EMFILE), "EMFILE");
        assert_eq!(errno_message(libc::EMFILE), "Too many open files");
        assert_eq!(errno_name(libc::EAFNOSUPPORT), "EAFNOSUPPORT");
        assert_eq!(errno_name(libc::EPROTONOSUPPORT), "EPROTONOSUPPORT");
        assert_eq!(errno_name(3000), "3000");
    }

    #[test]
    fn errnos_parse_from_names_aliases_and_numbers() {
        assert_eq!(parse_errno("EMFILE"), Some(libc::EMFILE));
        assert_eq!(parse_errno("enobufs"), Some(libc::ENOBUFS));
        assert_eq!(parse_errno("24"), Some(24));
        assert_eq!(parse_errno("EWOULDBLOCK"), Some(libc::EAGAIN));
        assert_eq!(parse_errno("ENOTSUP"), Some(libc::EOPNOTSUPP));
        assert_eq!(parse_errno("EFOO"), None);
        assert_eq!(parse_errno("0"), None);
        assert_eq!(parse_errno("4096"), None);
    }

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(duration_text(999), "999ns");
        assert_eq!(duration_text(12_345), "12.3µs");
        assert_eq!(duration_text(2_500_000), "2.5ms");
        assert_eq!(duration_text(3_000_000_000), "3.00s");
    }
}
