//! Counting a process's open descriptors cheaply: since Linux 6.2 the size that `stat`
//! gives for `/proc/PID/fd` is the count, whatever the count; older kernels say 0 there,
//! and the directory is listed instead (one entry per descriptor). Chosen once.

use std::{fs, sync::OnceLock};

/// How this kernel lets descriptors be counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdCount {
    /// `stat("/proc/PID/fd").st_size` (6.2+): constant time.
    Stat,
    /// One `readdir` entry per descriptor: as slow as the process has descriptors.
    List,
}

impl FdCount {
    /// The way this kernel supports, found once (this process always has descriptors open,
    /// so a size of 0 means the kernel does not report the count).
    pub fn detect() -> Self {
        static CHOSEN: OnceLock<FdCount> = OnceLock::new();
        *CHOSEN.get_or_init(|| {
            let chosen = match fs::metadata("/proc/self/fd") {
                Ok(meta) if meta.len() > 0 => Self::Stat,
                _ => Self::List,
            };
            tracing::debug!(?chosen, "counting open descriptors");
            chosen
        })
    }

    /// Descriptors `pid` has open now, or `None` when it is gone.
    pub fn open_fds(self, pid: u32) -> Option<u64> {
        let dir = format!("/proc/{pid}/fd");
        match self {
            Self::Stat => Some(fs::metadata(dir).ok()?.len()),
            Self::List => Some(fs::read_dir(dir).ok()?.count() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ways_count_the_same_descriptors() {
        // This host runs 6.18: the cheap way is there.
        assert_eq!(FdCount::detect(), FdCount::Stat);
        let me = std::process::id();
        let extra: Vec<_> = (0..50)
            .map(|_| fs::File::open("/dev/null").unwrap())
            .collect();
        let (stat, list) = (FdCount::Stat.open_fds(me), FdCount::List.open_fds(me));
        // The listing holds one more descriptor (its own directory) while it reads.
        let (stat, list) = (stat.unwrap(), list.unwrap());
        assert!(
            stat >= 50 && list.abs_diff(stat) <= 1,
            "stat {stat}, list {list}"
        );
        drop(extra);
        assert!(FdCount::Stat.open_fds(me).unwrap() < stat);
        assert_eq!(
            FdCount::Stat.open_fds(4_194_304 + 7),
            None,
            "no such process"
        );
    }
}
