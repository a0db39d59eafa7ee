//! The exact counters: the kernel's per-CPU ones summed over CPUs, plus what user space
//! did with the events it received. Printed on an interval and at exit.

use std::collections::BTreeMap;

use aya::maps::{MapData, PerCpuArray};
use serde::Serialize;
use tapper_common::{ERRNO_SLOTS, counter};

/// How counters are printed on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CountersFormat {
    /// A readable block: `final counters: calls=.. failures=..`, then one line per errno.
    Text,
    /// One JSON line: `{"counters":"final","stats":{...}}`.
    Json,
}

/// The kernel's counter maps, taken out of the loaded object so they outlive detaching.
pub struct KernelCounters {
    counters: PerCpuArray<MapData, u64>,
    errnos: PerCpuArray<MapData, u64>,
    /// The tapper's own failing call (the exit-only self-test), left out of every count.
    own_failure: Option<i32>,
}

/// What user space did with the events it received.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct UserCounters {
    /// Events read from the ring buffer.
    pub events_received: u64,
    /// Events that passed the filters and were written.
    pub events_shown: u64,
    /// Ring-buffer records too short to be an event (a build mismatch; should stay 0).
    pub malformed: u64,
    /// Records the rate limit's sweep made for keys that went quiet with failures pending.
    pub sweep_records: u64,
    /// Other tappers' self-test calls (EAFNOSUPPORT), left out of every count.
    pub self_tests: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// `socket()` calls that entered.
    pub calls: u64,
    /// Calls that returned an error.
    pub failures: u64,
    /// Failures whose event the full ring buffer could not take.
    pub drops: u64,
    /// Failed returns without a saved entry (arguments unknown).
    pub misses: u64,
    /// Failures the rate limit suppressed (each counted in an event's `suppressed`).
    pub suppressed: u64,
    /// Failures per errno name.
    pub errnos: BTreeMap<String, u64>,
    #[serde(flatten)]
    pub user: UserCounters,
    /// The hub link with `--hub`: `connected`, `refused` or `down`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hub: Option<&'static str>,
}

impl KernelCounters {
    pub fn new(counters: PerCpuArray<MapData, u64>, errnos: PerCpuArray<MapData, u64>) -> Self {
        Self {
            counters,
            errnos,
            own_failure: None,
        }
    }

    /// Leaves the tapper's own failed call with `errno` out of the counts.
    pub fn exclude_own_failure(&mut self, errno: i32) {
        self.own_failure = Some(errno);
    }

    fn sum(map: &PerCpuArray<MapData, u64>, index: u32) -> anyhow::Result<u64> {
        Ok(map.get(&index, 0)?.iter().sum())
    }

    pub fn snapshot(&self, user: UserCounters) -> anyhow::Result<Snapshot> {
        let mut errnos = BTreeMap::new();
        let own = |slot: u32| u64::from(self.own_failure == Some(slot as i32));
        let others = |slot: u32| {
            if slot == libc::EAFNOSUPPORT as u32 {
                user.self_tests
            } else {
                0
            }
        };
        for slot in 1..ERRNO_SLOTS {
            let count = Self::sum(&self.errnos, slot)?.saturating_sub(own(slot) + others(slot));
            if count > 0 {
                let name = if slot == ERRNO_SLOTS - 1 {
                    format!(">={slot}")
                } else {
                    tapper_names::errno_name(slot as i32)
                };
                errnos.insert(name, count);
            }
        }
        Ok(Snapshot {
            calls: Self::sum(&self.counters, counter::CALLS)?,
            failures: Self::sum(&self.counters, counter::FAILURES)?
                .saturating_sub(u64::from(self.own_failure.is_some()) + user.self_tests),
            drops: Self::sum(&self.counters, counter::DROPS)?,
            misses: Self::sum(&self.counters, counter::MISSES)?,
            suppressed: Self::sum(&self.counters, counter::SUPPRESSED)?,
            errnos,
            user,
            hub: None,
        })
    }
}

impl Snapshot {
    /// Prints the counters on stderr (stdout carries only events), labelled `label`
    /// (`interval` or `final`).
    pub fn print(&self, format: CountersFormat, label: &str) {
        match format {
            CountersFormat::Json => {
                eprintln!(
                    "{}",
                    serde_json::json!({ "counters": label, "stats": self })
                )
            }
            CountersFormat::Text => eprintln!("{}", self.to_text(label)),
        }
    }

    /// A readable block for a terminal.
    fn to_text(&self, label: &str) -> String {
        let mut text = format!(
            "{label} counters: calls={} failures={} drops={} misses={} suppressed={} received={} \
             shown={}",
            self.calls,
            self.failures,
            self.drops,
            self.misses,
            self.suppressed,
            self.user.events_received,
            self.user.events_shown
        );
        if self.user.sweep_records > 0 {
            text.push_str(&format!(" sweep_records={}", self.user.sweep_records));
        }
        if let Some(hub) = self.hub {
            text.push_str(&format!(" hub={hub}"));
        }
        if self.user.malformed > 0 {
            text.push_str(&format!(" malformed={}", self.user.malformed));
        }
        for (name, count) in &self.errnos {
            text.push_str(&format!("\n  {name:<16} {count}"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_line_shows_the_hub_link_when_there_is_a_hub() {
        let mut snapshot = Snapshot {
            calls: 3,
            failures: 1,
            drops: 0,
            misses: 0,
            suppressed: 0,
            errnos: BTreeMap::new(),
            user: UserCounters::default(),
            hub: None,
        };
        assert!(!snapshot.to_text("interval").contains("hub="));
        snapshot.hub = Some("refused");
        let text = snapshot.to_text("interval");
        assert!(
            text.starts_with("interval counters: calls=3 failures=1 "),
            "{text}"
        );
        assert!(text.contains(" hub=refused"), "{text}");
        let json = serde_json::to_value(&snapshot).unwrap();
        assert_eq!(json["hub"], "refused");
    }
}
