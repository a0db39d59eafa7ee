//! Loads the embedded eBPF object, attaches the chosen probe pair and hands out the maps
//! user space reads. Dropping the `Ebpf` detaches; the maps stay readable after it.

use aya::{
    Ebpf, EbpfLoader, include_bytes_aligned,
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{KProbe, Program, ProgramError, TracePoint},
};
use tapper_common::TracepointLayout;

use super::{
    ProbeError, ProbeMode,
    features::{KPROBE_TARGET, check_kprobes, check_privileges},
    tracefs::{socket_layout, tracefs_root},
};
use crate::counters::KernelCounters;

static EBPF_OBJECT: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tapper"));

/// Attached probes and the maps they fill.
pub struct Capture {
    /// Dropping it detaches and unloads every program; the maps below stay readable.
    pub probes: Ebpf,
    /// The mode in effect (never `Auto`).
    pub mode: ProbeMode,
    pub events: RingBuf<MapData>,
    pub counters: KernelCounters,
}

/// Attaches in the requested mode; `auto` prefers kprobes and falls back to tracepoints.
pub fn attach(requested: ProbeMode, ring_buffer_bytes: u32) -> Result<Capture, ProbeError> {
    check_privileges()?;
    raise_memlock_limit();
    match requested {
        ProbeMode::Kprobe => {
            check_kprobes().map_err(unavailable("kprobe", "tracepoint"))?;
            load_and_attach(ProbeMode::Kprobe, ring_buffer_bytes)
        }
        ProbeMode::Tracepoint => load_and_attach(ProbeMode::Tracepoint, ring_buffer_bytes)
            .map_err(unavailable("tracepoint", "kprobe")),
        ProbeMode::Auto => {
            let kprobe = check_kprobes()
                .and_then(|()| load_and_attach(ProbeMode::Kprobe, ring_buffer_bytes));
            match kprobe {
                Ok(capture) => {
                    tracing::info!(
                        "probe mode: kprobe (the kernel has kprobes and {KPROBE_TARGET})"
                    );
                    Ok(capture)
                }
                Err(why) => {
                    tracing::info!(
                        "probe mode: tracepoint (the kprobe pair is unavailable: {why})"
                    );
                    load_and_attach(ProbeMode::Tracepoint, ring_buffer_bytes)
                }
            }
        }
    }
}

/// Says which mode to use instead when an explicitly requested mode lacks a kernel feature.
fn unavailable(mode: &'static str, instead: &'static str) -> impl FnOnce(ProbeError) -> ProbeError {
    move |reason| match reason {
        ProbeError::NoKprobes { .. }
        | ProbeError::NoSysSocketSymbol { .. }
        | ProbeError::NoSyscallTracepoints { .. }
        | ProbeError::Tracefs { .. } => ProbeError::ModeUnavailable {
            mode,
            instead,
            reason: Box::new(reason),
        },
        other => other,
    }
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; later ones to the memory
/// cgroup, where raising the limit is unnecessary (and may be refused).
fn raise_memlock_limit() {
    use nix::sys::resource::{RLIM_INFINITY, Resource, setrlimit};
    if let Err(err) = setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY) {
        tracing::debug!("cannot raise RLIMIT_MEMLOCK ({err}); fine on kernels >= 5.11");
    }
}

fn load_and_attach(mode: ProbeMode, ring_buffer_bytes: u32) -> Result<Capture, ProbeError> {
    let mut loader = EbpfLoader::new();
    loader.map_max_entries("EVENTS", ring_buffer_bytes);
    let layout: TracepointLayout;
    if mode == ProbeMode::Tracepoint {
        layout = socket_layout(&tracefs_root()?)?;
        tracing::debug!(?layout, "tracepoint field offsets from tracefs");
        loader.override_global("TRACEPOINT_LAYOUT", &layout, true);
    }
    let mut ebpf = loader.load(EBPF_OBJECT)?;
    match mode {
        ProbeMode::Kprobe => {
            attach_kprobe(&mut ebpf, "sys_socket_entry")?;
            attach_kprobe(&mut ebpf, "sys_socket_return")?;
        }
        _ => {
            attach_tracepoint(&mut ebpf, "sys_enter_socket")?;
            attach_tracepoint(&mut ebpf, "sys_exit_socket")?;
        }
    }
    let events =
        RingBuf::try_from(take_map(&mut ebpf, "EVENTS")?).map_err(|source| ProbeError::Map {
            name: "EVENTS",
            source,
        })?;
    let counters = PerCpuArray::try_from(take_map(&mut ebpf, "COUNTERS")?).map_err(|source| {
        ProbeError::Map {
            name: "COUNTERS",
            source,
        }
    })?;
    let errnos = PerCpuArray::try_from(take_map(&mut ebpf, "ERRNO_COUNTS")?).map_err(|source| {
        ProbeError::Map {
            name: "ERRNO_COUNTS",
            source,
        }
    })?;
    tracing::info!(
        "attached {} probes; capturing failed socket() calls",
        mode.as_str()
    );
    Ok(Capture {
        probes: ebpf,
        mode,
        events,
        counters: KernelCounters::new(counters, errnos),
    })
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, ProbeError> {
    ebpf.take_map(name).ok_or(ProbeError::Missing(name))
}

/// The named program of the object, as its concrete type.
fn program<'a, P>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut P, ProbeError>
where
    &'a mut Program: TryInto<&'a mut P, Error = ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or(ProbeError::Missing(name))?
        .try_into()
        .map_err(|source| ProbeError::Program {
            what: format!("program {name}"),
            source,
        })
}

/// Names the failing step and program in a load or attach error.
fn failed(step: &str, target: &str) -> impl FnOnce(ProgramError) -> ProbeError {
    let what = format!("{step} {target}");
    move |source| ProbeError::Program { what, source }
}

fn attach_kprobe(ebpf: &mut Ebpf, name: &'static str) -> Result<(), ProbeError> {
    let program: &mut KProbe = program(ebpf, name)?;
    let target = format!("{name} on {KPROBE_TARGET}");
    program.load().map_err(failed("loading", &target))?;
    program
        .attach(KPROBE_TARGET, 0)
        .map_err(failed("attaching", &target))?;
    Ok(())
}

fn attach_tracepoint(ebpf: &mut Ebpf, name: &'static str) -> Result<(), ProbeError> {
    let program: &mut TracePoint = program(ebpf, name)?;
    let target = format!("tracepoint syscalls:{name}");
    program.load().map_err(failed("loading", &target))?;
    program
        .attach("syscalls", name)
        .map_err(failed("attaching", &target))?;
    Ok(())
}
