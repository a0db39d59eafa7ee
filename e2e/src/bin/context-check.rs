//! Runs the short-lived check (`tapper_e2e::context_check`) in the tapper's default mode or
//! in `--probe MODE`; prints one `context-check: PASS|FAIL` line (used in kernel VMs,
//! which have no compiler: `--build-workload` builds the workload beforehand on the host).

use std::path::PathBuf;

use clap::Parser;
use tapper_e2e::{context_check, short_lived};

#[derive(Parser)]
#[command(about = "Check what the tapper reports of a process gone right after EMFILE")]
struct Args {
    /// The tapper binary.
    #[arg(long, required_unless_present = "build_workload")]
    tapper: Option<PathBuf>,
    /// The short-lived workload binary (built with --build-workload).
    #[arg(long, required_unless_present = "build_workload")]
    workload: Option<PathBuf>,
    /// Probe mode to check; the tapper's default when absent.
    #[arg(long, value_parser = ["exit-only", "fexit", "kprobe", "tracepoint"])]
    probe: Option<String>,
    /// Only build the short-lived workload (static, with gcc) at this path, and exit.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["tapper", "workload", "probe"])]
    build_workload: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Some(path) = args.build_workload {
        return match short_lived::build_at(&path) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("context-check: {err:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let (Some(tapper), Some(workload)) = (args.tapper, args.workload) else {
        unreachable!("clap requires --tapper and --workload without --build-workload")
    };
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let asked = args.probe.as_deref().unwrap_or("default");
    match context_check::run(&tapper, &workload, args.probe.as_deref()) {
        Ok(attached) => {
            println!("context-check: PASS probe={asked} attached={attached} kernel={kernel}");
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            println!("context-check: FAIL probe={asked} kernel={kernel} {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
