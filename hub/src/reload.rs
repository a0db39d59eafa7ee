//! Hot reload by polling: a value built from files is rebuilt when one of them changes (its
//! inode, size or mtime, or where its symlinks lead, which catches Kubernetes Secret swaps).
//! A file that fails to load is logged and the previous value kept.

use std::{
    fmt::Display,
    os::unix::fs::MetadataExt,
    path::PathBuf,
    sync::{Arc, RwLock, Weak},
    time::Duration,
};

use tracing::{info, warn};

/// A value that a watcher may replace; readers take the current one.
pub struct Reloadable<T> {
    current: RwLock<Arc<T>>,
}

impl<T> Reloadable<T> {
    pub fn new(value: T) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Arc::new(value)),
        })
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

/// Polls `paths` every `interval` and rebuilds `target` with `load` when any of them
/// changed. The task ends when `target` is dropped.
pub fn watch<T, E, F>(
    what: &'static str,
    paths: Vec<PathBuf>,
    interval: Duration,
    target: &Arc<Reloadable<T>>,
    load: F,
) where
    T: Send + Sync + 'static,
    E: Display,
    F: Fn() -> Result<T, E> + Send + 'static,
{
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
            match load() {
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
