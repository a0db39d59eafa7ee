//! What the benchmark ran on: cores, kernel, CPU model, and the load average around a run.

use serde::Serialize;

#[derive(Debug, Clone, Serialize, Default)]
pub struct Machine {
    /// CPUs online.
    pub cores: usize,
    /// `uname -r`.
    pub kernel: String,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// 1, 5 and 15 minute load averages when the part started and when it ended.
    pub load_before: [f64; 3],
    pub load_after: [f64; 3],
}

impl Machine {
    /// The machine now, with `load_before` set (call [`Machine::finish`] at the end).
    pub fn now() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            })
            .unwrap_or_default();
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: kernel_release(),
            cpu_model,
            load_before: load(),
            load_after: [0.0; 3],
        }
    }

    pub fn finish(&mut self) {
        self.load_after = load();
    }
}

pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn load() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut v = text.split_whitespace().map(|x| x.parse().unwrap_or(0.0));
    [
        v.next().unwrap_or(0.0),
        v.next().unwrap_or(0.0),
        v.next().unwrap_or(0.0),
    ]
}
