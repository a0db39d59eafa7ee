//! The test image: the static probe program (`images/probe.rs`, built with rustc) in an
//! image `FROM scratch`, built by podman in a private storage and saved as an OCI archive
//! that containerd imports with `ctr`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use anyhow::{Context, bail};

/// The image's name in every store it is put in.
pub const IMAGE: &str = "localhost/tapper-e2e/probe:1";

/// Runs a command to completion; a failure is an error with its output.
pub fn run(cmd: &mut Command) -> anyhow::Result<Output> {
    let out = cmd
        .output()
        .with_context(|| format!("starting {cmd:?}; run scripts/setup.sh --test to install it"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Builds the static probe program (`images/probe.rs`) as `DIR/probe`.
pub fn build_probe(dir: &Path) -> anyhow::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/probe.rs");
    let probe = dir.join("probe");
    run(Command::new("rustc")
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
        ])
        .arg(&source)
        .arg("-o")
        .arg(&probe))?;
    Ok(probe)
}

/// Rootful podman with its storage, run root and config in one directory, the cgroupfs
/// manager (PID 1 here is not systemd) and runc (crun refuses hybrid cgroups with a
/// controller left in cgroup2).
pub struct Podman {
    pub root: PathBuf,
    dir: PathBuf,
}

impl Podman {
    pub fn new(dir: &Path) -> Self {
        Self {
            root: dir.join("storage"),
            dir: dir.to_owned(),
        }
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args(["--runtime", "runc", "--events-backend", "file"]);
        cmd
    }

    /// Builds [`IMAGE`] from the probe program; returns the image's OCI archive.
    pub fn build_probe_image(&self) -> anyhow::Result<PathBuf> {
        let context = self.dir.join("context");
        build_probe(&context)?;
        fs::write(
            context.join("Containerfile"),
            "FROM scratch\nCOPY probe /probe\nENTRYPOINT [\"/probe\"]\n",
        )?;
        run(self
            .command()
            .args(["build", "-q", "-t", IMAGE])
            .arg(&context))?;
        let archive = self.dir.join("probe-image.tar");
        run(self
            .command()
            .args(["save", "--format", "oci-archive", "-o"])
            .arg(&archive)
            .arg(IMAGE))?;
        Ok(archive)
    }
}
