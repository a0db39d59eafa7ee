//! The cost of TLS in the report: parts 2–4 measured over TLS and over plaintext, side by
//! side in one run, as medians and their ratio.

use std::fmt::Write;

use anyhow::Result;

use crate::{
    e2e, fanin,
    summary::Summary,
    transport::Transport::{self, Plaintext, Tls},
};

/// One compared figure: its name, decimals, and the runs' values per transport.
struct Row {
    name: String,
    decimals: usize,
    plain: Vec<f64>,
    tls: Vec<f64>,
}

/// Writes the comparison when the run measured TLS as well as plaintext.
pub fn section(
    md: &mut String,
    e2e: Option<&e2e::Outcome>,
    fanin: Option<&fanin::Outcome>,
) -> Result<()> {
    let mut rows = Vec::new();
    if let Some(o) = e2e {
        e2e_rows(o, &mut rows);
    }
    if let Some(o) = fanin {
        fanin_rows(o, &mut rows);
    }
    rows.retain(|r| !r.plain.is_empty() && !r.tls.is_empty());
    if rows.is_empty() {
        return Ok(());
    }
    md.push_str("## Cost of TLS\n\n");
    md.push_str(
        "The measurements of parts 2–4 over TLS (the hub with `--tls-cert`/`--tls-key`, \
         rustls with ring; the tapper, the reporters and the subscriber with `https://` and \
         `--tls-ca`, certificates made by `scripts/bench.sh` with openssl) and over plaintext, \
         interleaved in the same run on fresh hubs. Each figure is the median over the runs; \
         the ratio is TLS ÷ plaintext.\n\n\
         | figure | plaintext | TLS | TLS ÷ plaintext |\n| --- | --- | --- | --- |\n",
    );
    for r in rows {
        let (Some(p), Some(t)) = (Summary::of(&r.plain), Summary::of(&r.tls)) else {
            continue;
        };
        let ratio = if p.median > 0.0 {
            format!("{:.2}", t.median / p.median)
        } else {
            "—".into()
        };
        writeln!(
            md,
            "| {} | {:.d$} | {:.d$} | {ratio} |",
            r.name,
            p.median,
            t.median,
            d = r.decimals
        )?;
    }
    md.push('\n');
    Ok(())
}

fn e2e_rows(o: &e2e::Outcome, rows: &mut Vec<Row>) {
    let throughput: Vec<&e2e::Sample> = o
        .samples
        .iter()
        .filter(|s| s.part == "throughput")
        .collect();
    rows.push(Row {
        name: "part 2: highest loss-free rate, failures/s".into(),
        decimals: 0,
        plain: e2e::thresholds(&throughput, Plaintext).0,
        tls: e2e::thresholds(&throughput, Tls).0,
    });
    let latency = |t: Transport, f: fn(&e2e::Sample) -> f64| -> Vec<f64> {
        o.samples
            .iter()
            .filter(|s| s.part == "latency" && s.transport == t)
            .map(f)
            .collect()
    };
    let rate = o
        .samples
        .iter()
        .find(|s| s.part == "latency")
        .map_or(0, |s| s.rate);
    for (name, f) in [
        ("p50", (|s| s.p50_us / 1000.0) as fn(&e2e::Sample) -> f64),
        ("p99", |s| s.p99_us / 1000.0),
    ] {
        rows.push(Row {
            name: format!("part 3: {name} latency at {rate}/s, ms"),
            decimals: 2,
            plain: latency(Plaintext, f),
            tls: latency(Tls, f),
        });
    }
}

fn fanin_rows(o: &fanin::Outcome, rows: &mut Vec<Row>) {
    let mut configs: Vec<(u64, u64)> = o
        .samples
        .iter()
        .map(|s| (s.reporters, s.rate_each))
        .collect();
    configs.sort();
    configs.dedup();
    for (n, m) in configs {
        let col = |t: Transport, f: fn(&fanin::Sample) -> f64| -> Vec<f64> {
            o.samples
                .iter()
                .filter(|s| s.reporters == n && s.rate_each == m && s.transport == t)
                .map(f)
                .collect()
        };
        for (name, decimals, f) in [
            (
                "hub CPU %",
                1,
                (|s| s.hub_cpu_percent) as fn(&fanin::Sample) -> f64,
            ),
            ("delivered/s in window", 0, |s| s.delivered_per_sec),
            ("hub RSS MiB", 1, |s| s.hub_rss_kib as f64 / 1024.0),
            ("driver CPU %", 1, |s| s.driver_cpu_percent),
        ] {
            rows.push(Row {
                name: format!("part 4, {n} × {m}/s: {name}"),
                decimals,
                plain: col(Plaintext, f),
                tls: col(Tls, f),
            });
        }
    }
}
