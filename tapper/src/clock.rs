//! Converts the kernel's monotonic timestamps (`bpf_ktime_get_ns`) to wall-clock time.

use nix::time::{ClockId, clock_gettime};

/// The offset between CLOCK_REALTIME and CLOCK_MONOTONIC, sampled once at start.
#[derive(Clone, Copy, Debug)]
pub struct WallClock {
    realtime_minus_monotonic_ns: i128,
}

fn now_ns(clock: ClockId) -> i128 {
    let ts = clock_gettime(clock).expect("clock_gettime on a standard clock cannot fail");
    ts.tv_sec() as i128 * 1_000_000_000 + ts.tv_nsec() as i128
}

impl WallClock {
    pub fn sample() -> Self {
        let mono = now_ns(ClockId::CLOCK_MONOTONIC);
        let real = now_ns(ClockId::CLOCK_REALTIME);
        Self {
            realtime_minus_monotonic_ns: real - mono,
        }
    }

    /// Unix nanoseconds for a monotonic timestamp.
    pub fn unix_ns(&self, monotonic_ns: u64) -> i128 {
        monotonic_ns as i128 + self.realtime_minus_monotonic_ns
    }
}

/// The monotonic clock now, in the kernel's `bpf_ktime_get_ns` units.
pub fn monotonic_ns() -> u64 {
    now_ns(ClockId::CLOCK_MONOTONIC) as u64
}

/// The current wall-clock time in Unix nanoseconds.
pub fn now_unix_ns() -> i64 {
    now_ns(ClockId::CLOCK_REALTIME) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_now_maps_to_wall_clock_now() {
        let clock = WallClock::sample();
        let mono = now_ns(ClockId::CLOCK_MONOTONIC) as u64;
        let wall = now_ns(ClockId::CLOCK_REALTIME);
        assert!((clock.unix_ns(mono) - wall).abs() < 1_000_000_000);
    }
}
