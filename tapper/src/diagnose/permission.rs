//! Refusals: a missing capability, a seccomp filter, an LSM (or a cgroup socket program),
//! and the ping sockets' group range; and errnos the socket code never returns itself.

use tapper_proto::v1::Event;

use super::{
    Cause, Finding,
    evidence::{
        self, CAP_NET_ADMIN, CAP_NET_RAW, Seccomp, args_text, base_type, cap_name, caps_text,
        has_cap, seccomp_mode_text,
    },
};

/// A tracepoint-mode failure that never entered the system call: a seccomp denial.
pub fn never_entered(event: &Event) -> Finding {
    (
        Cause::Seccomp,
        format!(
            "{} before the call entered socket() (sys_exit_socket without sys_enter_socket, \
             {}): a seccomp filter denied socket({}) with SECCOMP_RET_ERRNO; allow it in \
             the process's seccomp profile",
            event.errno_name,
            seccomp_mode_text(event),
            args_text(event)
        ),
    )
}

/// EPERM and EACCES.
pub fn denied(event: &Event) -> Finding {
    if event.errno == libc::EPERM
        && let Some((what, bit)) = required_capability(event)
    {
        return capability(event, what, bit);
    }
    if event.errno == libc::EACCES && is_ping(event) {
        return (
            Cause::Capability,
            format!(
                "ICMP echo (ping) sockets ({}) are open only to groups in \
                 net.ipv4.ping_group_range, which gid {} is outside; widen the range \
                 (sysctl net.ipv4.ping_group_range) or use SOCK_RAW with CAP_NET_RAW",
                args_text(event),
                event.gid
            ),
        );
    }
    policy(event)
}

/// The obsolete packet socket type (libc deprecates the name, the kernel still takes it).
const SOCK_PACKET: i32 = 10;

/// What needs a capability in socket(): raw and packet sockets CAP_NET_RAW (checked in
/// the network namespace's user namespace), PF_KEY sockets CAP_NET_ADMIN.
fn required_capability(event: &Event) -> Option<(&'static str, u8)> {
    match (event.family?, base_type(event)?) {
        (libc::AF_PACKET, _) => Some(("AF_PACKET", CAP_NET_RAW)),
        (libc::AF_KEY, _) => Some(("AF_KEY", CAP_NET_ADMIN)),
        (_, libc::SOCK_RAW) => Some(("SOCK_RAW", CAP_NET_RAW)),
        (_, SOCK_PACKET) => Some(("SOCK_PACKET", CAP_NET_RAW)),
        _ => None,
    }
}

fn capability(event: &Event, what: &str, bit: u8) -> Finding {
    let cap = cap_name(bit);
    let fix = format!(
        "grant {cap} (file capabilities, AmbientCapabilities=, the container's capabilities)"
    );
    let text = match event.cap_effective {
        Some(mask) if has_cap(event, bit) == Some(false) => format!(
            "{what} needs {cap}, which this process lacks (effective capabilities: {}); {fix}",
            caps_text(mask)
        ),
        Some(_) => format!(
            "{what} needs {cap}, which this process holds in its own user namespace but, it \
             seems, not in the one owning its network namespace (e.g. a rootless container \
             on the host's network), unless a seccomp filter or an LSM refused it ({})",
            seccomp_mode_text(event)
        ),
        None if event.uid == 0 => format!(
            "{what} needs {cap}; effective capabilities not read: a root process lacks it \
             only when it was dropped (e.g. by a container runtime); {fix}"
        ),
        None => format!(
            "{what} needs {cap}; effective capabilities not read, but uid {} is not root, \
             and a process of another user lacks it unless granted; {fix}",
            event.uid
        ),
    };
    (Cause::Capability, text)
}

/// ICMP datagram sockets (`ping` without privileges).
fn is_ping(event: &Event) -> bool {
    matches!(
        (event.family, base_type(event), event.protocol),
        (
            Some(libc::AF_INET),
            Some(libc::SOCK_DGRAM),
            Some(libc::IPPROTO_ICMP)
        ) | (
            Some(libc::AF_INET6),
            Some(libc::SOCK_DGRAM),
            Some(libc::IPPROTO_ICMPV6)
        )
    )
}

/// A refusal by policy: a seccomp filter or an LSM, as far as the probe mode can tell.
fn policy(event: &Event) -> Finding {
    let errno = &event.errno_name;
    let args = args_text(event);
    match evidence::seccomp(event) {
        Seccomp::RuledOut(reason) => (
            Cause::Lsm,
            format!(
                "{errno} on socket({args}) although {reason}: an LSM (SELinux, AppArmor, a \
                 BPF LSM) or a cgroup socket program refused it; check the audit log \
                 (ausearch -m avc, dmesg) and the policy"
            ),
        ),
        Seccomp::Possible { .. } => {
            let mode = seccomp_mode_text(event);
            let (cause, likely) = if event.errno == libc::EACCES {
                (
                    Cause::Lsm,
                    "EACCES is what SELinux and AppArmor answer, so an LSM is likely",
                )
            } else {
                (
                    Cause::Seccomp,
                    "EPERM is what container seccomp profiles answer, so a seccomp filter is likely",
                )
            };
            (
                cause,
                format!(
                    "{errno} on socket({args}) in {} mode, which cannot tell a seccomp filter \
                     from an LSM ({mode}): {likely}; run the tapper with --probe tracepoint to \
                     tell them apart",
                    event.probe
                ),
            )
        }
    }
}

/// An errno the socket code does not return itself.
pub fn other_errno(event: &Event) -> Finding {
    let what = format!(
        "{} ({}) on socket({}) is not an errno the socket code returns",
        event.errno_name,
        event.errno,
        args_text(event)
    );
    match evidence::seccomp(event) {
        Seccomp::Possible { filter: true } => (
            Cause::Seccomp,
            format!(
                "{what}, and the process has a seccomp filter, which most likely chose it; \
                 check its seccomp profile"
            ),
        ),
        _ => (
            Cause::Unknown,
            format!(
                "{what}, and no rule explains it ({})",
                seccomp_mode_text(event)
            ),
        ),
    }
}
