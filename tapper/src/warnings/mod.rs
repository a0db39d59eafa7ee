//! Early warnings of descriptor exhaustion: "nofile" (a process nearing its soft
//! `RLIMIT_NOFILE`, seen by the kernel on successful calls) and "file-max" (the system's
//! file table nearing `fs.file-max`, sampled here), with a trend and a time to exhaustion.
//! Their sampling is budgeted and runs off the event path.

mod budget;
mod counts;
mod fd_count;
mod file_max;
mod nofile;
mod sampling;
mod trend;

use std::time::Duration;

pub use counts::WarningCounts;
pub use file_max::FileMaxWatch;
pub use nofile::{NofileTracker, build_nofile};
pub use sampling::{NofileSampling, Sampled};

/// How far back samples count for a trend.
const TREND_WINDOW: Duration = Duration::from_secs(60);

/// Seconds on the monotonic clock (the kernel's `bpf_ktime_get_ns` clock).
fn mono_secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}
