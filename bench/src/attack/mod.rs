//! Under attack: what the hub's hardening costs and saves against abusive clients —
//! subscribe-and-cancel churn, GetStats load, stuck subscribers and silent connections —
//! each on a fresh hub per measurement.

mod acks;
mod churn;
mod conns;
mod feed;
mod stuck;

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use crate::{cli, machine::Machine};

/// Events per batch and batches in flight when ingest rate is measured.
const BATCH: u64 = 1000;
const WINDOW: u64 = 4;

/// The options of `tapper-bench attack`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Runs per figure.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// The hub binary.
    #[arg(long, default_value = "hub")]
    pub hub: PathBuf,
    /// Events a reporter sends when ingest rate is measured.
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    /// Subscribe-and-cancel calls with a never-matching filter.
    #[arg(long = "churn", default_value_t = 20_000)]
    pub churn_calls: u64,
    /// Seconds the churn may take at most.
    #[arg(long = "churn-limit", value_parser = cli::secs, default_value = "120")]
    pub time_limit: Duration,
    /// Events stored before the ack latency is measured.
    #[arg(long, default_value_t = 500_000)]
    pub stored: u64,
    /// Seconds of timed batches per ack-latency measurement.
    #[arg(long, value_parser = cli::secs, default_value = "10")]
    pub ack_window: Duration,
    /// Clients looping GetStats (by all five keys) in the loaded condition.
    #[arg(long, default_value_t = 4)]
    pub getstats_clients: u64,
    /// Subscribers that never read.
    #[arg(long, default_value_t = 1000)]
    pub stuck: u64,
    /// The hub's --subscriber-stall-timeout, in seconds.
    #[arg(long, value_parser = cli::secs, default_value = "1")]
    pub stall_timeout: Duration,
    /// The hub's --subscriber-queue for the stuck subscribers (default: the hub's own).
    #[arg(long)]
    pub subscriber_queue: Option<u64>,
    /// Silent TCP connections that never send the HTTP/2 preface.
    #[arg(long, default_value_t = 2000)]
    pub silent: u64,
    /// The hub's --handshake-timeout, in seconds.
    #[arg(long, value_parser = cli::secs, default_value = "2")]
    pub handshake_timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub machine: Machine,
    pub runs: usize,
    pub events: u64,
    pub batch: u64,
    pub window: u64,
    pub stall_timeout_secs: f64,
    pub subscriber_queue: Option<u64>,
    pub ack_window_secs: f64,
    /// Nodes seeded before the ack-latency measurement, and GetStats groups per node.
    pub seed_nodes: u64,
    pub groups_per_node: u64,
    pub churn: Vec<churn::Sample>,
    pub acks: Vec<acks::Sample>,
    pub stuck: Vec<stuck::Sample>,
    pub conns: Vec<conns::Sample>,
}

/// The ingest rate of a fresh reporter `node` sending `events` (BATCH events a batch,
/// WINDOW batches in flight).
async fn ingest_rate(url: &str, node: &str, events: u64) -> Result<feed::Ingest> {
    feed::Feed::open(url, node)
        .await?
        .ingest(events, BATCH, WINDOW)
        .await
}

pub async fn run(opts: &Options) -> Result<Outcome> {
    let mut machine = Machine::now();
    let (mut churn, mut acks, mut stuck, mut conns) = (vec![], vec![], vec![], vec![]);
    for run in 0..opts.runs {
        let say = |what: &str| eprintln!("[attack] run {}/{}: {what}", run + 1, opts.runs);
        say(&format!("{} subscribe-and-cancel calls", opts.churn_calls));
        churn.push(churn::measure(opts, run).await?);
        // Each pair is measured in an order that alternates from run to run.
        let mut clients = [0, opts.getstats_clients];
        let mut subscribers = [0, opts.stuck];
        if run % 2 == 1 {
            clients.reverse();
            subscribers.reverse();
        }
        for c in clients {
            say(&format!(
                "ack latency, {} events stored, {c} GetStats clients",
                opts.stored
            ));
            acks.push(acks::measure(opts, run, c).await?);
        }
        for s in subscribers {
            say(&format!("ingest with {s} stuck subscribers"));
            stuck.push(stuck::measure(opts, run, s).await?);
        }
        say(&format!("{} silent connections", opts.silent));
        conns.push(conns::measure(opts, run).await?);
    }
    machine.finish();
    Ok(Outcome {
        machine,
        runs: opts.runs,
        events: opts.events,
        batch: BATCH,
        window: WINDOW,
        stall_timeout_secs: opts.stall_timeout.as_secs_f64(),
        subscriber_queue: opts.subscriber_queue,
        ack_window_secs: opts.ack_window.as_secs_f64(),
        seed_nodes: acks::SEED_NODES,
        groups_per_node: feed::GROUPS_PER_NODE,
        churn,
        acks,
        stuck,
        conns,
    })
}

/// Counts a refused call under its status code's wire name, e.g. `RESOURCE_EXHAUSTED`.
fn tally_error(errors: &mut BTreeMap<String, u64>, status: &tonic::Status) {
    *errors.entry(code_name(status.code())).or_default() += 1;
}

/// `ResourceExhausted` → `RESOURCE_EXHAUSTED`.
fn code_name(code: tonic::Code) -> String {
    let mut name = String::new();
    for (i, c) in format!("{code:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_by_their_wire_names() {
        assert_eq!(
            code_name(tonic::Code::ResourceExhausted),
            "RESOURCE_EXHAUSTED"
        );
        assert_eq!(code_name(tonic::Code::Ok), "OK");
        assert_eq!(
            code_name(tonic::Code::DeadlineExceeded),
            "DEADLINE_EXCEEDED"
        );
    }
}
