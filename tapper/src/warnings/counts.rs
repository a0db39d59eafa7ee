//! Warnings written so far, by kind, and those skipped, shared with the metrics endpoint
//! (`tapper_warnings_total{kind}`, `tapper_warnings_skipped_total`).

use std::sync::atomic::{AtomicU64, Ordering};

use super::{KIND_FILE_MAX, KIND_NOFILE};

#[derive(Debug, Default)]
pub struct WarningCounts {
    nofile: AtomicU64,
    file_max: AtomicU64,
    skipped: AtomicU64,
}

impl WarningCounts {
    pub fn count(&self, kind: &str) {
        let slot = match kind {
            KIND_FILE_MAX => &self.file_max,
            _ => &self.nofile,
        };
        slot.fetch_add(1, Ordering::Relaxed);
    }

    /// A nofile warning skipped because too many were waiting to be written.
    pub fn skip(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// (kind, warnings) for every kind.
    pub fn by_kind(&self) -> [(&'static str, u64); 2] {
        [
            (KIND_NOFILE, self.nofile.load(Ordering::Relaxed)),
            (KIND_FILE_MAX, self.file_max.load(Ordering::Relaxed)),
        ]
    }
}
