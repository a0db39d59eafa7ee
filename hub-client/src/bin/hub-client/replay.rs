//! `hub-client replay`: a reporter that feeds the hub recorded (the tapper's JSON lines) or
//! synthetic events through the hub-client library, then prints a JSON summary.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    time::Duration,
};

use anyhow::{Context, bail};
use hub_client::{Credentials, REFUSAL_FIX, Reporter, ReporterConfig, proto::v1::Event};
use serde_json::json;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["file", "synthetic"])))]
pub struct Args {
    /// Node name to report as.
    #[arg(long)]
    node: String,
    /// Instance id (default: random).
    #[arg(long)]
    instance: Option<String>,
    /// Events as JSON lines, one object per line (the tapper's --output json); "-" is stdin.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Generate this many synthetic events instead.
    #[arg(long)]
    synthetic: Option<u64>,
    /// errnos (names or numbers) the synthetic events cycle through.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "EMFILE,EAFNOSUPPORT,EINVAL,EPROTONOSUPPORT"
    )]
    errnos: Vec<String>,
    /// Wait this many milliseconds between events.
    #[arg(long, default_value_t = 0)]
    interval_ms: u64,
    /// Un-acked events the reporter buffers before it drops (and reports the loss).
    #[arg(long, default_value_t = 65_536, value_parser = clap::value_parser!(u64).range(1..))]
    buffer: u64,
    /// Report this many kernel ring-buffer drops as a loss record after the events.
    #[arg(long, default_value_t = 0)]
    kernel_drops: u64,
    /// Seconds to wait for the hub to ack everything before giving up.
    #[arg(long, default_value_t = 60)]
    flush_timeout: u64,
    /// After flushing, keep the connection open until killed.
    #[arg(long)]
    hold: bool,
    /// Kernel release to announce.
    #[arg(long, default_value = "replay")]
    kernel_release: String,
    /// Probe mode to announce.
    #[arg(long, default_value = "replay")]
    probe_mode: String,
}

fn synthetic(i: u64, errnos: &[i32]) -> Event {
    let errno = errnos[(i as usize) % errnos.len()];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Event {
        ts: Some(tapper_proto::Timestamp {
            seconds: now.as_secs() as i64,
            nanos: now.subsec_nanos() as i32,
        }),
        pid: 1000 + (i % 7) as u32,
        tid: 1000 + (i % 7) as u32,
        ppid: Some(1),
        uid: 0,
        gid: 0,
        comm: "synthetic".into(),
        exe: "/usr/bin/synthetic".into(),
        cmdline: format!("synthetic --n {i}"),
        cgroup_id: 4242,
        family: Some(2),
        family_name: "AF_INET".into(),
        r#type: Some(1),
        type_name: "SOCK_STREAM".into(),
        protocol: Some(0),
        protocol_name: "IPPROTO_IP".into(),
        errno,
        errno_name: tapper_names::errno_name(errno),
        message: tapper_names::errno_message(errno).into(),
        duration_ns: Some(1000 + i),
        probe: "tracepoint".into(),
        ..Default::default()
    }
}

/// One JSON line of the tapper's output (the JSON form of `tapper.v1.Event`).
fn event_from_json(line: &str) -> anyhow::Result<Event> {
    serde_json::from_str(line).context("not an event in the tapper's JSON schema")
}

/// Reports to `hubs` (tried in order) with `credentials`, the CLI's global flags. The
/// reporter's log (warnings by default, -v or RUST_LOG for more) says which hub it
/// connected to and why it left one.
pub async fn run(hubs: &[String], credentials: Credentials, a: Args) -> anyhow::Result<()> {
    let mut cfg = ReporterConfig::new(hubs.join(","), a.node.clone());
    if let Some(i) = &a.instance {
        cfg.instance_id = i.clone();
    }
    cfg.kernel_release = a.kernel_release.clone();
    cfg.probe_mode = a.probe_mode.clone();
    cfg.agent_version = concat!("hub-client replay ", env!("CARGO_PKG_VERSION")).into();
    cfg.buffer_capacity = a.buffer as usize;
    cfg.backoff_max = Duration::from_secs(2);
    cfg.credentials = credentials;
    let reporter = Reporter::spawn(cfg).context("starting the reporter")?;
    let interval = Duration::from_millis(a.interval_ms);
    let mut sent = 0u64;
    if let Some(n) = a.synthetic {
        let errnos = a
            .errnos
            .iter()
            .map(|n| tapper_names::parse_errno(n).context("--errnos"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        for i in 0..n {
            reporter.send_event(synthetic(i, &errnos));
            sent += 1;
            if !interval.is_zero() {
                tokio::time::sleep(interval).await;
            }
        }
    } else if let Some(path) = &a.file {
        let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
            Box::new(BufReader::new(std::io::stdin()))
        } else {
            Box::new(BufReader::new(
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
            ))
        };
        for (i, line) in reader.lines().enumerate() {
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let e =
                event_from_json(&line).with_context(|| format!("{}:{}", path.display(), i + 1))?;
            reporter.send_event(e);
            sent += 1;
            if !interval.is_zero() {
                tokio::time::sleep(interval).await;
            }
        }
    }
    reporter.report_loss(a.kernel_drops, "kernel ring buffer full");
    let flushed = reporter.flush(Duration::from_secs(a.flush_timeout)).await;
    let s = reporter.stats();
    let summary = json!({
        "node": a.node, "instance_id": reporter.instance_id(), "sent": sent,
        "last_seq": s.last_seq, "acked_seq": s.acked_seq, "dropped": s.dropped_events,
        "kernel_drops": s.external_lost, "flushed": flushed, "connects": s.connects,
    });
    println!("{summary}");
    if a.hold {
        eprintln!("replay: holding the connection open until killed");
        std::future::pending::<()>().await;
    }
    let refusal = reporter.refusal();
    reporter.shutdown(Duration::from_secs(1)).await;
    if let Some(reason) = refusal {
        bail!("the hub refused this reporter: {reason}; {REFUSAL_FIX}");
    }
    if !flushed {
        bail!(
            "the hub did not acknowledge everything within {}s (acked {} of {})",
            a.flush_timeout,
            s.acked_seq,
            s.last_seq
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tapper_json_line_maps_field_by_field() {
        let line = r#"{"ts":"2026-11-25T12:00:00.123456789Z","pid":10,"tid":11,"ppid":null,"uid":1,"gid":2,"comm":"x","exe":null,"cmdline":null,"cgroup_id":18446744073709551615,"family":9999,"family_name":"9999","type":1,"type_name":"SOCK_STREAM","protocol":0,"protocol_name":"0","errno":97,"errno_name":"EAFNOSUPPORT","message":"Address family not supported by protocol","duration_ns":1500,"probe":"tracepoint"}"#;
        let e = event_from_json(line).unwrap();
        assert_eq!(e.ts.unwrap().nanos, 123_456_789);
        assert_eq!(
            (e.pid, e.tid, e.ppid, e.family, e.errno),
            (10, 11, None, Some(9999), 97)
        );
        assert_eq!(e.cgroup_id, u64::MAX);
        assert_eq!(e.exe, "");
        assert!(event_from_json("{}").is_err());
        assert_eq!(
            event_from_json(&serde_json::to_string(&e).unwrap()).unwrap(),
            e
        );
    }
}
