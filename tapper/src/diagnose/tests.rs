//! Each rule against its evidence: the cause it names and the numbers in its sentence.

use tapper_proto::v1::{Event, Limits, Quota, Warning};

use super::{diagnose, diagnose_warning};

/// A failed call as the tapper builds it: names decoded, in `probe` mode, entry seen
/// (a duration) where the mode has one.
fn event(errno: i32, family: i32, sock_type: i32, protocol: i32, probe: &str) -> Event {
    Event {
        errno,
        errno_name: tapper_names::errno_name(errno),
        family: Some(family),
        family_name: tapper_names::family_name(family),
        r#type: Some(sock_type),
        type_name: tapper_names::type_name(sock_type),
        protocol: Some(protocol),
        protocol_name: tapper_names::protocol_name(family, protocol),
        probe: probe.into(),
        source: "syscall".into(),
        duration_ns: matches!(probe, "tracepoint" | "kprobe").then_some(1500),
        uid: 1000,
        ..Default::default()
    }
}

fn cause_and_text(e: &Event) -> (String, String) {
    let d = diagnose(e);
    (d.cause, d.text)
}

fn assert_cause(e: &Event, cause: &str, needles: &[&str]) {
    let (got, text) = cause_and_text(e);
    assert_eq!(got, cause, "{text}");
    for needle in needles {
        assert!(text.contains(needle), "`{needle}` not in: {text}");
    }
}

const NET_RAW: u64 = 1 << 13;
const SYS_ADMIN: u64 = 1 << 21;

#[test]
fn emfile_at_the_limit_names_the_numbers_and_the_fix() {
    let mut e = event(
        libc::EMFILE,
        libc::AF_INET,
        libc::SOCK_DGRAM,
        0,
        "exit-only",
    );
    e.limits = Some(Limits {
        nofile_soft: Some(64),
        nofile_hard: Some(64),
        open_fds: Some(64),
    });
    assert_eq!(
        cause_and_text(&e),
        (
            "rlimit_nofile".into(),
            "open fds 64 of RLIMIT_NOFILE 64 (hard 64): the process is at its descriptor \
             limit; raise LimitNOFILE/ulimit -n or look for a descriptor leak"
                .into()
        )
    );
}

#[test]
fn emfile_with_fewer_fds_or_missing_limits_says_what_it_saw() {
    let mut e = event(
        libc::EMFILE,
        libc::AF_INET,
        libc::SOCK_DGRAM,
        0,
        "tracepoint",
    );
    e.limits = Some(Limits {
        nofile_soft: Some(64),
        nofile_hard: Some(4096),
        open_fds: Some(40),
    });
    assert_cause(
        &e,
        "rlimit_nofile",
        &[
            "open fds 40 of RLIMIT_NOFILE 64 (hard 4096)",
            "closed some since",
        ],
    );
    e.limits = Some(Limits {
        nofile_soft: Some(64),
        ..Default::default()
    });
    assert_cause(
        &e,
        "rlimit_nofile",
        &["RLIMIT_NOFILE 64, open fds not read"],
    );
    e.limits = None;
    assert_cause(&e, "rlimit_nofile", &["RLIMIT_NOFILE not read", "gone"]);
}

#[test]
fn enfile_is_file_max_with_the_system_numbers() {
    let mut e = event(
        libc::ENFILE,
        libc::AF_INET,
        libc::SOCK_STREAM,
        0,
        "exit-only",
    );
    e.quota = Some(Quota {
        file_nr: Some(9_998),
        file_max: Some(10_000),
        ..Default::default()
    });
    assert_cause(
        &e,
        "file_max",
        &[
            "system file handles 9998 of fs.file-max 10000",
            "raise fs.file-max",
        ],
    );
    e.quota = Some(Quota {
        file_nr: Some(1_000),
        file_max: Some(10_000),
        ..Default::default()
    });
    assert_cause(
        &e,
        "file_max",
        &["read after the failure", "memory pressure"],
    );
    e.quota = None;
    assert_cause(&e, "file_max", &["fs.file-nr and fs.file-max not read"]);
}

