//! Rate-controlled failure generator: N failing `socket()` calls per second, steady, each
//! carrying its index in the protocol argument so a receiver can match events to calls.

use std::time::{Duration, Instant};

use clap::Args;

use crate::cli;

/// Family and type of every generated call: `socket(AF_INET, 12345, idx)` fails with
/// EINVAL on the type before the protocol is looked at, so the protocol is free to carry
/// the call's index.
pub const FAMILY: i32 = libc::AF_INET;
pub const TYPE: i32 = 12345;

/// The protocol argument of call `idx` (kept non-negative).
pub fn protocol_of(idx: u64) -> i32 {
    (idx % (i32::MAX as u64)) as i32
}

/// What a generator run did.
#[derive(Debug, Clone)]
pub struct Generated {
    /// Calls made (all failed, checked).
    pub calls: u64,
    /// Calls that unexpectedly succeeded (closed at once); 0 in a sound run.
    pub unexpected_ok: u64,
    /// From the first call to the last.
    pub elapsed: Duration,
}

/// The options of `tapper-bench generate`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Failures per second.
    #[arg(long)]
    pub rate: u64,
    /// Seconds.
    #[arg(long, value_parser = cli::secs, default_value = "10")]
    pub duration: Duration,
}

/// `tapper-bench generate`: the calls made, in JSON.
pub fn run(opts: &Options) -> serde_json::Value {
    let g = generate(opts.rate, opts.duration, |_, _| {});
    serde_json::json!({
        "calls": g.calls,
        "elapsed_secs": g.elapsed.as_secs_f64(),
        "unexpected_ok": g.unexpected_ok,
    })
}

/// Makes `rate * duration` failing calls paced evenly over `duration` (catching up in
/// bursts when the thread was descheduled). `on_call(idx, when)` runs right after each
/// call, outside the pacing arithmetic; keep it cheap.
pub fn generate(rate: u64, duration: Duration, mut on_call: impl FnMut(u64, Instant)) -> Generated {
    let total = (rate as f64 * duration.as_secs_f64()).round() as u64;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut unexpected_ok = 0u64;
    while sent < total {
        let elapsed = start.elapsed().as_secs_f64();
        let due = ((elapsed * rate as f64) as u64 + 1).min(total);
        while sent < due {
            // SAFETY: socket() takes plain integers; a descriptor is closed at once.
            let fd = unsafe { libc::socket(FAMILY, TYPE, protocol_of(sent)) };
            let now = Instant::now();
            if fd >= 0 {
                unexpected_ok += 1;
                // SAFETY: fd was just returned by socket().
                unsafe { libc::close(fd) };
            }
            on_call(sent, now);
            sent += 1;
        }
        if sent < total {
            let next = Duration::from_secs_f64(sent as f64 / rate as f64);
            let now = start.elapsed();
            if next > now {
                std::thread::sleep((next - now).min(Duration::from_millis(5)));
            }
        }
    }
    Generated {
        calls: sent,
        unexpected_ok,
        elapsed: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_the_requested_number_of_failing_calls() {
        let mut seen = 0;
        let g = generate(2000, Duration::from_millis(100), |i, _| {
            assert_eq!(i, seen);
            seen += 1;
        });
        assert_eq!(g.calls, 200);
        assert_eq!(g.unexpected_ok, 0);
        assert!(g.elapsed >= Duration::from_millis(90), "{:?}", g.elapsed);
    }
}
