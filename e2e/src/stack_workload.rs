//! The user-stack tests' workloads: C programs (in `e2e/workloads`) built with frame
//! pointers by gcc at test time. One calls socket() through `stack_outer`,
//! `stack_middle` and `stack_inner` until EMFILE; a short-lived one fails once through
//! `open_listener` and `make_socket` and exits at once.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

/// The workload's three functions, innermost first, as a stack names them.
pub const FUNCTIONS: [&str; 3] = ["stack_inner", "stack_middle", "stack_outer"];

const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/workloads/stack_workload.c");
const SHORT_LIVED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/workloads/stack_short_lived.c");

/// The short-lived workload's functions, innermost first, as a stack names them.
pub const SHORT_LIVED_FUNCTIONS: [&str; 3] = ["make_socket", "open_listener", "main"];

const LOADER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/workloads/stack_loader.c");

/// Compiles the workload into `dir` and returns the binary's path.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let bin = dir.join("stack-workload");
    compile(&bin, &[], SOURCE, &[])?;
    Ok(bin)
}

/// Compiles the short-lived workload into `dir` and returns the binary's path.
pub fn build_short_lived(dir: &Path) -> anyhow::Result<PathBuf> {
    let bin = dir.join("stack-short-lived");
    compile(&bin, &[], SHORT_LIVED, &[])?;
    Ok(bin)
}

/// The ELF build id of `bin` in lowercase hex, as `readelf -n` prints it.
pub fn build_id(bin: &Path) -> anyhow::Result<String> {
    let out = Command::new("readelf")
        .arg("-n")
        .arg(bin)
        .output()
        .context("running readelf (binutils)")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| line.trim().strip_prefix("Build ID: ").map(str::to_owned))
        .with_context(|| format!("readelf -n shows no build id for {}", bin.display()))
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

/// `gcc -O0 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer FLAGS -o BIN SOURCE LIBS`,
/// with `$CC` instead of gcc when set (a cross compiler for another architecture's VM). Leaf
/// functions keep their frame record too: aarch64's gcc omits it by default, and the frame
/// walk then loses the leaf's caller (its return address stays in the link register).
pub fn compile(bin: &Path, flags: &[&str], source: &str, libs: &[&str]) -> anyhow::Result<()> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".to_string());
    let status = Command::new(&cc)
        .args([
            "-O0",
            "-g",
            "-fno-omit-frame-pointer",
            "-mno-omit-leaf-frame-pointer",
        ])
        .args(flags)
        .arg("-o")
        .arg(bin)
        .arg(source)
        .args(libs)
        .status()
        .with_context(|| format!("running {cc} (scripts/setup.sh installs gcc)"))?;
    if !status.success() {
        bail!("{cc} could not build {source}: {status}");
    }
    Ok(())
}
