//! Wall-clock helpers: Unix nanoseconds now, and conversions to protobuf timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix nanoseconds.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

pub use tapper_proto::{timestamp_from_unix_nanos as to_ts, timestamp_to_unix_nanos as from_ts};
