//! Why a call failed: rules that read an event's evidence (errno, arguments, probe mode,
//! limits, capabilities, seccomp mode, quota) and name one cause with one sentence of
//! evidence and the usual fix. Pure functions of the event; one file per family of rules.

mod arguments;
mod descriptors;
mod evidence;
mod memory;
mod permission;

use tapper_proto::{
    limits,
    v1::{Diagnosis, Event, Warning},
};

/// The causes a diagnosis names (`diagnosis.cause`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    RlimitNofile,
    FileMax,
    Capability,
    Seccomp,
    Lsm,
    FamilyUnsupported,
    ProtocolUnsupported,
    TypeInvalid,
    Memory,
    Unknown,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RlimitNofile => "rlimit_nofile",
            Self::FileMax => "file_max",
            Self::Capability => "capability",
            Self::Seccomp => "seccomp",
            Self::Lsm => "lsm",
            Self::FamilyUnsupported => "family_unsupported",
            Self::ProtocolUnsupported => "protocol_unsupported",
            Self::TypeInvalid => "type_invalid",
            Self::Memory => "memory",
            Self::Unknown => "unknown",
        }
    }
}

/// A cause and its sentence.
type Finding = (Cause, String);

/// Why this failure happened, from the evidence in the event.
pub fn diagnose(event: &Event) -> Diagnosis {
    let finding = if evidence::never_entered(event) {
        permission::never_entered(event)
    } else {
        match event.errno {
            libc::EMFILE => descriptors::emfile(event),
            libc::ENFILE => descriptors::enfile(event),
            libc::EPERM | libc::EACCES => permission::denied(event),
            libc::EAFNOSUPPORT => arguments::family(event),
            libc::EINVAL => arguments::invalid(event),
            libc::EPROTONOSUPPORT | libc::EPROTOTYPE => arguments::protocol(event),
            libc::ESOCKTNOSUPPORT => arguments::socket_type(event),
            libc::ENOBUFS | libc::ENOMEM => memory::allocation(event),
            _ => permission::other_errno(event),
        }
    };
    diagnosis(finding)
}

/// Why the failure a warning announces is ahead.
pub fn diagnose_warning(warning: &Warning) -> Diagnosis {
    diagnosis(descriptors::warning(warning))
}

fn diagnosis((cause, mut text): Finding) -> Diagnosis {
    limits::truncate(&mut text, limits::DIAGNOSIS_TEXT);
    Diagnosis {
        cause: cause.as_str().into(),
        text,
    }
}

#[cfg(test)]
mod tests;
