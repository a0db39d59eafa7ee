//! Warnings written so far, by kind, shared with the metrics endpoint
//! (`tapper_warnings_total{kind}`).

use std::sync::atomic::{AtomicU64, Ordering};

use super::{KIND_FILE_MAX, KIND_NOFILE};

#[derive(Debug, Default)]
pub struct WarningCounts {
    nofile: AtomicU64,
    file_max: AtomicU64,
}

impl WarningCounts {
    pub fn count(&self, kind: &str) {
        let slot = match kind {
            KIND_FILE_MAX => &self.file_max,
            _ => &self.nofile,
        };
        slot.fetch_add(1, Ordering::Relaxed);
    }

    /// (kind, warnings) for every kind.
    pub fn by_kind(&self) -> [(&'static str, u64); 2] {
        [
            (KIND_NOFILE, self.nofile.load(Ordering::Relaxed)),
            (KIND_FILE_MAX, self.file_max.load(Ordering::Relaxed)),
        ]
    }
}
