//! Tight-loop timer for `socket()` calls: ns per failing or successful call, with the
//! descriptors closed in batches outside the timed region.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::Serialize;

/// Descriptors opened per timed batch before they are closed (untimed).
const BATCH: u64 = 256;

/// Which `socket()` call the loop makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `socket(AF_INET, 12345, 0)`: fails with EINVAL before any protocol work.
    Fail,
    /// `socket(AF_INET, SOCK_DGRAM, 0)`: succeeds; the fd is closed outside the timing.
    Ok,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Fail, Kind::Ok];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Fail => "fail",
            Kind::Ok => "ok",
        }
    }

    fn args(self) -> (i32, i32, i32) {
        match self {
            Kind::Fail => (libc::AF_INET, 12345, 0),
            Kind::Ok => (libc::AF_INET, libc::SOCK_DGRAM, 0),
        }
    }
}

/// Times `iters` calls of `kind` (after a short untimed warm-up) and returns ns per call.
/// Fails if a call does not behave as `kind` says (e.g. a "fail" call succeeded).
pub fn ns_per_call(kind: Kind, iters: u64) -> Result<f64> {
    run(kind, (iters / 10).max(1))?;
    let total = run(kind, iters)?;
    Ok(total.as_nanos() as f64 / iters.max(1) as f64)
}

fn run(kind: Kind, iters: u64) -> Result<Duration> {
    let (family, ty, protocol) = kind.args();
    let mut fds: Vec<i32> = Vec::with_capacity(BATCH as usize);
    let mut total = Duration::ZERO;
    let mut done = 0;
    let mut unexpected = 0u64;
    while done < iters {
        let n = BATCH.min(iters - done);
        let start = Instant::now();
        for _ in 0..n {
            // SAFETY: socket() takes plain integers; the fd (if any) is closed below.
            let fd = unsafe { libc::socket(family, ty, protocol) };
            if fd >= 0 {
                fds.push(fd);
            }
        }
        total += start.elapsed();
        let opened = fds.len() as u64;
        for fd in fds.drain(..) {
            // SAFETY: fd was returned by socket() above and is closed exactly once.
            unsafe { libc::close(fd) };
        }
        unexpected += match kind {
            Kind::Fail => opened,
            Kind::Ok => n - opened,
        };
        done += n;
    }
    if unexpected > 0 {
        bail!(
            "{unexpected} of {iters} socket() calls of kind {} did not behave as expected",
            kind.name()
        );
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_kinds_behave() {
        for kind in Kind::ALL {
            let ns = ns_per_call(kind, 1000).unwrap();
            assert!(ns > 0.0, "{kind:?}: {ns}");
        }
    }
}
