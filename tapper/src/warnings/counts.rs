//! Warnings written so far, by kind, and those skipped, shared with the metrics endpoint
//! (`tapper_warnings_total{kind}`, `tapper_warnings_skipped_total`).

use std::sync::atomic::{AtomicU64, Ordering};

use tapper_proto::WarningKind;

#[derive(Debug, Default)]
pub struct WarningCounts {
    nofile: AtomicU64,
    file_max: AtomicU64,
    skipped: AtomicU64,
}

impl WarningCounts {
    pub fn count(&self, kind: WarningKind) {
        let slot = match kind {
            WarningKind::Nofile => &self.nofile,
            WarningKind::FileMax => &self.file_max,
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
    pub fn by_kind(&self) -> [(WarningKind, u64); 2] {
        WarningKind::ALL.map(|kind| {
            let slot = match kind {
                WarningKind::Nofile => &self.nofile,
                WarningKind::FileMax => &self.file_max,
            };
            (kind, slot.load(Ordering::Relaxed))
        })
    }
}
