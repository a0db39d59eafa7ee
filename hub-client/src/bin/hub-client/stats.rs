//! `hub-client stats`: counts grouped by node / errno / family / comm / cgroup / namespace /
//! pod / container over a window.

use anyhow::Context;
use clap::ValueEnum;
use tapper_proto::v1::{GetStatsRequest, GroupBy};

use tapper_proto::flag_text::{parse_duration, parse_time_or_age};

use crate::output::{print_table, stats_json};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Key {
    Node,
    Errno,
    Family,
    Comm,
    Cgroup,
    Namespace,
    Pod,
    Container,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Group by these keys, comma separated (e.g. node,errno). Default: totals per node.
    #[arg(long, value_delimiter = ',')]
    group_by: Vec<Key>,
    /// Only this node (repeatable).
    #[arg(long)]
    node: Vec<String>,
    /// Print the response as one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    window: Window,
}

/// The time window counted.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Window")]
struct Window {
    /// Window: the last N seconds/minutes/hours/days, e.g. 90s, 15m, 24h, 7d.
    #[arg(long, value_parser = parse_last, conflicts_with = "since")]
    last: Option<i64>,
    /// Window start: RFC 3339, or an age back from now (e.g. 1h).
    #[arg(long, value_parser = parse_time_or_age)]
    since: Option<tapper_proto::Timestamp>,
    /// Window end, exclusive: RFC 3339, or an age back from now (e.g. 10m).
    #[arg(long, value_parser = parse_time_or_age)]
    until: Option<tapper_proto::Timestamp>,
}

/// The first 12 characters of a container id, as `podman ps` shows it.
fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// A cell for a value that may be absent.
fn or_dash(v: Option<&str>) -> String {
    v.unwrap_or("-").to_owned()
}

/// A window length (`15m`, `24h`, `90`), in whole seconds (at least 1).
fn parse_last(text: &str) -> Result<i64, String> {
    let secs = parse_duration(text)?.as_secs();
    if secs == 0 {
        return Err("the window must be at least 1s".into());
    }
    i64::try_from(secs).map_err(|_| format!("{text:?} is too long a window"))
}

pub async fn run(hub: &crate::Target, a: Args) -> anyhow::Result<()> {
    let group_by: Vec<i32> = a
        .group_by
        .iter()
        .map(|k| match k {
            Key::Node => GroupBy::Node,
            Key::Errno => GroupBy::Errno,
            Key::Family => GroupBy::Family,
            Key::Comm => GroupBy::Comm,
            Key::Cgroup => GroupBy::Cgroup,
            Key::Namespace => GroupBy::Namespace,
            Key::Pod => GroupBy::Pod,
            Key::Container => GroupBy::Container,
        } as i32)
        .collect();
    let req = GetStatsRequest {
        group_by,
        since: a.window.since,
        until: a.window.until,
        last_seconds: a.window.last.unwrap_or(0),
        node: a.node,
    };
    let r = hub
        .first_answer(|mut client| {
            let req = req.clone();
            async move {
                Ok(client
                    .get_stats(req)
                    .await
                    .context("GetStats")?
                    .into_inner())
            }
        })
        .await?;
    if a.json {
        println!("{}", stats_json(&r));
        return Ok(());
    }
    if a.group_by.is_empty() {
        let mut per: Vec<_> = r.per_node.iter().collect();
        per.sort();
        let rows: Vec<_> = per
            .iter()
            .map(|(n, c)| vec![n.to_string(), c.to_string()])
            .collect();
        print_table(&["NODE", "EVENTS"], &rows);
    } else {
        let mut header: Vec<&str> = Vec::new();
        for k in &a.group_by {
            header.push(match k {
                Key::Node => "NODE",
                Key::Errno => "ERRNO",
                Key::Family => "FAMILY",
                Key::Comm => "COMM",
                Key::Cgroup => "CGROUP",
                Key::Namespace => "NAMESPACE",
                Key::Pod => "POD",
                Key::Container => "CONTAINER",
            });
        }
        header.push("EVENTS");
        let rows: Vec<Vec<String>> = r
            .rows
            .iter()
            .map(|row| {
                let mut cells: Vec<String> = a
                    .group_by
                    .iter()
                    .map(|k| match k {
                        Key::Node => row.node.clone(),
                        Key::Errno => format!("{}({})", row.errno_name, row.errno),
                        Key::Family => {
                            if row.family_name.is_empty() {
                                "-".into()
                            } else {
                                row.family_name.clone()
                            }
                        }
                        Key::Comm => row.comm.clone(),
                        Key::Cgroup => row.cgroup_id.to_string(),
                        Key::Namespace => or_dash(row.namespace.as_deref()),
                        Key::Pod => match (&row.namespace, &row.pod) {
                            (ns, Some(pod)) => format!("{}/{pod}", ns.as_deref().unwrap_or("?")),
                            (_, None) => "-".into(),
                        },
                        Key::Container => match (&row.container, &row.container_id) {
                            (Some(name), Some(id)) => format!("{name} ({})", short_id(id)),
                            (Some(name), None) => name.clone(),
                            (None, id) => or_dash(id.as_deref().map(short_id)),
                        },
                    })
                    .collect();
                cells.push(row.count.to_string());
                cells
            })
            .collect();
        print_table(&header, &rows);
    }
    println!(
        "total events: {}   lost (reported): {}",
        r.total_events, r.total_lost
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_last;

    #[test]
    fn windows() {
        assert_eq!(parse_last("90"), Ok(90));
        assert_eq!(parse_last("90s"), Ok(90));
        assert_eq!(parse_last("15m"), Ok(900));
        assert_eq!(parse_last("1h"), Ok(3600));
        assert_eq!(parse_last("7d"), Ok(604_800));
        assert_eq!(parse_last("1h30m"), Ok(5400));
        assert!(parse_last("0").unwrap_err().contains("longer than 0"));
        assert!(parse_last("500ms").unwrap_err().contains("at least 1s"));
        assert!(parse_last("5x").unwrap_err().contains("not a duration"));
        // Overflow is an error, never a wrapped or negative window.
        assert!(parse_last("99999999999999999999d").is_err());
        assert!(
            parse_last("9223372036854775808")
                .unwrap_err()
                .contains("too long")
        );
        assert!(parse_last("300000000000y").is_err());
    }
}
