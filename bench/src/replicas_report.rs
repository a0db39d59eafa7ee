//! Part 8 of BENCHMARKS.md: hub replicas on PostgreSQL beside one hub on SQLite, and the
//! loss-free fan-in of each.

use std::fmt::Write;

use std::path::Path;

use anyhow::Result;

use crate::{
    replicas::{Engine, KEPT_UP, Outcome, Sample},
    report::{load, load_str, skipped},
    summary::show,
};

const TITLE: &str = "## 8. PostgreSQL replicas";

/// Part 8 alone, from `replicas.json` in `dir` (or why it was not measured); it goes after
/// part 7 in BENCHMARKS.md.
pub fn render(dir: &Path) -> Result<String> {
    let mut md = String::new();
    match load::<Outcome>(dir, "replicas.json")? {
        Some(o) => section(&mut md, &o)?,
        None => writeln!(
            md,
            "{TITLE}\n\nNot measured: {}\n",
            skipped(dir, "replicas")
        )?,
    }
    Ok(md)
}

/// `existing` (BENCHMARKS.md) with its part 8 replaced by `part` (appended if absent).
pub fn splice(existing: &str, part: &str) -> String {
    let Some(start) = existing.find(TITLE) else {
        return format!("{}\n\n{part}", existing.trim_end());
    };
    let rest = &existing[start + TITLE.len()..];
    let end = rest
        .find("\n## ")
        .map_or(existing.len(), |i| start + TITLE.len() + i + 1);
    format!("{}{part}{}", &existing[..start], &existing[end..])
}

fn setup_name(engine: Engine, k: usize) -> String {
    match engine {
        Engine::Sqlite => "SQLite, 1 hub".into(),
        Engine::Postgres => format!("PostgreSQL, {k} replica{}", if k == 1 { "" } else { "s" }),
    }
}

/// The highest offered load (events/s) that every run of the setup carried.
fn loss_free_max(o: &Outcome, engine: Engine, k: usize) -> Option<u64> {
    let mut loads: Vec<(u64, bool)> = Vec::new();
    for s in o
        .samples
        .iter()
        .filter(|s| s.engine == engine && s.replicas == k)
    {
        let load = s.reporters * s.rate_each;
        match loads.iter_mut().find(|(l, _)| *l == load) {
            Some((_, ok)) => *ok &= s.carried(o.duration_secs),
            None => loads.push((load, s.carried(o.duration_secs))),
        }
    }
    loads
        .into_iter()
        .filter(|&(_, ok)| ok)
        .map(|(l, _)| l)
        .max()
}

pub fn section(md: &mut String, o: &Outcome) -> Result<()> {
    writeln!(md, "{TITLE}\n")?;
    writeln!(
        md,
        "Method: per measurement a fresh database (a SQLite file, or a new database on one \
         local PostgreSQL 15 with its default settings) and K hubs on it; N synthetic \
         reporters (the `hub-client` `Reporter`) spread round-robin over the replicas, each \
         sending M events/s for {} s, and one unfiltered subscriber on the first replica, \
         which sees every replica's events through the database tail. *Delivered/s* is what \
         that subscriber received during the window; a run *carried* its load when after \
         the drain the subscriber had every event sent, with no loss record and no lagged \
         notice, and got at least {:.0} % of the offered rate during the window (the \
         reporters' buffers would otherwise hide hubs that fall behind). All setups run \
         side by side in one run. The machine has {} cores, shared by PostgreSQL, every \
         hub, and the benchmark process (reporters and subscriber). Load average \
         before/after: {} → {}.\n",
        o.duration_secs,
        KEPT_UP * 100.0,
        o.machine.cores,
        load_str(o.machine.load_before),
        load_str(o.machine.load_after)
    )?;
    md.push_str(
        "| setup | reporters × events/s | offered/s | delivered/s in window | hubs CPU % | drain s | delivered / sent (sum) | lost | lagged | runs carried | driver CPU % |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    let mut keys: Vec<(u64, u64, Engine, usize)> = o
        .samples
        .iter()
        .map(|s| (s.reporters * s.rate_each, s.reporters, s.engine, s.replicas))
        .collect();
    keys.sort();
    keys.dedup();
    for (load, n, engine, k) in keys {
        let s: Vec<&Sample> = o
            .samples
            .iter()
            .filter(|s| {
                s.reporters == n
                    && s.reporters * s.rate_each == load
                    && s.engine == engine
                    && s.replicas == k
            })
            .collect();
        let col = |f: &dyn Fn(&Sample) -> f64| s.iter().map(|x| f(x)).collect::<Vec<_>>();
        writeln!(
            md,
            "| {} | {n} × {} | {:.0} | {} | {} | {} | {} / {} | {} | {} | {}/{} | {} |",
            setup_name(engine, k),
            load / n.max(1),
            s[0].offered_per_sec(o.duration_secs),
            show(&col(&|x| x.delivered_per_sec), 0),
            show(&col(&|x| x.hubs_cpu_percent), 1),
            show(&col(&|x| x.drain_secs), 1),
            s.iter().map(|x| x.delivered_total).sum::<u64>(),
            s.iter().map(|x| x.sent).sum::<u64>(),
            s.iter().map(|x| x.lost).sum::<u64>(),
            s.iter().map(|x| x.lagged).sum::<u64>(),
            s.iter().filter(|x| x.carried(o.duration_secs)).count(),
            s.len(),
            show(&col(&|x| x.driver_cpu_percent), 1),
        )?;
    }
    md.push_str("\nLoss-free fan-in (the highest offered load every run carried):\n\n");
    let mut setups: Vec<(Engine, usize)> =
        o.samples.iter().map(|s| (s.engine, s.replicas)).collect();
    setups.sort();
    setups.dedup();
    for &(engine, k) in &setups {
        let max = loss_free_max(o, engine, k).map_or_else(
            || "none of the loads measured".into(),
            |l| format!("{l} events/s"),
        );
        writeln!(md, "- {}: {max}", setup_name(engine, k))?;
    }
    let one = loss_free_max(o, Engine::Postgres, 1);
    let two = loss_free_max(o, Engine::Postgres, 2);
    let target = "Target (2 replicas carry at least 1.5× the loss-free fan-in of one)";
    if let (Some(one), Some(two)) = (one, two) {
        let ratio = two as f64 / one as f64;
        let verdict = if ratio >= 1.5 { "met" } else { "not met" };
        writeln!(md, "\n{target}: {verdict} — {ratio:.2}×.")?;
    } else {
        let best = |k| {
            o.samples
                .iter()
                .filter(|s| s.engine == Engine::Postgres && s.replicas == k)
                .map(|s| s.delivered_per_sec)
                .fold(0.0, f64::max)
        };
        writeln!(
            md,
            "\n{target}: not met — no load carried by one replica to compare with; the best \
             delivered/s in a window was {:.0} with 2 replicas against {:.0} with one \
             ({:.2}×).",
            best(2),
            best(1),
            best(2) / best(1).max(1.0)
        )?;
    }
    md.push_str(
        "\nWhat holds it back here: every write transaction of the fleet takes one advisory \
         lock and its hub_seq numbers under it (so that the live tail never skips a row that \
         commits late), so replicas add ingest CPU but not commit throughput: each commit \
         group waits for the others' fsync. On this machine the 2 cores are shared by \
         PostgreSQL, every hub, the reporters and the subscriber (and, during this run, by \
         other builds: see the load average), so a second replica mostly competes for the \
         same cores. SQLite in one process commits with no network round trips.\n",
    );
    md.push('\n');
    Ok(())
}
