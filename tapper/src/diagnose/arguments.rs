//! Arguments the kernel refused: an address family it lacks, a type or flags it does not
//! know, a protocol that does not go with the family and type. A seccomp filter may answer
//! EAFNOSUPPORT too (systemd's RestrictAddressFamilies=).

use tapper_proto::v1::Event;

use super::{
    Cause, Finding,
    evidence::{self, SOCK_TYPE_MASK, Seccomp, args_text, base_type},
};

/// Families 0 to this (exclusive) exist on Linux (AF_MAX).
const AF_MAX: i32 = 46;
/// Socket types 1 to this (exclusive) exist (SOCK_MAX).
const SOCK_MAX: i32 = 11;
/// Families every Linux kernel has built in.
const ALWAYS_BUILT: [i32; 3] = [libc::AF_UNIX, libc::AF_INET, libc::AF_NETLINK];
/// Protocols of AF_INET and AF_INET6 are below this (IPPROTO_MAX).
const IPPROTO_MAX: i32 = 263;

/// EAFNOSUPPORT.
pub fn family(event: &Event) -> Finding {
    let Some(family) = event.family else {
        return (
            Cause::FamilyUnsupported,
            "arguments not captured: EAFNOSUPPORT means the kernel has no such address \
             family; check the caller's domain argument"
                .into(),
        );
    };
    let name = &event.family_name;
    if ALWAYS_BUILT.contains(&family)
        && evidence::seccomp(event) == (Seccomp::Possible { filter: true })
    {
        return (
            Cause::Seccomp,
            format!(
                "{name} is built into every kernel, and the process has a seccomp filter: it \
                 most likely answered EAFNOSUPPORT (as systemd's RestrictAddressFamilies= \
                 does); allow {name} in the process's seccomp profile"
            ),
        );
    }
    let text = if !(0..AF_MAX).contains(&family) {
        format!(
            "family {family} is not an address family (Linux knows 0 to {}): the caller \
             passed a wrong domain argument; fix the constant it uses",
            AF_MAX - 1
        )
    } else {
        format!(
            "this kernel has no {name} (not built, module not loaded, or disabled at boot){}; \
             load its module or use another family",
            filter_note(event)
        )
    };
    (Cause::FamilyUnsupported, text)
}

/// `, or a seccomp filter answered` when exit-only mode cannot rule a filter out.
fn filter_note(event: &Event) -> &'static str {
    match evidence::seccomp(event) {
        Seccomp::Possible { filter: true } => ", or the process's seccomp filter answered",
        _ => "",
    }
}

/// EINVAL: unknown flags or type, a protocol out of range, or arguments the family refuses.
pub fn invalid(event: &Event) -> Finding {
    let (Some(family), Some(sock_type), Some(protocol)) =
        (event.family, event.r#type, event.protocol)
    else {
        return (
            Cause::TypeInvalid,
            "arguments not captured: EINVAL means the type, its flags or the protocol is not \
             valid; check the caller's arguments"
                .into(),
        );
    };
    let flags = sock_type & !SOCK_TYPE_MASK & !(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK);
    let base = sock_type & SOCK_TYPE_MASK;
    let type_name = &event.type_name;
    if flags != 0 {
        return (
            Cause::TypeInvalid,
            format!(
                "type {sock_type:#x} ({type_name}) carries unknown flag bits {flags:#x}: only \
                 SOCK_CLOEXEC and SOCK_NONBLOCK may be or-ed into the type; fix the caller's \
                 type argument"
            ),
        );
    }
    if !(1..SOCK_MAX).contains(&base) {
        return (
            Cause::TypeInvalid,
            format!(
                "type {base} is not a socket type (SOCK_STREAM 1 to SOCK_PACKET {}); fix the \
                 caller's type argument",
                SOCK_MAX - 1
            ),
        );
    }
    let inet = matches!(family, libc::AF_INET | libc::AF_INET6);
    if protocol < 0 || (inet && protocol >= IPPROTO_MAX) {
        return (
            Cause::ProtocolUnsupported,
            format!(
                "protocol {protocol} is out of range for {}; pass 0 (the type's default) or \
                 an IPPROTO_* value",
                event.family_name
            ),
        );
    }
    (
        Cause::TypeInvalid,
        format!(
            "{} refused socket({}) as invalid: the type and protocol are each valid, but \
             this family does not take them together; use a type and protocol it documents",
            event.family_name,
            args_text(event)
        ),
    )
}

/// EPROTONOSUPPORT and EPROTOTYPE.
pub fn protocol(event: &Event) -> Finding {
    let args = args_text(event);
    let text = if event.errno == libc::EPROTOTYPE {
        format!(
            "socket({args}): the protocol does not go with this socket type; use the type \
             the protocol takes"
        )
    } else {
        format!(
            "socket({args}): the family has no such protocol for this type, or the \
             protocol's module (e.g. sctp) is not loaded{}; pass 0 for the type's default \
             protocol, a protocol of this type, or load its module",
            filter_note(event)
        )
    };
    (Cause::ProtocolUnsupported, text)
}

/// ESOCKTNOSUPPORT.
pub fn socket_type(event: &Event) -> Finding {
    let what = match base_type(event) {
        Some(base) => format!("socket type {base} in socket({})", args_text(event)),
        None => "the socket type (arguments not captured)".into(),
    };
    (
        Cause::TypeInvalid,
        format!(
            "{} does not support {what}, or its module is not loaded; use a type the \
             family supports, e.g. SOCK_STREAM or SOCK_DGRAM",
            if event.family_name.is_empty() {
                "the family"
            } else {
                &event.family_name
            },
        ),
    )
}
