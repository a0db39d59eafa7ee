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
    compile(&bin, &[])?;
    Ok(bin)
}

/// Compiles the workload to `bin` with its functions named `PREFIX_inner`,
/// `PREFIX_middle`, `PREFIX_outer` and `PREFIX_fail` instead: the same code at the same
/// offsets under other names.
pub fn build_renamed(bin: &Path, prefix: &str) -> anyhow::Result<()> {
    let renames = [
        ("stack_inner", "inner"),
        ("stack_middle", "middle"),
        ("stack_outer", "outer"),
        ("fail_emfile", "fail"),
    ]
    .map(|(name, part)| format!("-D{name}={prefix}_{part}"));
    compile(bin, &renames.each_ref().map(String::as_str))
}

fn compile(bin: &Path, extra: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("gcc")
        .args(["-O0", "-g", "-fno-omit-frame-pointer"])
        .args(extra)
        .arg("-o")
        .arg(bin)
        .arg(SOURCE)
        .status()
        .context("running gcc (scripts/setup.sh installs it)")?;
    if !status.success() {
        bail!("gcc could not build {SOURCE}: {status}");
    }
    Ok(())
}