#[test]
fn enfile_with_cap_sys_admin_is_memory_since_file_max_does_not_apply() {
    let mut e = event(
        libc::ENFILE,
        libc::AF_INET,
        libc::SOCK_STREAM,
        0,
        "exit-only",
    );
    e.cap_effective = Some(SYS_ADMIN);
    e.quota = Some(Quota {
        memory_current: Some(511 << 20),
        memory_max: Some(512 << 20),
        ..Default::default()
    });
    assert_cause(
        &e,
        "memory",
        &["CAP_SYS_ADMIN", "cgroup memory 511.0 MiB of 512.0 MiB"],
    );
}

#[test]
fn enobufs_and_enomem_are_memory_with_the_cgroup_numbers() {
    for errno in [libc::ENOBUFS, libc::ENOMEM] {
        let mut e = event(errno, libc::AF_INET, libc::SOCK_STREAM, 0, "exit-only");
        assert_cause(&e, "memory", &["cgroup memory not read", "memory.max"]);
        e.quota = Some(Quota {
            memory_current: Some(5 << 20),
            ..Default::default()
        });
        assert_cause(&e, "memory", &["cgroup memory 5.0 MiB, no cgroup limit"]);
    }
}

#[test]
fn a_raw_socket_without_cap_net_raw_is_capability() {
    let mut e = event(
        libc::EPERM,
        libc::AF_INET,
        libc::SOCK_RAW,
        libc::IPPROTO_ICMP,
        "exit-only",
    );
    e.cap_effective = Some(0);
    assert_eq!(
        cause_and_text(&e).1,
        "SOCK_RAW needs CAP_NET_RAW, which this process lacks (effective capabilities: \
         none); grant CAP_NET_RAW (file capabilities, AmbientCapabilities=, the container's \
         capabilities)"
    );
    assert_cause(&e, "capability", &[]);
    e.cap_effective = Some(1 << 10 | 1 << 0);
    assert_cause(
        &e,
        "capability",
        &["effective capabilities: CAP_CHOWN, CAP_NET_BIND_SERVICE"],
    );
    e.cap_effective = Some(!NET_RAW & ((1 << 41) - 1));
    assert_cause(
        &e,
        "capability",
        &["effective capabilities: 40 capabilities"],
    );
}

#[test]
fn a_raw_socket_with_capabilities_unread_says_so() {
    let mut e = event(
        libc::EPERM,
        libc::AF_INET6,
        libc::SOCK_RAW | libc::SOCK_CLOEXEC,
        libc::IPPROTO_ICMPV6,
        "exit-only",
    );
    assert_cause(
        &e,
        "capability",
        &[
            "SOCK_RAW needs CAP_NET_RAW",
            "effective capabilities not read",
            "uid 1000",
        ],
    );
    e.uid = 0;
    assert_cause(&e, "capability", &["not read", "root", "dropped"]);
}

#[test]
fn packet_sockets_and_pf_key_need_their_capability() {
    let e = event(
        libc::EPERM,
        libc::AF_PACKET,
        libc::SOCK_DGRAM,
        0,
        "exit-only",
    );
    assert_cause(&e, "capability", &["AF_PACKET needs CAP_NET_RAW"]);
    let e = event(libc::EPERM, libc::AF_INET, 10, 0, "exit-only");
    assert_cause(&e, "capability", &["SOCK_PACKET needs CAP_NET_RAW"]);
    let e = event(libc::EPERM, libc::AF_KEY, libc::SOCK_RAW, 2, "exit-only");
    assert_cause(&e, "capability", &["AF_KEY needs CAP_NET_ADMIN"]);
}

