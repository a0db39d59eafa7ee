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
const LOADER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/workloads/stack_loader.c");

/// Compiles the workload into `dir` and returns the binary's path.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let bin = dir.join("stack-workload");
    compile(&bin, &[], SOURCE, &[])?;
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
    compile(bin, &renames.each_ref().map(String::as_str), SOURCE, &[])
}

/// Compiles the workload as a shared library (`main` named `workload_main`) and a loader
/// that runs it, both into `dir` (the loader finds the library beside itself); returns
/// (loader, library). Takes the same arguments as the workload.
pub fn build_as_library(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let library = dir.join("libstack-workload.so");
    compile(
        &library,
        &["-fPIC", "-shared", "-Dmain=workload_main"],
        SOURCE,
        &[],
    )?;
    let loader = dir.join("stack-loader");
    let search = format!("-L{}", dir.display());
    compile(
        &loader,
        &[],
        LOADER,
        &[&search, "-lstack-workload", "-Wl,-rpath,$ORIGIN"],
    )?;
    Ok((loader, library))
}

/// `gcc -O0 -g -fno-omit-frame-pointer FLAGS -o BIN SOURCE LIBS`.
fn compile(bin: &Path, flags: &[&str], source: &str, libs: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("gcc")
        .args(["-O0", "-g", "-fno-omit-frame-pointer"])
        .args(flags)
        .arg("-o")
        .arg(bin)
        .arg(source)
        .args(libs)
        .status()
        .context("running gcc (scripts/setup.sh installs it)")?;
    if !status.success() {
        bail!("gcc could not build {source}: {status}");
    }
    Ok(())
}
