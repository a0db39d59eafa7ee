//! `hub-client watch`: subscribes with server-side filters and prints events, loss notices
//! and lagged notices as a table or JSON lines. When following, it survives hub restarts
//! and fails over between several hubs: it moves on to the next hub and resumes right
//! after the last hub_seq it printed.

use std::{
    io::{IsTerminal, Write},
    time::Duration,
};

use anyhow::Context;
use hub_client::Failover;
use tapper_proto::{
    WarningKind,
    flag_text::parse_time_or_age,
    table,
    v1::{SubscribeRequest, subscribe_request::Since, subscribe_response::Item},
};

use crate::output::{escape_control, loss_json, warning_json};
use crate::target::worth_another_hub;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    filters: Filters,
    #[command(flatten)]
    replay: Replay,
    #[command(flatten)]
    print: Print,
}

/// The hub-side filters of the subscription.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Filters")]
struct Filters {
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
    /// Only pods of this Kubernetes namespace (repeatable).
    #[arg(long)]
    namespace: Vec<String>,
    /// Only pods whose name matches this glob (`*`, `?`, `[a-z]`), e.g. 'web-*'.
    #[arg(long)]
    pod: Option<String>,
    /// Only containers of this name (repeatable).
    #[arg(long)]
    container: Vec<String>,
    /// Only this container id, full or a prefix of at least 4 characters (repeatable).
    #[arg(long)]
    container_id: Vec<String>,
    /// Only these items: event (failures), warning (every warning), or a warning kind
    /// (nofile, file-max); repeat or separate with commas [default: events and warnings].
    #[arg(long, value_delimiter = ',', value_parser = kinds())]
    kind: Vec<String>,
}

/// The values of `--kind`: event, warning, and every warning kind.
fn kinds() -> clap::builder::PossibleValuesParser {
    let warning_kinds = WarningKind::ALL.map(WarningKind::as_str);
    ["event", "warning"].into_iter().chain(warning_kinds).into()
}

/// Where the stream starts and whether it follows live events.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Replay")]
struct Replay {
    /// Replay stored events from this hub sequence number on (0 = all stored). Hub sequence
    /// numbers are one order per database: with several --hub addresses, resuming on
    /// another hub neither repeats nor skips only if the hubs share one database
    /// (replicas).
    #[arg(long, conflicts_with = "since")]
    since_seq: Option<u64>,
    /// Replay stored events from this time on: RFC 3339, or an age back from now (e.g. 1h).
    #[arg(long, value_parser = parse_time_or_age)]
    since: Option<tapper_proto::Timestamp>,
    /// With --since/--since-seq: stop after the replay instead of following live events.
    #[arg(long)]
    no_follow: bool,
}

/// How much is printed, and how.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Output")]
struct Print {
    /// Exit after this many events and warnings (at least 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// JSON lines instead of a table (the default when stdout is not a terminal).
    #[arg(long)]
    json: bool,
    /// Print each event's user stack (tapper --stacks) under it, innermost frame first.
    /// JSON lines always carry it as `user_stack`.
    #[arg(long)]
    stacks: bool,
}

pub async fn run(hub: &crate::Target, a: Args) -> anyhow::Result<()> {
    let Args {
        filters: f,
        replay,
        print,
    } = a;
    let since = match (replay.since_seq, replay.since) {
        (Some(n), _) => Some(Since::SinceHubSeq(n)),
        (None, Some(t)) => Some(Since::SinceTime(t)),
        (None, None) => None,
    };
    if replay.no_follow && since.is_none() {
        anyhow::bail!(
            "--no-follow needs --since or --since-seq (otherwise there is nothing to show)"
        );
    }
    let first = SubscribeRequest {
        node: f.node,
        errno: f.errno,
        family: f.family,
        pid: f.pid,
        comm: f.comm.unwrap_or_default(),
        cgroup_id: f.cgroup_id,
        namespace: f.namespace,
        pod: f.pod.unwrap_or_default(),
        container: f.container,
        container_id: f.container_id,
        kind: f.kind,
        follow: !replay.no_follow,
        since,
    };
    let mut printer = Printer::new(print.json || !std::io::stdout().is_terminal(), print.count)?;
    let mut hubs = Failover::new(
        hub.hubs.clone(),
        Duration::from_millis(200),
        Duration::from_secs(5),
    );
    printer.stacks = print.stacks;
    let mut connected_once = false;
    loop {
        let request = printer.resume_from(&first);
        let url = hubs.current().to_owned();
        let ended = subscribe_once(
            hub,
            &url,
            request,
            &mut printer,
            &mut connected_once,
            &mut hubs,
        )
        .await;
        let (failure, error) = match ended {
            Ok(Ended::CountReached) => return Ok(()),
            Ok(Ended::Closed) if !first.follow => return Ok(()),
            Ok(Ended::Closed) => ("closed the stream".to_owned(), None),
            Err(err) if worth_another_hub(&err) => (format!("failed ({err:#})"), Some(err)),
            Err(err) => return Err(err),
        };
        let retry = hubs.failed();
        // Until it follows a live stream, each hub of the list gets one try.
        if let Some(err) = error
            && retry.round_failed
            && !(first.follow && connected_once)
        {
            return Err(err);
        }
        eprintln!(
            "hub-client: hub {url} {failure}; resuming on {} {}",
            hubs.current(),
            printer.resume_point()
        );
        tokio::time::sleep(retry.delay).await;
    }
}

