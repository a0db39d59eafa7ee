//! Budgets of reader queries: a deadline for every query and a cap on the events one
//! GetStats may scan. Going over either is [`StoreError::OverBudget`], whose short message
//! names the limit (its hub flag) and what to do instead.

use std::time::Duration;

use super::StoreError;

/// The limits every reader query runs under.
#[derive(Debug, Clone, Copy)]
pub struct QueryBudget {
    /// Longest a query may run (`--query-timeout`).
    pub timeout: Duration,
    /// Most stored events a GetStats may scan (`--query-max-rows`); counts served from the
    /// per-minute rollups do not count.
    pub max_scan_rows: u64,
}

impl Default for QueryBudget {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_scan_rows: 1_000_000,
        }
    }
}

/// Which reader call ran over, for the advice in its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Stats,
    Replay,
    Tappers,
}

impl Work {
    fn advice(self) -> &'static str {
        match self {
            Self::Stats => "narrow the window or the nodes, or group by node and errno only",
            Self::Replay => "resubscribe from a later since_hub_seq or since_time",
            Self::Tappers => "filter by node or ask for a smaller page_size",
        }
    }
}

impl QueryBudget {
    /// The query was stopped at its deadline.
    pub fn over_time(&self, work: Work) -> StoreError {
        StoreError::OverBudget(format!(
            "query stopped at its {} deadline (--query-timeout): {}, or raise --query-timeout",
            humantime::format_duration(self.timeout),
            work.advice()
        ))
    }

    /// A GetStats would scan more events than allowed.
    pub fn over_rows(&self) -> StoreError {
        StoreError::OverBudget(format!(
            "GetStats would scan more than {} events (--query-max-rows): {} \
             (served from per-minute rollups), or raise --query-max-rows",
            self.max_scan_rows,
            Work::Stats.advice()
        ))
    }
}
