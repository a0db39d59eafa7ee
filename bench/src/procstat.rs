//! CPU time and memory of a process from `/proc/<pid>/stat` (utime + stime) and
//! `/proc/<pid>/status` (VmRSS, VmHWM).

use std::time::Instant;

use anyhow::{Context, Result};

/// CPU seconds (user + system, all threads) a process used so far, with when it was read.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    pub cpu_secs: f64,
    pub at: Instant,
}

pub fn cpu(pid: u32) -> Result<CpuSample> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let at = Instant::now();
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15, i.e. index 11 and 12 after the state field.
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(CpuSample {
        cpu_secs: ticks as f64 / clock_ticks(),
        at,
    })
}

/// Percent of one core used between two samples.
pub fn cpu_percent(a: CpuSample, b: CpuSample) -> f64 {
    let wall = b.at.duration_since(a.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    (b.cpu_secs - a.cpu_secs) / wall * 100.0
}

/// Length of one CPU accounting tick in seconds (the resolution of `cpu`).
pub fn tick_secs() -> f64 {
    1.0 / clock_ticks()
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// Times all of a process's threads slept and were woken so far (voluntary context
/// switches, from `/proc/<pid>/task/*/status`).
pub fn wakeups(pid: u32) -> Result<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("listing /proc/{pid}/task"))?;
    let mut total = 0;
    for task in tasks.flatten() {
        // A thread that ended since the listing is simply not counted.
        let Ok(text) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        total += text
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}

/// Resident set size now and its high-water mark, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

pub fn memory(pid: u32) -> Result<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Memory {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_slept() {
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert!(wakeups(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        let a = cpu(pid).unwrap();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i ^ (x >> 3));
        }
        std::hint::black_box(x);
        let b = cpu(pid).unwrap();
        assert!(b.cpu_secs >= a.cpu_secs);
        assert!(memory(pid).unwrap().rss_kib > 0);
    }
}
