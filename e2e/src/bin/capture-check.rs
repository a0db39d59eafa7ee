//! Runs the real tapper beside known workloads and checks that it reported exactly the
//! provoked failures; prints one `capture-check: PASS|FAIL` line (used in kernel VMs).

use std::path::PathBuf;

use clap::Parser;
use tapper_e2e::check;

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
    #[arg(long, value_parser = ["kprobe", "tracepoint"])]
    probe: String,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    match check::run(
        &args.tapper,
        &args.workload,
        &args.probe,
        &check::standard_workloads(),
    ) {
        Ok(summary) => {
            println!(
                "capture-check: PASS probe={} kernel={kernel} events={} workload_failures={} workload_calls={}",
                args.probe, summary.events, summary.workload_events, summary.calls
            );
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            println!(
                "capture-check: FAIL probe={} kernel={kernel} {err:#}",
                args.probe
            );
            std::process::ExitCode::FAILURE
        }
    }
}
