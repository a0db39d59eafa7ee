//! `hub-client watch`: subscribes with server-side filters and prints events, loss notices
//! and lagged notices as a table or JSON lines.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use tapper_proto::v1::{SubscribeRequest, subscribe_request::Since, subscribe_response::Item};

use crate::output::{event_json, loss_json, parse_rfc3339, rfc3339};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this node (repeatable).
    #[arg(long)]
    node: Vec<String>,
    /// Only this errno, name or number: EMFILE, 24 (repeatable).
    #[arg(long)]
    errno: Vec<String>,
    /// Only this address family, name or number: AF_INET, 2 (repeatable).
    #[arg(long)]
    family: Vec<String>,
    /// Only this pid (repeatable).
    #[arg(long)]
    pid: Vec<u32>,
    /// Only commands matching this glob (`*`, `?`, `[a-z]`).
    #[arg(long)]
    comm: Option<String>,
    /// Only this cgroup id (repeatable).
    #[arg(long = "cgroup")]
    cgroup_id: Vec<u64>,
    /// Replay stored events from this hub sequence number on (0 = all stored).
    #[arg(long, conflicts_with = "since")]
    since_seq: Option<u64>,
    /// Replay stored events from this time on (RFC 3339).
    #[arg(long, value_parser = parse_rfc3339)]
    since: Option<tapper_proto::Timestamp>,
    /// With --since/--since-seq: stop after the replay instead of following live events.
    #[arg(long)]
    no_follow: bool,
    /// Exit after this many events.
    #[arg(long)]
    count: Option<u64>,
    /// JSON lines instead of a table (the default when stdout is not a terminal).
    #[arg(long)]
    json: bool,
}

pub async fn run(hub: &str, a: Args) -> anyhow::Result<()> {
    let since = match (a.since_seq, a.since) {
        (Some(n), _) => Some(Since::SinceHubSeq(n)),
        (None, Some(t)) => Some(Since::SinceTime(t)),
        (None, None) => None,
    };
    if a.no_follow && since.is_none() {
        anyhow::bail!(
            "--no-follow needs --since or --since-seq (otherwise there is nothing to show)"
        );
    }
    let req = SubscribeRequest {
        node: a.node,
        errno: a.errno,
        family: a.family,
        pid: a.pid,
        comm: a.comm.unwrap_or_default(),
        cgroup_id: a.cgroup_id,
        follow: !a.no_follow,
        since,
    };
    let json = a.json || !std::io::stdout().is_terminal();
    let mut client = hub_client::connect(hub)
        .await
        .with_context(|| format!("connecting to hub {hub}"))?;
    let mut stream = client
        .subscribe(req)
        .await
        .context("subscribing")?
        .into_inner();
    let mut out = std::io::stdout().lock();
    if !json {
        writeln!(
            out,
            "{:<30}  {:<12}  {:>7}  {:<15}  {:<16}  {:<12}  {:<26}  MESSAGE",
            "TIME", "NODE", "PID", "COMM", "ERRNO", "FAMILY", "TYPE"
        )?;
    }
    let mut events = 0u64;
    while let Some(resp) = stream.message().await.context("subscription stream")? {
        match resp.item {
            Some(Item::Event(e)) => {
                events += 1;
                if json {
                    writeln!(out, "{}", event_json(&e))?;
                } else {
                    writeln!(
                        out,
                        "{:<30}  {:<12}  {:>7}  {:<15}  {:<16}  {:<12}  {:<26}  {}",
                        rfc3339(e.ts.as_ref()),
                        e.node,
                        e.pid,
                        e.comm,
                        format!("{}({})", e.errno_name, e.errno),
                        e.family_name,
                        e.type_name,
                        e.message
                    )?;
                }
            }
            Some(Item::Lagged(l)) => {
                if json {
                    writeln!(
                        out,
                        "{}",
                        serde_json::json!({"lagged": {"skipped": l.skipped}})
                    )?;
                } else {
                    writeln!(
                        out,
                        "-- lagged: {} skipped (this client was too slow) --",
                        l.skipped
                    )?;
                }
            }
            Some(Item::Loss(l)) => {
                if json {
                    writeln!(out, "{}", loss_json(&l))?;
                } else {
                    let loss = l.loss.unwrap_or_default();
                    writeln!(
                        out,
                        "-- {} lost {} ({}), seq {}..{} --",
                        l.node, loss.count, loss.reason, loss.first_seq, loss.last_seq
                    )?;
                }
            }
            None => {}
        }
        out.flush()?;
        if a.count.is_some_and(|c| events >= c) {
            break;
        }
    }
    Ok(())
}
