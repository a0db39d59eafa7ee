//! The user-stack tests' workload: a C program (in `e2e/workloads`) built with frame
//! pointers by gcc at test time, which calls socket() through `stack_outer`,
//! `stack_middle` and `stack_inner` until EMFILE.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

/// The workload's three functions, innermost first, as a stack names them.
pub const FUNCTIONS: [&str; 3] = ["stack_inner", "stack_middle", "stack_outer"];

const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/workloads/stack_workload.c");

/// Compiles the workload into `dir` and returns the binary's path.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let bin = dir.join("stack-workload");
    let status = Command::new("gcc")
        .args(["-O0", "-g", "-fno-omit-frame-pointer", "-o"])
        .arg(&bin)
        .arg(SOURCE)
        .status()
        .context("running gcc (scripts/setup.sh installs it)")?;
    if !status.success() {
        bail!("gcc could not build {SOURCE}: {status}");
    }
    Ok(bin)
}
