//! Loads the embedded eBPF object, attaches the chosen mode's programs (and the io_uring
//! program where the kernel allows it) and hands out the maps user space reads. Dropping
//! the `Ebpf` detaches; the maps stay readable after it.

use aya::{
    Btf, Ebpf, EbpfLoader, include_bytes_aligned,
    maps::{HashMap, MapData, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{FExit, KProbe, Program, ProgramError, TracePoint},
};
use tapper_common::{
    ContextLayout, EXIT_ONLY_RET_OFFSET, IoUringLayout, RateLimit, RegsLayout, StackConfig, Wakeup,
    WarnConfig,
};

use super::{
    ProbeError, ProbeMode, atomics,
    btf::KernelBtf,
    context::context_layout,
    features::{KPROBE_TARGET, check_kprobes, check_privileges},
    io_uring::{self, io_uring_layout},
    kretprobe::{self, MAXACTIVE, TracefsKretprobe},
    nofile::{NofileWarn, warn_config},
    regs::regs_layout,
    selftest,
    stacks::stack_config,
    tracefs::{socket_layout, tracefs_root},
};
use crate::{counters::KernelCounters, rate_limit::RateMaps};

static EBPF_OBJECT: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tapper"));

/// The loaded programs and, where used, the tracefs kretprobe. Dropping it detaches and
/// unloads every program and removes the tracefs event.
pub struct Probes {
    _kretprobe: Option<TracefsKretprobe>,
    _ebpf: Ebpf,
}

/// Attached probes and the maps they fill.
pub struct Capture {
    /// Dropping it detaches and unloads every program; the maps below stay readable.
    pub probes: Probes,
    /// The mode in effect (never `Auto`).
    pub mode: ProbeMode,
    pub events: RingBuf<MapData>,
    /// Nofile warnings (empty when they are off).
    pub warnings: RingBuf<MapData>,
    pub counters: KernelCounters,
    /// Whether failed `IORING_OP_SOCKET` requests are captured too.
    pub io_uring: bool,
    /// Records read before the main loop (by the exit-only self-test), oldest first.
    pub early_records: Vec<Vec<u8>>,
    /// The rate limit's maps, when the limit is on (user space sweeps quiet keys).
    pub rate_maps: Option<RateMaps>,
}

/// What to attach.
pub struct Request {
    pub mode: ProbeMode,
    pub ring_buffer_bytes: u32,
    /// Capture io_uring socket failures where the kernel allows it.
    pub io_uring: bool,
    /// The per-(tgid, errno) rate limit (`interval_ns` 0: off).
    pub rate_limit: RateLimit,
    /// When a submitted event wakes user space.
    pub wakeup: Wakeup,
    /// Capture the caller's user stack with each failure.
    pub stacks: bool,
    /// Nofile warnings on successful calls; `None` turns them off.
    pub nofile_warn: Option<NofileWarn>,
}

/// A reporting program's two builds: with BPF atomic exchange, and the one for kernels
/// without it (`_pcpu`, the rate limit's pending counts per CPU).
struct Builds {
    atomic: &'static str,
    per_cpu: &'static str,
}

impl Builds {
    fn pick(&self, atomics: bool) -> &'static str {
        if atomics { self.atomic } else { self.per_cpu }
    }
}

const EXIT_ONLY: Builds = Builds {
    atomic: "sys_exit_socket_regs",
    per_cpu: "sys_exit_socket_regs_pcpu",
};
const FEXIT: Builds = Builds {
    atomic: "sys_socket_fexit",
    per_cpu: "sys_socket_fexit_pcpu",
};
const KRETPROBE: Builds = Builds {
    atomic: "sys_socket_return",
    per_cpu: "sys_socket_return_pcpu",
};
const TRACEPOINT_EXIT: Builds = Builds {
    atomic: "sys_exit_socket",
    per_cpu: "sys_exit_socket_pcpu",
};
const IO_URING: Builds = Builds {
    atomic: "io_uring_complete",
    per_cpu: "io_uring_complete_pcpu",
};

/// The kernel layouts every mode may use, read once from BTF and tracefs.
struct Layouts {
    regs: Result<RegsLayout, String>,
    io_uring: Result<IoUringLayout, String>,
    warn: Result<WarnConfig, String>,
    stacks: StackConfig,
    /// Where failures read the task's context (nothing without BTF).
    context: ContextLayout,
}

