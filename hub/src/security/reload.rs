//! Hot reload by polling: a value built from files is rebuilt when one of them changes (its
//! inode, size or mtime, or where its symlinks lead, which catches Kubernetes Secret swaps).
//! A file that fails to load is logged and the previous value kept; who holds a
//! [`Reloadable::changes`] receiver learns of each new value.

use std::{
    fmt::Display,
    os::unix::fs::MetadataExt,
    path::PathBuf,
    sync::{Arc, RwLock, Weak},
    time::Duration,
};

use tokio::sync::watch;
use tracing::{info, warn};

/// A value that a watcher may replace; readers take the current one.
pub struct Reloadable<T> {
    current: RwLock<Arc<T>>,
    /// Bumped after each replacement.
    changes: watch::Sender<u64>,
}

impl<T> Reloadable<T> {
    pub fn new(value: T) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Arc::new(value)),
            changes: watch::Sender::new(0),
        })
    }

    /// Wakes (`changed()`) after each replacement from now on.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The value in force now.
    pub fn get(&self) -> Arc<T> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, value: T) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(value);
        self.changes.send_modify(|n| *n += 1);
    }
}

/// What identifies the version of one file: where its symlinks lead, and the inode, size
/// and mtime of the link and of what it leads to. `None` while it cannot be read.
type Stamp = Option<(PathBuf, [i64; 6])>;

fn stamp(path: &PathBuf) -> Stamp {
    let link = std::fs::symlink_metadata(path).ok()?;
    let target = std::fs::metadata(path).ok()?;
    let real = std::fs::canonicalize(path).ok()?;
    Some((
        real,
        [
            link.ino() as i64,
            link.mtime_nsec() + link.mtime() * 1_000_000_000,
            target.ino() as i64,
            target.size() as i64,
            target.mtime(),
            target.mtime_nsec(),
        ],
    ))
}

/// Polls `paths` every `interval` and rebuilds `target` with `load` (on a blocking thread:
/// it reads files) when any of them changed. The task ends when `target` is dropped.
pub fn watch<T, E, F>(
    what: &'static str,
    paths: Vec<PathBuf>,
    interval: Duration,
    target: &Arc<Reloadable<T>>,
    load: F,
) where
    T: Send + Sync + 'static,
    E: Display + Send + 'static,
    F: Fn() -> Result<T, E> + Send + Sync + 'static,
{
    let load = Arc::new(load);
    let target: Weak<Reloadable<T>> = Arc::downgrade(target);
    let mut last: Vec<Stamp> = paths.iter().map(stamp).collect();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let Some(target) = target.upgrade() else {
                return;
            };
            let now: Vec<Stamp> = paths.iter().map(stamp).collect();
            if now == last {
                continue;
            }
            last = now;
            let load = load.clone();
            let Ok(loaded) = tokio::task::spawn_blocking(move || load()).await else {
                continue;
            };
            match loaded {
                Ok(value) => {
                    target.set(value);
                    info!("{what} reloaded");
                }
                Err(err) => {
                    warn!(error = %err, "{what} changed but cannot be loaded; keeping the previous one")
                }
            }
        }
    });
}