#[test]
fn cap_net_raw_held_points_at_the_network_namespace() {
    let mut e = event(libc::EPERM, libc::AF_INET, libc::SOCK_RAW, 1, "tracepoint");
    e.cap_effective = Some(NET_RAW);
    assert_cause(
        &e,
        "capability",
        &["holds in its own user namespace", "network namespace"],
    );
}

#[test]
fn an_unprivileged_ping_socket_is_the_group_range() {
    let mut e = event(
        libc::EACCES,
        libc::AF_INET,
        libc::SOCK_DGRAM,
        libc::IPPROTO_ICMP,
        "tracepoint",
    );
    e.gid = 1000;
    assert_cause(&e, "capability", &["net.ipv4.ping_group_range", "gid 1000"]);
}

#[test]
fn a_tracepoint_failure_that_never_entered_is_seccomp_whatever_the_errno() {
    for errno in [libc::EACCES, libc::EPERM, libc::EAFNOSUPPORT, libc::ENOSYS] {
        let mut e = event(errno, libc::AF_INET6, libc::SOCK_DGRAM, 17, "tracepoint");
        e.duration_ns = None;
        e.seccomp_mode = "filter".into();
        assert_cause(
            &e,
            "seccomp",
            &[
                "without sys_enter_socket",
                "seccomp mode filter",
                "AF_INET6, SOCK_DGRAM, IPPROTO_UDP",
            ],
        );
    }
}

#[test]
fn exit_only_mode_says_it_cannot_tell_seccomp_from_an_lsm() {
    let mut e = event(
        libc::EACCES,
        libc::AF_INET6,
        libc::SOCK_DGRAM,
        17,
        "exit-only",
    );
    e.seccomp_mode = "filter".into();
    assert_cause(
        &e,
        "lsm",
        &[
            "cannot tell a seccomp filter from an LSM",
            "--probe tracepoint",
        ],
    );
    e.errno = libc::EPERM;
    e.errno_name = "EPERM".into();
    assert_cause(&e, "seccomp", &["cannot tell", "seccomp mode filter"]);
    e.seccomp_mode = String::new();
    assert_cause(&e, "seccomp", &["seccomp mode not read"]);
}

#[test]
fn a_refusal_seccomp_cannot_have_made_is_an_lsm() {
    // Entered (tracepoint pair with a duration), seccomp off, or an io_uring request.
    let entered = event(
        libc::EACCES,
        libc::AF_INET,
        libc::SOCK_STREAM,
        6,
        "tracepoint",
    );
    assert_cause(&entered, "lsm", &["entered socket()", "audit log"]);
    let mut off = event(
        libc::EPERM,
        libc::AF_INET,
        libc::SOCK_STREAM,
        6,
        "exit-only",
    );
    off.seccomp_mode = "disabled".into();
    assert_cause(&off, "lsm", &["seccomp is off"]);
    let mut uring = event(
        libc::EACCES,
        libc::AF_INET,
        libc::SOCK_STREAM,
        6,
        "io_uring",
    );
    uring.source = "io_uring".into();
    assert_cause(&uring, "lsm", &["io_uring"]);
}

#[test]
fn an_unknown_family_is_family_unsupported() {
    let e = event(libc::EAFNOSUPPORT, 9999, libc::SOCK_STREAM, 0, "tracepoint");
    assert_cause(
        &e,
        "family_unsupported",
        &["family 9999 is not an address family"],
    );
    let e = event(
        libc::EAFNOSUPPORT,
        libc::AF_BLUETOOTH,
        libc::SOCK_STREAM,
        0,
        "exit-only",
    );
    assert_cause(
        &e,
        "family_unsupported",
        &["this kernel has no AF_BLUETOOTH"],
    );
}

#[test]
fn eafnosupport_for_a_built_in_family_under_a_filter_is_seccomp() {
    let mut e = event(
        libc::EAFNOSUPPORT,
        libc::AF_INET,
        libc::SOCK_STREAM,
        0,
        "exit-only",
    );
    e.seccomp_mode = "filter".into();
    assert_cause(&e, "seccomp", &["RestrictAddressFamilies="]);
    e.seccomp_mode = "disabled".into();
    assert_cause(&e, "family_unsupported", &["this kernel has no AF_INET"]);
}