impl Layouts {
    fn read(io_uring: bool, nofile_warn: Option<&NofileWarn>, stacks: bool) -> Self {
        let btf = KernelBtf::open();
        let stacks = if stacks {
            match &btf {
                Ok(btf) => stack_config(btf).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
            .unwrap_or_else(|why| {
                tracing::info!(
                    "stacks of a process gone before it is read name only files seen before: \
                     {why}"
                );
                StackConfig {
                    enabled: 1,
                    ..StackConfig::OFF
                }
            })
        } else {
            StackConfig::OFF
        };
        let warn = match (&btf, nofile_warn) {
            (_, None) => Err("turned off by --warn-nofile-ratio 0".into()),
            (Ok(btf), Some(warn)) => warn_config(btf, warn).map_err(|e| e.to_string()),
            (Err(e), Some(_)) => Err(e.to_string()),
        };
        let context = match &btf {
            Ok(btf) => context_layout(btf),
            Err(e) => {
                tracing::info!("failures will carry no context from the kernel: {e}");
                ContextLayout::NONE
            }
        };
        let regs = match &btf {
            Ok(btf) => regs_layout(btf).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let io_uring = match (&btf, io_uring) {
            (_, false) => Err("turned off by --no-io-uring".into()),
            (Ok(btf), true) => tracefs_root()
                .and_then(|root| io_uring_layout(btf, &root))
                .map_err(|e| e.to_string()),
            (Err(e), true) => Err(e.to_string()),
        };
        tracing::debug!(
            ?regs,
            ?io_uring,
            ?warn,
            ?stacks,
            ?context,
            "kernel layouts from BTF and tracefs"
        );
        Self {
            regs,
            io_uring,
            warn,
            stacks,
            context,
        }
    }
}

/// Attaches in the requested mode; `auto` prefers exit-only (when its self-test passes),
/// then kprobes, then tracepoints.
pub fn attach(request: &Request) -> Result<Capture, ProbeError> {
    check_privileges()?;
    raise_memlock_limit();
    let atomics = match atomics::check() {
        Ok(()) => true,
        Err(why) => {
            tracing::info!(
                "the kernel lacks BPF atomic exchange (5.12; loading it: {why}): the rate \
                 limit keeps suppressed counts per CPU, each carried by a later event of its \
                 process and errno, or by the sweep record"
            );
            false
        }
    };
    let layouts = Layouts::read(
        request.io_uring,
        request.nofile_warn.as_ref(),
        request.stacks,
    );
    let load = |mode| load_and_attach(mode, request, &layouts, atomics);
    match request.mode {
        ProbeMode::ExitOnly => {
            load(ProbeMode::ExitOnly).map_err(unavailable("exit-only", "tracepoint"))
        }
        ProbeMode::Fexit => load(ProbeMode::Fexit).map_err(unavailable("fexit", "exit-only")),
        ProbeMode::Kprobe => {
            check_kprobes().map_err(unavailable("kprobe", "tracepoint"))?;
            load(ProbeMode::Kprobe)
        }
        ProbeMode::Tracepoint => {
            load(ProbeMode::Tracepoint).map_err(unavailable("tracepoint", "kprobe"))
        }
        ProbeMode::Auto => {
            let exit_only = match load(ProbeMode::ExitOnly) {
                Ok(capture) => {
                    tracing::info!(
                        "probe mode: exit-only (sys_exit_socket alone; the self-test read its \
                         call's exact arguments from the saved registers)"
                    );
                    return Ok(capture);
                }
                Err(why) => why,
            };
            tracing::info!("exit-only mode is unavailable ({exit_only}); trying the probe pairs");
            let kprobe = check_kprobes().and_then(|()| load(ProbeMode::Kprobe));
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
                    load(ProbeMode::Tracepoint)
                }
            }
        }
    }
}

