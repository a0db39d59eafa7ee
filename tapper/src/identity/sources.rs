//! Which runtimes to ask for names: the `--cri-socket` and `--podman-storage` choices, and
//! the usual places `auto` looks.

use std::path::PathBuf;

use thiserror::Error;

use super::{cri::CriClient, podman::PodmanStorage};

/// Where `--cri-socket auto` looks, in order: containerd, CRI-O, k3s's containerd.
pub const CRI_SOCKETS: &[&str] = &[
    "/run/containerd/containerd.sock",
    "/run/crio/crio.sock",
    "/run/k3s/containerd/containerd.sock",
];
/// Where `--podman-storage auto` looks: rootful podman's default storage root.
pub const PODMAN_STORAGE: &str = "/var/lib/containers/storage";

/// A runtime source as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceChoice {
    /// The first usual place that exists, if any.
    Auto,
    /// Do not ask this runtime.
    Off,
    /// This path, which must exist.
    At(PathBuf),
}

impl SourceChoice {
    /// Parses `auto`, `none` or a path.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "" => Err("give a path, `auto` or `none`".into()),
            "auto" => Ok(Self::Auto),
            "none" => Ok(Self::Off),
            path => Ok(Self::At(path.into())),
        }
    }

    fn resolve(&self, flag: &'static str, usual: &[&str]) -> Result<Option<PathBuf>, SourceError> {
        match self {
            Self::Off => Ok(None),
            Self::Auto => Ok(usual.iter().map(PathBuf::from).find(|p| p.exists())),
            Self::At(path) if path.exists() => Ok(Some(path.clone())),
            Self::At(path) => Err(SourceError::Missing {
                flag,
                path: path.clone(),
            }),
        }
    }
}

#[derive(Debug, Error)]
pub enum SourceError {
    #[error(
        "{flag} {}: no such file; give the runtime's path, `auto` to look in the usual places, or `none`",
        path.display()
    )]
    Missing { flag: &'static str, path: PathBuf },
}

/// The runtimes found for this node.
pub struct Sources {
    pub cri: Option<CriClient>,
    pub podman: Option<PodmanStorage>,
}

impl Sources {
    /// Resolves the choices; a path given explicitly must exist. Must run inside the
    /// tokio runtime (the CRI client's channel is created here).
    pub fn find(cri: &SourceChoice, podman: &SourceChoice) -> Result<Self, SourceError> {
        let cri = cri.resolve("--cri-socket", CRI_SOCKETS)?;
        let podman = podman.resolve("--podman-storage", &[PODMAN_STORAGE])?;
        let describe = |what: &str, found: &Option<PathBuf>| match found {
            Some(path) => tracing::info!("{what}: {}", path.display()),
            None => tracing::info!("{what}: none; those names stay null"),
        };
        describe("CRI socket (pod and container names)", &cri);
        describe("podman storage (podman container names)", &podman);
        Ok(Self {
            cri: cri.map(CriClient::new),
            podman: podman.map(PodmanStorage::new),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.cri.is_none() && self.podman.is_none()
    }
}
