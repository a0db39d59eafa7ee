//! What a rule counts: committed events and warnings, seen through one interface (their
//! kind, errno, group-by values and a line naming the process for the alert).

use std::time::{Duration, SystemTime};

use tapper_proto::{
    Timestamp,
    table::eta_text,
    v1::{Event, Warning},
};

/// The rule `kind` of failure events (warnings have their own kinds).
pub const KIND_EVENT: &str = "event";

pub trait Observed {
    /// "event", or the warning's kind ("nofile", "file-max").
    fn kind(&self) -> &str;
    /// The errno of an event; none for a warning.
    fn errno(&self) -> Option<i32>;
    /// The value of a `group_by` key.
    fn value_of(&self, key: &str) -> String;
    /// Who and what, for the alert's `process` annotation.
    fn process(&self) -> String;
    /// How many occurrences it stands for: an event also stands for the failures the
    /// tapper's rate limit suppressed; a warning is one.
    fn occurrences(&self) -> u64 {
        1
    }
}

impl Observed for Event {
    fn kind(&self) -> &str {
        KIND_EVENT
    }

    fn occurrences(&self) -> u64 {
        1 + self.suppressed
    }

    fn errno(&self) -> Option<i32> {
        Some(self.errno)
    }

    fn value_of(&self, key: &str) -> String {
        match key {
            "node" => self.node.clone(),
            "errno" => tapper_names::errno_name(self.errno),
            "family" if self.family_name.is_empty() => {
                self.family.map_or_else(String::new, |f| f.to_string())
            }
            "family" => self.family_name.clone(),
            _ => self.comm.clone(),
        }
    }

    fn process(&self) -> String {
        let mut text = format!("pid {} ({})", self.pid, self.comm);
        if !self.exe.is_empty() {
            text.push_str(&format!(" {}", self.exe));
        }
        text.push_str(&format!(
            ": {} at {}",
            tapper_names::errno_name(self.errno),
            time_of(self.ts.as_ref())
        ));
        text
    }
}

impl Observed for Warning {
    fn kind(&self) -> &str {
        &self.kind
    }

    fn errno(&self) -> Option<i32> {
        None
    }

    /// Rules on warnings group by node or comm only (the rules file checks that).
    fn value_of(&self, key: &str) -> String {
        match key {
            "node" => self.node.clone(),
            _ => self.comm.clone(),
        }
    }

    fn process(&self) -> String {
        let who = match self.pid {
            Some(pid) if self.exe.is_empty() => format!("pid {pid} ({})", self.comm),
            Some(pid) => format!("pid {pid} ({}) {}", self.comm, self.exe),
            None => "the system's file table".into(),
        };
        let eta = eta_text(self.eta_seconds);
        format!(
            "{who}: {} of {} in use ({:.0}%), {eta}, at {}",
            self.used,
            self.limit,
            self.ratio * 100.0,
            time_of(self.ts.as_ref())
        )
    }
}

fn time_of(ts: Option<&Timestamp>) -> String {
    ts.and_then(|ts| {
        let nanos =
            u64::try_from(ts.seconds).ok()? * 1_000_000_000 + u64::try_from(ts.nanos).ok()?;
        Some(
            humantime::format_rfc3339_nanos(SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos))
                .to_string(),
        )
    })
    .unwrap_or_else(|| "an unknown time".into())
}