/// Says which mode to use instead when an explicitly requested mode cannot work here.
fn unavailable(mode: &'static str, instead: &'static str) -> impl FnOnce(ProbeError) -> ProbeError {
    move |reason| match reason {
        ProbeError::Privileges { .. } | ProbeError::Missing(_) => reason,
        other => ProbeError::ModeUnavailable {
            mode,
            instead,
            reason: Box::new(other),
        },
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

fn load_and_attach(
    mode: ProbeMode,
    request: &Request,
    layouts: &Layouts,
    atomics: bool,
) -> Result<Capture, ProbeError> {
    let mut loader = EbpfLoader::new();
    loader.map_max_entries("EVENTS", request.ring_buffer_bytes);
    if atomics {
        // Only the builds without atomics use it.
        loader.map_max_entries("RATE_PENDING", 1);
    }
    loader.override_global("RATE_LIMIT", &request.rate_limit, true);
    loader.override_global("WAKEUP", &request.wakeup, true);
    loader.override_global("STACK_CONFIG", &layouts.stacks, true);
    let tracepoint_layout;
    if matches!(mode, ProbeMode::Tracepoint | ProbeMode::ExitOnly) {
        tracepoint_layout = socket_layout(&tracefs_root()?)?;
        tracing::debug!(?tracepoint_layout, "tracepoint field offsets from tracefs");
        if mode == ProbeMode::ExitOnly && tracepoint_layout.exit_ret != EXIT_ONLY_RET_OFFSET {
            return Err(ProbeError::ExitRetOffset {
                found: tracepoint_layout.exit_ret,
                expected: EXIT_ONLY_RET_OFFSET,
            });
        }
        loader.override_global("TRACEPOINT_LAYOUT", &tracepoint_layout, true);
    }
    match &layouts.regs {
        Ok(regs) => {
            loader.override_global("REGS_LAYOUT", regs, true);
        }
        Err(why) if mode == ProbeMode::ExitOnly => {
            return Err(ProbeError::RegsUnavailable(why.clone()));
        }
        Err(why) => tracing::info!(
            "a failed call seen without its entry will have no arguments: the saved \
             registers cannot be read ({why})"
        ),
    }
    if let Ok(io_uring) = &layouts.io_uring {
        loader.override_global("IO_URING_LAYOUT", io_uring, true);
    }
    loader.override_global("CONTEXT_LAYOUT", &layouts.context, true);
    match &layouts.warn {
        Ok(warn) => {
            loader.override_global("WARN_CONFIG", warn, true);
        }
        Err(why) => tracing::info!("no nofile warnings: {why}"),
    }
    let mut ebpf = loader.load(EBPF_OBJECT)?;
    let mut tracefs_kretprobe = None;
    match mode {
        ProbeMode::ExitOnly => attach_tracepoint(
            &mut ebpf,
            EXIT_ONLY.pick(atomics),
            "syscalls",
            "sys_exit_socket",
        )?,
        ProbeMode::Fexit => attach_fexit(&mut ebpf, FEXIT.pick(atomics))?,
        ProbeMode::Kprobe => {
            attach_kprobe(&mut ebpf, "sys_socket_entry")?;
            tracefs_kretprobe = attach_kretprobe(&mut ebpf, KRETPROBE.pick(atomics))?;
        }
        ProbeMode::Tracepoint | ProbeMode::Auto => {
            attach_tracepoint(
                &mut ebpf,
                "sys_enter_socket",
                "syscalls",
                "sys_enter_socket",
            )?;
            attach_tracepoint(
                &mut ebpf,
                TRACEPOINT_EXIT.pick(atomics),
                "syscalls",
                "sys_exit_socket",
            )?;
        }
    }
    let io_uring = attach_io_uring(&mut ebpf, &layouts.io_uring, IO_URING.pick(atomics));
    let mut events =
        RingBuf::try_from(take_map(&mut ebpf, "EVENTS")?).map_err(|source| ProbeError::Map {
            name: "EVENTS",
            source,
        })?;
    let warnings =
        RingBuf::try_from(take_map(&mut ebpf, "WARNINGS")?).map_err(|source| ProbeError::Map {
            name: "WARNINGS",
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
    let mut counters = KernelCounters::new(counters, errnos);
    let rate_maps = if request.rate_limit.interval_ns == 0 {
        None
    } else {
        let buckets = HashMap::try_from(take_map(&mut ebpf, "RATE_STATE")?).map_err(|source| {
            ProbeError::Map {
                name: "RATE_STATE",
                source,
            }
        })?;
        let per_cpu_pending = if atomics {
            None
        } else {
            Some(
                PerCpuHashMap::try_from(take_map(&mut ebpf, "RATE_PENDING")?).map_err(
                    |source| ProbeError::Map {
                        name: "RATE_PENDING",
                        source,
                    },
                )?,
            )
        };
        Some(RateMaps {
            buckets,
            per_cpu_pending,
        })
    };
    let mut early_records = Vec::new();
    if mode == ProbeMode::ExitOnly {
        let passed = selftest::run(&mut events).map_err(ProbeError::SelfTest)?;
        counters.exclude_own_failure(passed.errno);
        early_records = passed.others;
    }
    tracing::info!(
        "attached {} probes; capturing failed socket() calls",
        mode.as_str()
    );
    Ok(Capture {
        probes: Probes {
            _kretprobe: tracefs_kretprobe,
            _ebpf: ebpf,
        },
        mode,
        events,
        warnings,
        counters,
        io_uring,
        early_records,
        rate_maps,
    })
}

/// Attaches the io_uring program `name` where its layout is known; logs why not otherwise.
fn attach_io_uring(
    ebpf: &mut Ebpf,
    layout: &Result<IoUringLayout, String>,
    name: &'static str,
) -> bool {
    let attached = match layout {
        Ok(_) => attach_tracepoint(ebpf, name, io_uring::CATEGORY, io_uring::EVENT)
            .map_err(|e| e.to_string()),
        Err(why) => Err(why.clone()),
    };
    match attached {
        Ok(()) => {
            tracing::info!("capturing failed io_uring socket requests too");
            true
        }
        Err(why) => {
            tracing::info!("io_uring socket failures are not captured: {why}");
            false
        }
    }
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
    load_kprobe(ebpf, name)?
        .attach(KPROBE_TARGET, 0)
        .map_err(failed("attaching", &format!("{name} on {KPROBE_TARGET}")))?;
    Ok(())
}

/// Attaches the kretprobe `name` through the perf kprobe PMU, or through tracefs with room
/// for more calls in flight where the PMU's default keeps one per CPU.
fn attach_kretprobe(
    ebpf: &mut Ebpf,
    name: &'static str,
) -> Result<Option<TracefsKretprobe>, ProbeError> {
    if !kretprobe::default_is_one_per_cpu() {
        return attach_kprobe(ebpf, name).map(|()| None);
    }
    tracing::info!(
        "the kernel lacks CONFIG_PREEMPTION, so its default kretprobe keeps one call in flight \
         per CPU and would lose the returns of concurrent calls that sleep: creating the \
         kretprobe through tracefs with room for {MAXACTIVE}"
    );
    kretprobe::attach(load_kprobe(ebpf, name)?, KPROBE_TARGET).map(Some)
}

/// The kprobe program `name`, loaded.
fn load_kprobe<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut KProbe, ProbeError> {
    let program: &mut KProbe = program(ebpf, name)?;
    program
        .load()
        .map_err(failed("loading", &format!("{name} on {KPROBE_TARGET}")))?;
    Ok(program)
}

fn attach_fexit(ebpf: &mut Ebpf, name: &'static str) -> Result<(), ProbeError> {
    let btf = Btf::from_sys_fs().map_err(|err| ProbeError::Btf {
        what: "the kernel's BTF (aya)".into(),
        reason: err.to_string(),
    })?;
    let program: &mut FExit = program(ebpf, name)?;
    let target = format!("fexit {name} on {KPROBE_TARGET}");
    program
        .load(KPROBE_TARGET, &btf)
        .map_err(failed("loading", &target))?;
    program.attach().map_err(failed("attaching", &target))?;
    Ok(())
}

fn attach_tracepoint(
    ebpf: &mut Ebpf,
    name: &'static str,
    category: &str,
    event: &str,
) -> Result<(), ProbeError> {
    let program: &mut TracePoint = program(ebpf, name)?;
    let target = format!("{name} on tracepoint {category}:{event}");
    program.load().map_err(failed("loading", &target))?;
    program
        .attach(category, event)
        .map_err(failed("attaching", &target))?;
    Ok(())
}
