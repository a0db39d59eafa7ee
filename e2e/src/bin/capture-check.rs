//! Runs the real tapper beside known workloads and checks that it reported exactly the
//! provoked failures; prints one `capture-check: PASS|FAIL|UNSUPPORTED` line (used in
//! kernel VMs). Exits 0 on a pass, 3 when the tapper says the kernel cannot support the mode.

use std::path::PathBuf;

use clap::Parser;
use tapper_e2e::check;

/// The exit code for a mode the kernel cannot support.
const UNSUPPORTED: u8 = 3;

#[derive(Parser)]
#[command(
    about = "Check that the tapper reports exactly the socket() failures a workload provokes"
)]
struct Args {
    /// The tapper binary.
    #[arg(long)]
    tapper: PathBuf,
    /// The socket-workload binary.
    #[arg(long)]
    workload: PathBuf,
    /// Probe mode to check.
    #[arg(long, value_parser = ["exit-only", "fexit", "kprobe", "tracepoint"])]
    probe: String,
    /// Run the tapper with --stacks and require a user stack on each failed system call.
    #[arg(long)]
    stacks: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    match check::run(&args.tapper, &args.workload, &args.probe, args.stacks) {
        Ok(summary) => {
            println!(
                "capture-check: PASS probe={} kernel={kernel} events={} workload_failures={} workload_calls={} io_uring={} stacks={}",
                args.probe,
                summary.events,
                summary.workload_events,
                summary.calls,
                if summary.io_uring { "yes" } else { "no" },
                if args.stacks { "yes" } else { "no" }
            );
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            let text = format!("{err:#}");
            // The tapper refused the mode as one this kernel cannot support.
            if let Some(reason) = text.lines().find(|l| l.contains("cannot work here")) {
                println!(
                    "capture-check: UNSUPPORTED probe={} kernel={kernel} {}",
                    args.probe,
                    reason.trim()
                );
                return std::process::ExitCode::from(UNSUPPORTED);
            }
            println!(
                "capture-check: FAIL probe={} kernel={kernel} {err:#}",
                args.probe
            );
            std::process::ExitCode::FAILURE
        }
    }
}