#[test]
fn einval_names_the_bad_flags_type_or_protocol() {
    let e = event(libc::EINVAL, libc::AF_INET, 12345, 0, "exit-only");
    assert_cause(&e, "type_invalid", &["unknown flag bits 0x3030"]);
    let e = event(libc::EINVAL, libc::AF_INET, 14, 0, "exit-only");
    assert_cause(&e, "type_invalid", &["type 14 is not a socket type"]);
    let e = event(
        libc::EINVAL,
        libc::AF_INET,
        libc::SOCK_STREAM,
        300,
        "exit-only",
    );
    assert_cause(
        &e,
        "protocol_unsupported",
        &["protocol 300 is out of range"],
    );
    let e = event(
        libc::EINVAL,
        libc::AF_UNIX,
        libc::SOCK_STREAM,
        5,
        "exit-only",
    );
    assert_cause(&e, "type_invalid", &["AF_UNIX refused socket("]);
}

#[test]
fn protocol_and_type_errnos_name_the_arguments() {
    let e = event(
        libc::EPROTONOSUPPORT,
        libc::AF_INET,
        libc::SOCK_STREAM,
        200,
        "exit-only",
    );
    assert_cause(
        &e,
        "protocol_unsupported",
        &["socket(AF_INET, SOCK_STREAM, 200)", "module"],
    );
    let e = event(libc::EPROTOTYPE, 29, libc::SOCK_STREAM, 1, "exit-only");
    assert_cause(
        &e,
        "protocol_unsupported",
        &["does not go with this socket type"],
    );
    let e = event(libc::ESOCKTNOSUPPORT, libc::AF_INET, 4, 0, "exit-only");
    assert_cause(
        &e,
        "type_invalid",
        &["AF_INET does not support socket type 4"],
    );
}

#[test]
fn an_errno_socket_never_returns_is_unknown_unless_a_filter_chose_it() {
    let mut e = event(
        libc::ENOSYS,
        libc::AF_INET,
        libc::SOCK_STREAM,
        0,
        "exit-only",
    );
    assert_cause(&e, "unknown", &["ENOSYS (38)", "no rule explains it"]);
    e.seccomp_mode = "filter".into();
    assert_cause(&e, "seccomp", &["seccomp filter"]);
}

#[test]
fn missing_arguments_are_said_not_guessed() {
    let mut e = event(libc::EINVAL, 0, 0, 0, "exit-only");
    (e.family, e.r#type, e.protocol) = (None, None, None);
    assert_cause(&e, "type_invalid", &["arguments not captured"]);
    e.errno = libc::EAFNOSUPPORT;
    assert_cause(&e, "family_unsupported", &["arguments not captured"]);
}

#[test]
fn warnings_name_the_limit_ahead() {
    let nofile = Warning {
        kind: "nofile".into(),
        used: 205,
        limit: 256,
        ratio: 205.0 / 256.0,
        eta_seconds: Some(12.2),
        ..Default::default()
    };
    let d = diagnose_warning(&nofile);
    assert_eq!(d.cause, "rlimit_nofile");
    assert_eq!(
        d.text,
        "at least 205 open fds of RLIMIT_NOFILE 256 (80%), full in ~12s: the process \
         nears its descriptor limit; raise LimitNOFILE/ulimit -n or look for a descriptor leak"
    );
    let file_max = Warning {
        kind: "file-max".into(),
        used: 9_000,
        limit: 10_000,
        ratio: 0.9,
        ..Default::default()
    };
    let d = diagnose_warning(&file_max);
    assert_eq!(d.cause, "file_max");
    assert!(
        d.text
            .starts_with("system file handles 9000 of fs.file-max 10000 (90%), not rising"),
        "{}",
        d.text
    );
}
