//! The kretprobe created through tracefs with room for many calls in flight, for kernels
//! whose perf kprobe PMU default (no `CONFIG_PREEMPTION`: one per CPU) loses returns.

use std::{
    fs::{self, OpenOptions},
    io::{self, Write},
    os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd},
    path::{Path, PathBuf},
};

use aya::programs::KProbe;

use super::{ProbeError, tracefs::tracefs_root};

/// Calls in flight the kretprobe tracks: the most tracefs accepts (the kernel's
/// KRETPROBE_MAXACTIVE_MAX). Each is a few dozen bytes, so this costs well under a MiB, and
/// concurrent calls that sleep (module autoloading, one modprobe each) stay far below it.
pub const MAXACTIVE: u32 = 4096;

/// Every tracefs probe this tapper creates is named `tapper_<pid>_<symbol>`.
const PREFIX: &str = "tapper_";

/// PERF_EVENT_IOC_SET_BPF (`_IOW('$', 8, u32)`) and PERF_EVENT_IOC_ENABLE (`_IO('$', 0)`),
/// the same on x86_64 and arm64.
const IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
const IOC_ENABLE: libc::c_ulong = 0x2400;
/// PERF_TYPE_TRACEPOINT and PERF_FLAG_FD_CLOEXEC from linux/perf_event.h.
const PERF_TYPE_TRACEPOINT: u32 = 2;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;

/// Whether the kernel's default kretprobe keeps one call in flight per CPU: it does
/// without `CONFIG_PREEMPTION`, which the kernel's version string names (PREEMPT,
/// PREEMPT_DYNAMIC or PREEMPT_RT) whenever it is set.
pub fn default_is_one_per_cpu() -> bool {
    let version = nix::sys::utsname::uname()
        .map(|u| u.version().to_string_lossy().into_owned())
        .unwrap_or_default();
    !version.contains("PREEMPT")
}

/// A kretprobe event in tracefs running a BPF program. Dropping it detaches the program
/// and removes the event.
pub struct TracefsKretprobe {
    perf: Option<OwnedFd>,
    kprobe_events: PathBuf,
    name: String,
}

impl Drop for TracefsKretprobe {
    fn drop(&mut self) {
        // The kernel refuses to remove an event while a perf fd holds it.
        drop(self.perf.take());
        if let Err(err) = remove_event(&self.kprobe_events, &self.name) {
            tracing::warn!("removing the tracefs kretprobe {} failed: {err}", self.name);
        }
    }
}

/// Creates `r<MAXACTIVE>:kprobes/tapper_<pid>_<symbol> <symbol>` and attaches the loaded
/// kretprobe `program` to it, after removing stale probes of killed tappers.
pub fn attach(program: &KProbe, symbol: &str) -> Result<TracefsKretprobe, ProbeError> {
    let root = tracefs_root()?;
    let kprobe_events = root.join("kprobe_events");
    remove_stale(&kprobe_events);
    let name = format!("{PREFIX}{}_{symbol}", std::process::id());
    let failed = |what: String| move |source| ProbeError::TracefsKprobe { what, source };
    append(
        &kprobe_events,
        &format!("r{MAXACTIVE}:kprobes/{name} {symbol}"),
    )
    .map_err(failed(format!(
        "creating a kretprobe in {}",
        kprobe_events.display()
    )))?;
    // From here on, dropping the probe removes the event again (a failed start).
    let mut probe = TracefsKretprobe {
        perf: None,
        kprobe_events,
        name,
    };
    let id_path = root.join("events/kprobes").join(&probe.name).join("id");
    let id = fs::read_to_string(&id_path)
        .and_then(|text| text.trim().parse::<u64>().map_err(io::Error::other))
        .map_err(failed(format!("reading {}", id_path.display())))?;
    let perf = open_tracepoint_event(id).map_err(failed(format!(
        "perf_event_open of the kretprobe event {}",
        probe.name
    )))?;
    let prog_fd = program.fd().map_err(|source| ProbeError::Program {
        what: format!("the fd of the kretprobe program for {}", probe.name),
        source,
    })?;
    let prog_fd = prog_fd.as_fd().as_raw_fd();
    // SAFETY: ioctls on a perf event fd this function owns, with an integer argument.
    let set = unsafe { libc::ioctl(perf.as_raw_fd(), IOC_SET_BPF, prog_fd) };
    let enable = if set == 0 {
        // SAFETY: as above.
        unsafe { libc::ioctl(perf.as_raw_fd(), IOC_ENABLE, 0) }
    } else {
        set
    };
    if enable != 0 {
        return Err(failed(format!(
            "attaching the kretprobe program to the event {}",
            probe.name
        ))(io::Error::last_os_error()));
    }
    probe.perf = Some(perf);
    Ok(probe)
}

/// perf_event_open for tracepoint `id` on every process (CPU 0 stands for all with BPF).
fn open_tracepoint_event(id: u64) -> io::Result<OwnedFd> {
    let attr = PerfEventAttr {
        type_: PERF_TYPE_TRACEPOINT,
        size: size_of::<PerfEventAttr>() as u32,
        config: id,
        sample_period: 1,
        wakeup_events: 1,
        ..PerfEventAttr::default()
    };
    // SAFETY: attr outlives the call and is a valid PERF_ATTR_SIZE_VER0 attribute.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            -1,
            0,
            -1,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The first 64 bytes of `struct perf_event_attr` (PERF_ATTR_SIZE_VER0), all a tracepoint
/// event needs.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

/// Removes the tracefs probes of tappers that are gone (killed before they could). A live
/// tapper's probe is busy, and the kernel refuses to remove it.
fn remove_stale(kprobe_events: &Path) {
    let Ok(text) = fs::read_to_string(kprobe_events) else {
        return;
    };
    for name in ours(&text) {
        match remove_event(kprobe_events, name) {
            Ok(()) => tracing::info!("removed the stale tracefs kretprobe {name}"),
            Err(err) => tracing::debug!("left the tracefs kretprobe {name} in place: {err}"),
        }
    }
}

/// The names of this program's probes in a `kprobe_events` listing, whose lines read
/// `r4096:kprobes/tapper_42___sys_socket __sys_socket`.
fn ours(listing: &str) -> impl Iterator<Item = &str> {
    listing.lines().filter_map(|line| {
        let event = line.split_whitespace().next()?.split_once(':')?.1;
        let (group, name) = event.split_once('/')?;
        (group == "kprobes" && name.starts_with(PREFIX)).then_some(name)
    })
}

fn remove_event(kprobe_events: &Path, name: &str) -> io::Result<()> {
    append(kprobe_events, &format!("-:kprobes/{name}"))
}

/// Writes one command line to `kprobe_events` without truncating the others.
fn append(kprobe_events: &Path, line: &str) -> io::Result<()> {
    OpenOptions::new()
        .append(true)
        .open(kprobe_events)?
        .write_all(format!("{line}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_only_this_programs_probes() {
        let listing = "r4096:kprobes/tapper_42___sys_socket __sys_socket\n\
                       p:kprobes/aya_7_p___sys_socket_0x0_0 __sys_socket\n\
                       r:myprobes/tapper_1 do_sys_open\n\
                       r128:kprobes/tapper_9___sys_socket __sys_socket\n";
        assert_eq!(
            ours(listing).collect::<Vec<_>>(),
            ["tapper_42___sys_socket", "tapper_9___sys_socket"]
        );
    }

    #[test]
    fn the_attribute_is_the_first_abi_version() {
        assert_eq!(size_of::<PerfEventAttr>(), 64);
    }
}
