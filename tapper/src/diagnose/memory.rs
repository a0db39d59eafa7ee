//! ENOBUFS and ENOMEM: the kernel could not allocate the socket, with the cgroup's memory
//! use against its limit where it was read.

use tapper_proto::v1::Event;

use super::{Cause, Finding};

const MIB: f64 = (1 << 20) as f64;

/// An allocation failure.
pub fn allocation(event: &Event) -> Finding {
    finding(event, &format!("{} means", event.errno_name))
}

/// A memory finding whose sentence starts with `lead` (what points at memory).
pub fn finding(event: &Event, lead: &str) -> Finding {
    let quota = event.quota.unwrap_or_default();
    let memory = match (quota.memory_current, quota.memory_max) {
        (Some(current), Some(max)) => format!(
            "cgroup memory {:.1} MiB of {:.1} MiB",
            current as f64 / MIB,
            max as f64 / MIB
        ),
        (Some(current), None) => format!(
            "cgroup memory {:.1} MiB, no cgroup limit",
            current as f64 / MIB
        ),
        _ => "cgroup memory not read".into(),
    };
    (
        Cause::Memory,
        format!(
            "{lead} the kernel could not allocate the socket ({memory}): memory pressure; free \
             memory or raise the cgroup's memory.max"
        ),
    )
}
