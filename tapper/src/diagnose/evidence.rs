//! What an event tells about itself beyond its errno: whether the call entered the socket
//! code (so a seccomp filter is ruled in or out), its arguments in words, and the
//! caller's capabilities by name.

use tapper_proto::v1::Event;

/// The low bits of `type` that hold the socket type; the rest are flags.
pub const SOCK_TYPE_MASK: i32 = 0xf;
/// Bit numbers of the capabilities the rules name.
pub const CAP_NET_ADMIN: u8 = 12;
pub const CAP_NET_RAW: u8 = 13;
pub const CAP_SYS_ADMIN: u8 = 21;

/// What the probe mode says about a seccomp filter having answered the call.
#[derive(Debug, PartialEq, Eq)]
pub enum Seccomp {
    /// The call reached the socket code, or seccomp is off: the reason, as a clause.
    RuledOut(&'static str),
    /// The mode cannot tell; `filter` when the process has a seccomp filter installed.
    Possible { filter: bool },
}

/// A tracepoint-mode failure whose entry was never seen: the call never entered the
/// system call, which is how a seccomp `SECCOMP_RET_ERRNO` denial looks.
pub fn never_entered(event: &Event) -> bool {
    event.probe == "tracepoint" && event.duration_ns.is_none() && is_syscall(event)
}

pub fn seccomp(event: &Event) -> Seccomp {
    if !is_syscall(event) {
        return Seccomp::RuledOut("seccomp does not filter io_uring requests");
    }
    if event.duration_ns.is_some() {
        return Seccomp::RuledOut("the call entered socket() (its entry was seen)");
    }
    match (event.probe.as_str(), event.seccomp_mode.as_str()) {
        ("kprobe" | "fexit", _) => {
            Seccomp::RuledOut("the call reached __sys_socket, which a seccomp denial never does")
        }
        (_, "disabled") => Seccomp::RuledOut("seccomp is off for this process"),
        (_, mode) => Seccomp::Possible {
            filter: mode == "filter",
        },
    }
}

/// The seccomp mode as a clause: `seccomp mode filter` or `seccomp mode not read`.
pub fn seccomp_mode_text(event: &Event) -> String {
    match event.seccomp_mode.as_str() {
        "" => "seccomp mode not read".into(),
        mode => format!("seccomp mode {mode}"),
    }
}

fn is_syscall(event: &Event) -> bool {
    event.source != "io_uring"
}

/// The call's arguments in words, e.g. `AF_INET, SOCK_RAW, IPPROTO_ICMP`.
pub fn args_text(event: &Event) -> String {
    if event.family.is_none() {
        return "arguments not captured".into();
    }
    [&event.family_name, &event.type_name, &event.protocol_name]
        .map(|name| name.as_str())
        .join(", ")
}

/// The socket type without its flags; `None` when the arguments were not seen.
pub fn base_type(event: &Event) -> Option<i32> {
    event.r#type.map(|t| t & SOCK_TYPE_MASK)
}

/// Whether the caller held capability `bit`; `None` when its capabilities were not read.
pub fn has_cap(event: &Event, bit: u8) -> Option<bool> {
    event.cap_effective.map(|mask| mask & (1 << bit) != 0)
}

/// The name of capability `bit`, e.g. `CAP_NET_RAW`.
pub fn cap_name(bit: u8) -> String {
    caps::all()
        .into_iter()
        .find(|cap| cap.index() == bit)
        .map_or_else(|| format!("capability {bit}"), |cap| cap.to_string())
}

/// Capabilities named in full up to this many; beyond, counted.
const CAPS_NAMED: usize = 4;

/// An effective capability set in words: `none`, `CAP_CHOWN, CAP_KILL`, or
/// `38 capabilities` when there are many.
pub fn caps_text(mask: u64) -> String {
    let held: Vec<u8> = (0..64).filter(|bit| mask & (1 << bit) != 0).collect();
    match held.len() {
        0 => "none".into(),
        n if n <= CAPS_NAMED => held
            .into_iter()
            .map(cap_name)
            .collect::<Vec<_>>()
            .join(", "),
        n => format!("{n} capabilities"),
    }
}
