//! Provokes ENFILE in a kernel-matrix VM and checks that the tapper warned of it first: it
//! lowers fs.file-max just above the files in use, lets an unprivileged child open sockets
//! steadily until ENFILE, and expects a "file-max" warning with a finite time to exhaustion
//! before the child's ENFILE event. Prints one `file-max-check: PASS|FAIL` line. It lowers a
//! system-wide limit, so it refuses to run outside the VM (no `kmatrix.` on the kernel
//! command line).

use std::{fs, path::PathBuf, process::Command, thread::sleep, time::Duration};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use nix::sys::signal::Signal;
use serde_json::Value;
use tapper_e2e::{provoke::socket_call, tapper::RunningTapper};

const FILE_MAX: &str = "/proc/sys/fs/file-max";
const FILE_NR: &str = "/proc/sys/fs/file-nr";
/// File handles left above those in use when fs.file-max is lowered.
const HEADROOM: u64 = 400;
/// The unprivileged user the child runs as (root may exceed fs.file-max).
const NOBODY: u32 = 65534;

#[derive(Parser)]
#[command(about = "In a kernel-matrix VM: lower fs.file-max and check the file-max warning")]
struct Args {
    /// The tapper binary.
    #[arg(long)]
    tapper: Option<PathBuf>,
    /// Internal: be the unprivileged child that opens sockets until ENFILE.
    #[arg(long, hide = true)]
    ramp: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.ramp {
        return match ramp() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("file-max-check child: {err:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let result = args
        .tapper
        .context("--tapper is required")
        .and_then(|tapper| check(&tapper));
    match result {
        Ok(line) => {
            println!("file-max-check: PASS {line}");
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            println!("file-max-check: FAIL {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn check(tapper: &std::path::Path) -> anyhow::Result<String> {
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    ensure!(
        cmdline.contains("kmatrix."),
        "refusing to lower fs.file-max outside a kernel-matrix VM (it is system-wide); \
         scripts/kernel-matrix.sh runs this check in its VMs"
    );
    let original = fs::read_to_string(FILE_MAX).context("reading fs.file-max")?;
    let running = RunningTapper::start(
        tapper,
        &[
            "--warn-file-max-every",
            "100ms",
            "--warn-interval",
            "1s",
            "--warn-file-max-ratio",
            "0.8",
        ],
    )?;
    let limit = in_use()? + HEADROOM;
    fs::write(FILE_MAX, limit.to_string()).context("lowering fs.file-max")?;
    let child = Command::new(std::env::current_exe()?)
        .arg("--ramp")
        .output()
        .context("running the child");
    fs::write(FILE_MAX, original.trim()).context("restoring fs.file-max")?;
    let out = running.stop(Signal::SIGINT)?;
    let child = child?;
    ensure!(
        child.status.success(),
        "the child failed: {}",
        String::from_utf8_lossy(&child.stderr)
    );
    let summary: Value = serde_json::from_slice(&child.stdout)?;
    let pid = summary["pid"].as_u64().context("the child's pid")?;
    let enfile: Vec<&Value> = out
        .events
        .iter()
        .filter(|e| e["pid"] == pid && e["errno_name"] == "ENFILE")
        .collect();
    ensure!(
        enfile.len() == 1,
        "expected the child's one ENFILE event, got {enfile:?}"
    );
    // With the system's file table full, the tapper may not open fs.file-nr itself: the
    // sentence then says the numbers were not read instead of giving them.
    let diagnosis = &enfile[0]["diagnosis"];
    ensure!(
        diagnosis["cause"] == "file_max"
            && diagnosis["text"].as_str().is_some_and(|t| {
                t.contains(" of fs.file-max ") || t.contains("fs.file-nr and fs.file-max not read")
            }),
        "the ENFILE event's diagnosis is not file_max: {diagnosis}"
    );
    let warnings: Vec<&Value> = out
        .warnings
        .iter()
        .filter(|w| w["kind"] == "file-max" && w["limit"] == limit)
        .collect();
    let Some(first) = warnings.first() else {
        bail!("no file-max warning; warnings: {:?}", out.warnings);
    };
    ensure!(first["pid"].is_null() && first["comm"].is_null(), "{first}");
    ensure!(first["ratio"].as_f64().unwrap_or(0.0) >= 0.8, "{first}");
    ensure!(first["diagnosis"]["cause"] == "file_max", "{first}");
    let eta = first["eta_seconds"].as_f64();
    ensure!(
        eta.is_some_and(|e| e.is_finite() && e >= 0.0),
        "no finite eta: {first}"
    );
    ensure!(
        unix_secs(&first["ts"])? < unix_secs(&enfile[0]["ts"])?,
        "the warning ({}) came after the ENFILE event ({})",
        first["ts"],
        enfile[0]["ts"]
    );
    Ok(format!(
        "limit={limit} warnings={} first_used={} eta_seconds={:.2} opened={}",
        warnings.len(),
        first["used"],
        eta.unwrap_or_default(),
        summary["opened"]
    ))
}

fn unix_secs(ts: &Value) -> anyhow::Result<f64> {
    let text = ts.as_str().context("a timestamp")?;
    let t = tapper_proto::json::parse_rfc3339(text).map_err(|e| anyhow::anyhow!("{text}: {e}"))?;
    Ok(t.seconds as f64 + t.nanos as f64 / 1e9)
}

/// File handles in use now (`file-nr`: allocated minus unused).
fn in_use() -> anyhow::Result<u64> {
    let text = fs::read_to_string(FILE_NR)?;
    let fields: Vec<u64> = text
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    Ok(fields[0] - fields[1])
}

/// The child: as nobody (without CAP_SYS_ADMIN, which may exceed fs.file-max), one socket
/// every 10 ms until ENFILE.
fn ramp() -> anyhow::Result<()> {
    use nix::unistd::{Gid, Uid, setresgid, setresuid};
    setresgid(
        Gid::from_raw(NOBODY),
        Gid::from_raw(NOBODY),
        Gid::from_raw(NOBODY),
    )?;
    setresuid(
        Uid::from_raw(NOBODY),
        Uid::from_raw(NOBODY),
        Uid::from_raw(NOBODY),
    )?;
    let mut opened = 0u64;
    loop {
        match socket_call(libc::AF_INET, libc::SOCK_DGRAM, 0) {
            Ok(_) => opened += 1,
            Err(libc::ENFILE) => break,
            Err(errno) => bail!("socket() failed with errno {errno} after {opened}, not ENFILE"),
        }
        sleep(Duration::from_millis(10));
    }
    println!(
        "{}",
        serde_json::json!({ "pid": std::process::id(), "opened": opened })
    );
    Ok(())
}
