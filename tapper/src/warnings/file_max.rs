//! File-max warnings: the system's allocated file handles (`/proc/sys/fs/file-nr`)
//! against `fs.file-max`, sampled on a period; a crossing of the warn ratio warns at most
//! once per interval.

use std::time::Duration;

use tapper_proto::{WarningKind, timestamp_from_unix_nanos, v1::Warning};

use super::{TREND_WINDOW, mono_secs, trend::Trend};
use crate::clock::{monotonic_ns, now_unix_ns};

pub const FILE_NR: &str = "/proc/sys/fs/file-nr";

pub struct FileMaxWatch {
    ratio: f64,
    interval: Duration,
    trend: Trend,
    last_warned: Option<f64>,
}

impl FileMaxWatch {
    pub fn new(ratio: f64, interval: Duration) -> Self {
        Self {
            ratio,
            interval,
            trend: Trend::default(),
            last_warned: None,
        }
    }

    /// Reads `file-nr` once; a warning when the ratio is crossed and the interval passed.
    pub fn sample(&mut self) -> Option<Warning> {
        let text = match std::fs::read_to_string(FILE_NR) {
            Ok(text) => text,
            Err(err) => {
                tracing::debug!("cannot read {FILE_NR}: {err}");
                return None;
            }
        };
        let (used, max) = parse_file_nr(&text)?;
        let mut warning = self.check(mono_secs(monotonic_ns()), used, max)?;
        warning.ts = Some(timestamp_from_unix_nanos(now_unix_ns()));
        Some(warning)
    }

    /// The decision, apart from the clock and the file.
    fn check(&mut self, now: f64, used: u64, max: u64) -> Option<Warning> {
        self.trend.push(now, used, TREND_WINDOW.as_secs_f64());
        let ratio = used as f64 / max.max(1) as f64;
        if ratio < self.ratio {
            return None;
        }
        if self
            .last_warned
            .is_some_and(|last| now - last < self.interval.as_secs_f64())
        {
            return None;
        }
        self.last_warned = Some(now);
        Some(Warning {
            kind: WarningKind::FileMax.as_str().into(),
            used,
            limit: max,
            ratio,
            eta_seconds: self.trend.eta_seconds(max),
            ..Default::default()
        })
    }
}

/// `file-nr` holds "allocated unused max"; handles in use are allocated minus unused.
fn parse_file_nr(text: &str) -> Option<(u64, u64)> {
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    let (allocated, unused, max) = (fields.next()??, fields.next()??, fields.next()??);
    Some((allocated.saturating_sub(unused), max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_nr_parses_and_this_host_has_one() {
        assert_eq!(
            parse_file_nr("1632\t0\t9223372036854775807\n"),
            Some((1632, i64::MAX as u64))
        );
        assert_eq!(parse_file_nr("100 20 1000"), Some((80, 1000)));
        assert_eq!(parse_file_nr("garbage"), None);
        let host = std::fs::read_to_string(FILE_NR).unwrap();
        assert!(parse_file_nr(&host).is_some(), "{host}");
    }

    #[test]
    fn warns_above_the_ratio_once_per_interval_with_a_trend() {
        let mut watch = FileMaxWatch::new(0.8, Duration::from_secs(10));
        assert!(watch.check(0.0, 700, 1000).is_none(), "below the ratio");
        let first = watch.check(1.0, 800, 1000).unwrap();
        assert_eq!(
            (first.kind.as_str(), first.used, first.limit),
            ("file-max", 800, 1000)
        );
        assert_eq!(first.pid, None);
        // 100 handles per second, 200 left.
        assert!((first.eta_seconds.unwrap() - 2.0).abs() < 1e-9);
        assert!(watch.check(5.0, 900, 1000).is_none(), "within the interval");
        let again = watch.check(11.5, 850, 1000).unwrap();
        assert!(again.ratio > 0.8);
        assert!(watch.check(12.0, 850, 1000).is_none());
    }
}
