//! Syscall overhead: ns per `socket()` call, failing and successful, with no probes, with
//! the tapper in each probe mode and with bpftrace, measured side by side in every run. The
//! stacks and early-warnings parts use the same loops with their own tapper conditions.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;

use crate::{
    cli,
    machine::Machine,
    syscall::{self, Kind},
    tapper::{self, Peer},
};

/// What is attached while the loop runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum Condition {
    /// Nothing attached: the baseline.
    None,
    /// `tapper --probe exit-only --output none`.
    TapperExitOnly,
    /// `tapper --probe exit-only --stacks --output none` (user stacks on failures).
    TapperExitOnlyStacks,
    /// `tapper --probe tracepoint --output none`.
    TapperTracepoint,
    /// `tapper --probe kprobe --output none`.
    TapperKprobe,
    /// `tapper --probe fexit --output none`.
    TapperFexit,
    /// exit-only with early warnings off (`--warn-nofile-ratio 0 --warn-file-max-ratio 0`).
    TapperExitOnlyWarningsOff,
    /// exit-only with the warn floor at 0, so every successful call reads its soft
    /// RLIMIT_NOFILE (the most a successful call can cost below the ratio).
    TapperExitOnlyWarnFloor0,
    /// bpftrace counting failures by comm and errno on `sys_exit_socket`.
    Bpftrace,
    /// bpftrace printing one line per failure (read by this process through a pipe).
    BpftracePrintf,
    /// bpftrace doing the tapper's correlation: the arguments saved in a hash keyed by
    /// thread on `sys_enter_socket`, looked up and deleted on `sys_exit_socket`.
    BpftraceCorrelated,
    /// The `--baseline-tapper` build (one without the kernel context capture), exit-only.
    BaselineExitOnly,
    /// The `--baseline-tapper` build, tracepoint.
    BaselineTracepoint,
}

impl Condition {
    pub fn label(self) -> &'static str {
        match self {
            Condition::None => "no probes",
            Condition::TapperExitOnly => "tapper, exit-only",
            Condition::TapperExitOnlyStacks => "tapper, exit-only --stacks",
            Condition::TapperTracepoint => "tapper, tracepoint",
            Condition::TapperKprobe => "tapper, kprobe",
            Condition::TapperFexit => "tapper, fexit",
            Condition::TapperExitOnlyWarningsOff => "tapper, exit-only, warnings off",
            Condition::TapperExitOnlyWarnFloor0 => "tapper, exit-only, warn floor 0",
            Condition::Bpftrace => "bpftrace one-liner (counts)",
            Condition::BpftracePrintf => "bpftrace, printf per failure",
            Condition::BpftraceCorrelated => "bpftrace, entry+exit correlated",
            Condition::BaselineExitOnly => "baseline tapper, exit-only",
            Condition::BaselineTracepoint => "baseline tapper, tracepoint",
        }
    }

    /// The tapper's `--probe` mode for a tapper condition.
    fn tapper_mode(self) -> Option<&'static str> {
        match self {
            Condition::TapperExitOnly
            | Condition::TapperExitOnlyStacks
            | Condition::TapperExitOnlyWarningsOff
            | Condition::TapperExitOnlyWarnFloor0
            | Condition::BaselineExitOnly => Some("exit-only"),
            Condition::TapperTracepoint | Condition::BaselineTracepoint => Some("tracepoint"),
            Condition::TapperKprobe => Some("kprobe"),
            Condition::TapperFexit => Some("fexit"),
            _ => None,
        }
    }

    fn is_baseline(self) -> bool {
        matches!(
            self,
            Condition::BaselineExitOnly | Condition::BaselineTracepoint
        )
    }

    /// The tapper's flags beyond `--probe` for a tapper condition. The rate limit is off:
    /// the loop fails far faster than it allows, and a suppressed failure (a counter bump,
    /// no event) is not the cost being measured.
    fn tapper_args(self) -> Vec<String> {
        let extra: &[&str] = match self {
            Condition::TapperExitOnlyStacks => &["--stacks"],
            Condition::TapperExitOnlyWarningsOff => {
                &["--warn-nofile-ratio", "0", "--warn-file-max-ratio", "0"]
            }
            Condition::TapperExitOnlyWarnFloor0 => &["--warn-nofile-floor", "0"],
            _ => &[],
        };
        ["--rate-limit", "0"]
            .iter()
            .chain(extra)
            .map(|a| a.to_string())
            .collect()
    }

    fn bpftrace_program(self) -> Option<&'static str> {
        match self {
            Condition::Bpftrace => Some(tapper::BPFTRACE_PROGRAM),
            Condition::BpftracePrintf => Some(tapper::BPFTRACE_PRINTF_PROGRAM),
            Condition::BpftraceCorrelated => Some(tapper::BPFTRACE_CORRELATED_PROGRAM),
            _ => None,
        }
    }
}