enum Ended {
    /// The hub ended the stream (a replay finished, or the hub is shutting down).
    Closed,
    /// `--count` events were printed.
    CountReached,
}

/// One subscription to `url`, until it ends or `--count` is reached.
async fn subscribe_once(
    hub: &crate::Target,
    url: &str,
    request: SubscribeRequest,
    printer: &mut Printer,
    connected_once: &mut bool,
    hubs: &mut Failover,
) -> anyhow::Result<Ended> {
    let mut client = hub.connect(url).await?;
    let mut stream = client
        .subscribe(request)
        .await
        .with_context(|| format!("hub {url}: subscribing"))?
        .into_inner();
    *connected_once = true;
    hubs.connected();
    tracing::info!(hub = %url, "subscribed");
    while let Some(resp) = stream.message().await.context("subscription stream")? {
        if let Some(item) = resp.item
            && printer.print(item)?
        {
            return Ok(Ended::CountReached);
        }
    }
    Ok(Ended::Closed)
}

/// Prints items and remembers where the stream was, so a reconnect resumes right after.
struct Printer {
    json: bool,
    /// Print each event's stack under its row (table mode).
    stacks: bool,
    out: std::io::Stdout,
    events: u64,
    count: Option<u64>,
    last_hub_seq: Option<u64>,
}

impl Printer {
    fn new(json: bool, count: Option<u64>) -> anyhow::Result<Self> {
        let printer = Self {
            json,
            stacks: false,
            out: std::io::stdout(),
            events: 0,
            count,
            last_hub_seq: None,
        };
        if !json {
            table::write_header(&mut printer.out.lock())?;
        }
        Ok(printer)
    }

    /// The first request, or after something was seen, a replay from the next hub seq on.
    fn resume_from(&self, first: &SubscribeRequest) -> SubscribeRequest {
        let mut request = first.clone();
        if let Some(last) = self.last_hub_seq {
            request.since = Some(Since::SinceHubSeq(last + 1));
        }
        request
    }

    /// Where a resumed subscription starts, for the log.
    fn resume_point(&self) -> String {
        match self.last_hub_seq {
            Some(last) => format!("from hub_seq {}", last + 1),
            None => "with the first request".to_owned(),
        }
    }

    /// Prints one item; true once `--count` events and warnings were printed.
    fn print(&mut self, item: Item) -> anyhow::Result<bool> {
        let mut out = self.out.lock();
        match item {
            Item::Event(e) => {
                self.events += 1;
                self.last_hub_seq = Some(e.hub_seq);
                if self.json {
                    writeln!(out, "{}", serde_json::to_string(&e)?)?;
                } else {
                    table::write_row(&mut out, &e.node, &e)?;
                    if self.stacks {
                        table::write_stack(&mut out, &e.user_stack)?;
                    }
                }
            }
            Item::Warning(w) => {
                self.events += 1;
                self.last_hub_seq = Some(w.hub_seq);
                if self.json {
                    writeln!(out, "{}", warning_json(&w))?;
                } else {
                    table::write_warning(&mut out, &w.node, &w)?;
                }
            }
            Item::Lagged(l) => {
                if self.json {
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
            Item::Loss(l) => {
                self.last_hub_seq = Some(l.hub_seq);
                if self.json {
                    writeln!(out, "{}", loss_json(&l))?;
                } else {
                    let loss = l.loss.unwrap_or_default();
                    writeln!(
                        out,
                        "-- {} lost {} ({}), seq {}..{} --",
                        escape_control(&l.node),
                        loss.count,
                        escape_control(&loss.reason),
                        loss.first_seq,
                        loss.last_seq
                    )?;
                }
            }
        }
        out.flush()?;
        Ok(self.count.is_some_and(|c| self.events >= c))
    }
}
