//! The kernel-context tests' workload: a C program (in `e2e/workloads`) built with cc at
//! test time, whose modes fail `socket()` and exit at once (see the source's header).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/workloads/short_lived.c");

/// Compiles the workload into `dir` as `short-lived` and returns the binary's path.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let bin = dir.join("short-lived");
    let status = Command::new("cc")
        .args(["-O2", "-Wall", "-Werror", "-o"])
        .arg(&bin)
        .arg(SOURCE)
        .status()
        .context("running cc (scripts/setup.sh installs it)")?;
    if !status.success() {
        bail!("cc could not build {SOURCE}: {status}");
    }
    Ok(bin)
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
