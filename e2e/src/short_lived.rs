//! The kernel-context tests' workload: a C program (in `e2e/workloads`) built with gcc at
//! test time, whose modes fail `socket()` and exit at once (see the source's header).
//! Static, so it also runs in a kernel-matrix VM, and with a build id of our choosing.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::stack_workload;

const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/workloads/short_lived.c");

/// The build id the workload is linked with, as a stack frame shows it.
pub const BUILD_ID: &str = "5e0127ed0c0de5e0127ed0c0de5e0127ed0c0de5";

/// The `emfile` mode's functions, innermost first, as a stack names them.
pub const EMFILE_FUNCTIONS: [&str; 3] = ["udp_socket", "emfile", "main"];

/// Compiles the workload into `dir` as `short-lived` and returns the binary's path.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let bin = dir.join("short-lived");
    build_at(&bin)?;
    Ok(bin)
}

/// Compiles the workload to `bin`: without debug info, so naming its frames reads the
/// symbol table alone, quick enough for the tapper's symbolizing budget in an emulated VM.
pub fn build_at(bin: &Path) -> anyhow::Result<()> {
    let build_id = format!("-Wl,--build-id=0x{BUILD_ID}");
    stack_workload::compile(
        bin,
        &["-static", "-g0", "-Wall", "-Werror", &build_id],
        SOURCE,
        &[],
    )
}

/// Runs one mode to its end (the process is reaped, so `/proc` has nothing of it);
/// returns its pid.
pub fn run(bin: &Path, mode: &str) -> anyhow::Result<u32> {
    let mut child = Command::new(bin)
        .arg(mode)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id();
    let status = child.wait()?;
    if !status.success() {
        bail!("{} {mode}: {status}", bin.display());
    }
    Ok(pid)
}