/// The options of `tapper-bench overhead`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    #[command(flatten)]
    pub common: cli::Common,
    /// What to measure; `none` (the baseline) is required.
    #[arg(long, value_enum, value_delimiter = ',',
          default_values_t = [Condition::None, Condition::TapperTracepoint, Condition::Bpftrace])]
    pub conditions: Vec<Condition>,
    /// socket() calls per timed loop.
    #[arg(long, default_value_t = 500_000)]
    pub iters: u64,
    /// The bpftrace binary.
    #[arg(long, default_value = "bpftrace")]
    pub bpftrace: PathBuf,
    /// Where this runs, for the report ("host", "vm").
    #[arg(long, default_value = "host")]
    pub env: String,
    /// Another tapper build, for the `baseline-*` conditions (e.g. one from before a change).
    #[arg(long)]
    pub baseline_tapper: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub run: usize,
    pub condition: Condition,
    pub kind: Kind,
    pub ns_per_call: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub env: String,
    pub machine: Machine,
    pub iters: u64,
    pub runs: usize,
    pub samples: Vec<Sample>,
    /// Ring-buffer drops the tapper counted per run (drops make the failing path cheaper;
    /// they are shown next to the figures).
    pub tapper_drops: Vec<(usize, Condition, u64)>,
    /// The bpftrace peers' programs, quoted in the report.
    pub bpftrace_programs: BpftracePrograms,
}

/// The three bpftrace programs the peers run.
#[derive(Debug, Clone, Serialize)]
pub struct BpftracePrograms {
    pub counts: &'static str,
    pub printf: &'static str,
    pub correlated: &'static str,
}

/// Runs every condition once per run, in an order that rotates from run to run.
pub fn run(opts: &Options) -> Result<Outcome> {
    if !opts.conditions.contains(&Condition::None) {
        bail!("the conditions must include `none`, the baseline");
    }
    if opts.baseline_tapper.is_none()
        && let Some(c) = opts.conditions.iter().find(|c| c.is_baseline())
    {
        bail!(
            "condition `{}` needs --baseline-tapper PATH (the other tapper build to measure)",
            c.label()
        );
    }
    let mut machine = Machine::now();
    let mut samples = Vec::new();
    let mut tapper_drops = Vec::new();
    let n = opts.conditions.len();
    for run in 0..opts.common.runs {
        for i in 0..n {
            let cond = opts.conditions[(i + run) % n];
            eprintln!(
                "[overhead] run {}/{}: {}",
                run + 1,
                opts.common.runs,
                cond.label()
            );
            let peer = attach(cond, opts)?;
            for kind in Kind::ALL {
                let ns = syscall::ns_per_call(kind, opts.iters)?;
                samples.push(Sample {
                    run,
                    condition: cond,
                    kind,
                    ns_per_call: ns,
                });
            }
            if let Some(peer) = peer
                && let Some(f) = peer.stop()?
            {
                tapper_drops.push((run, cond, f.drops));
            }
        }
    }
    machine.finish();
    Ok(Outcome {
        env: opts.env.clone(),
        machine,
        iters: opts.iters,
        runs: opts.common.runs,
        samples,
        tapper_drops,
        bpftrace_programs: BpftracePrograms {
            counts: tapper::BPFTRACE_PROGRAM,
            printf: tapper::BPFTRACE_PRINTF_PROGRAM,
            correlated: tapper::BPFTRACE_CORRELATED_PROGRAM,
        },
    })
}

fn attach(cond: Condition, opts: &Options) -> Result<Option<Peer>> {
    if let Some(mode) = cond.tapper_mode() {
        let bin = match &opts.baseline_tapper {
            Some(baseline) if cond.is_baseline() => baseline,
            _ => &opts.common.tapper,
        };
        let tapper = tapper::start_tapper(bin, mode, "none", &cond.tapper_args())?;
        return Ok(Some(Peer::Tapper(tapper)));
    }
    match cond.bpftrace_program() {
        Some(program) => Ok(Some(Peer::Bpftrace(tapper::start_bpftrace(
            &opts.bpftrace,
            program,
        )?))),
        None => Ok(None),
    }
}
