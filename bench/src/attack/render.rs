//! The "Under attack" section of BENCHMARKS.md, from the attack part's result.

use std::{collections::BTreeMap, fmt::Write};

use anyhow::Result;

use super::{Outcome, acks, churn, conns, stuck};
use crate::{report::load_str, summary::show};

const MIB: f64 = 1024.0;

pub fn section(md: &mut String, o: &Outcome) -> Result<()> {
    md.push_str("## 6. Under attack\n\n");
    writeln!(
        md,
        "Method: every measurement starts a fresh in-memory hub (`hub --db :memory:`, default \
         limits unless stated). The reporter here is a small loop over the generated \
         `HubClient` Report stream (not the `hub-client` `Reporter`), so that each batch can \
         be timed from send to Ack; its events are realistic and spread over many GetStats \
         groups. *Ingest* is {} events sent in batches of {} with at most {} batches \
         un-acked, as committed events/s from the first send to the last Ack. RSS is the \
         hub's VmRSS, which with `:memory:` includes the events stored so far. {} runs; the two conditions of each pair are measured one after the \
         other on fresh hubs, in an order that alternates from run to run. Load average \
         before/after: {} → {}.\n",
        o.events,
        o.batch,
        o.window,
        o.runs,
        load_str(o.machine.load_before),
        load_str(o.machine.load_after)
    )?;
    churn_table(md, &o.churn)?;
    acks_table(md, o)?;
    stuck_table(md, o)?;
    conns_table(md, &o.conns)?;
    Ok(())
}

fn churn_table(md: &mut String, s: &[churn::Sample]) -> Result<()> {
    let Some(first) = s.first() else {
        return Ok(());
    };
    writeln!(
        md,
        "### Subscribe-and-cancel churn\n\n{} `Subscribe` calls whose filter no event \
         matches (a `comm` glob), 8 in flight on one connection, each cancelled as soon as \
         the hub answered (bounded to {} s). RSS before the churn and 1 s after it; ingest by a \
         fresh reporter before and after, on the same hub.\n",
        first.calls, first.limit_secs
    )?;
    let col = |f: &dyn Fn(&churn::Sample) -> f64| s.iter().map(f).collect::<Vec<_>>();
    md.push_str(
        "| calls done (sum) | refused (sum, by code) | churn s | hub RSS before MiB | hub RSS after MiB | ingest before events/s | ingest after events/s |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    writeln!(
        md,
        "| {} of {} | {} | {} | {} | {} | {} | {} |\n",
        s.iter().map(|x| x.completed).sum::<u64>(),
        s.iter().map(|x| x.calls).sum::<u64>(),
        codes(s.iter().map(|x| &x.refused)),
        show(&col(&|x| x.churn_secs), 1),
        show(&col(&|x| x.rss_before_kib as f64 / MIB), 1),
        show(&col(&|x| x.rss_after_kib as f64 / MIB), 1),
        show(&col(&|x| x.ingest_before), 0),
        show(&col(&|x| x.ingest_after), 0),
    )?;
    Ok(())
}

fn acks_table(md: &mut String, o: &Outcome) -> Result<()> {
    let Some(first) = o.acks.first() else {
        return Ok(());
    };
    writeln!(
        md,
        "### Ack latency under GetStats load\n\n{} events stored first ({} nodes, {} \
         distinct comm × cgroup × errno × family groups per node), then one reporter sends a batch of 100 events, waits for its Ack and pauses 20 ms, for {} s; \
         the latency is per-run p50 / p99 / max of send → Ack. Meanwhile 0 or N clients, each \
         on its own connection, loop `GetStats` grouped by node, errno, family, comm and \
         cgroup over everything stored. *Answers* are the GetStats calls completed during \
         the window (their p50 time alongside); errors are counted by status code \
         (RESOURCE_EXHAUSTED is a refused query).\n",
        first.stored,
        acks::SEED_NODES,
        super::feed::GROUPS_PER_NODE,
        o.ack_window_secs
    )?;
    md.push_str(
        "| GetStats clients | timed batches (sum) | ack p50 ms | ack p99 ms | ack max ms | GetStats answers (sum) | GetStats answer p50 ms | GetStats errors (sum, by code) | hub RSS MiB |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    let mut clients: Vec<u64> = o.acks.iter().map(|s| s.getstats_clients).collect();
    clients.sort();
    clients.dedup();
    for c in clients {
        let s: Vec<&acks::Sample> = o.acks.iter().filter(|x| x.getstats_clients == c).collect();
        let col = |f: &dyn Fn(&acks::Sample) -> f64| s.iter().map(|x| f(x)).collect::<Vec<_>>();
        let answer: Vec<f64> = s.iter().filter_map(|x| x.answer_p50_ms).collect();
        writeln!(
            md,
            "| {c} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.iter().map(|x| x.batches).sum::<u64>(),
            show(&col(&|x| x.p50_ms), 1),
            show(&col(&|x| x.p99_ms), 1),
            show(&col(&|x| x.max_ms), 1),
            s.iter().map(|x| x.answers).sum::<u64>(),
            if c == 0 {
                "—".into()
            } else {
                show(&answer, 0)
            },
            if c == 0 {
                "—".into()
            } else {
                codes(s.iter().map(|x| &x.errors))
            },
            show(&col(&|x| x.hub_rss_kib as f64 / MIB), 1),
        )?;
    }
    md.push('\n');
    Ok(())
}

fn stuck_table(md: &mut String, o: &Outcome) -> Result<()> {
    if o.stuck.is_empty() {
        return Ok(());
    }
    writeln!(
        md,
        "### Stuck subscribers\n\nUnfiltered live `Subscribe` streams (100 per connection) \
         that are never read, opened before one reporter sends its events; the hub runs with \
         `--subscriber-stall-timeout {}s` and {}. RSS is taken before and after the \
         ingest. Afterwards every stream is read for up to 10 s to learn how it ended: \
         *dropped* means the hub ended it with RESOURCE_EXHAUSTED (after a final lagged \
         notice).\n",
        o.stall_timeout_secs,
        o.subscriber_queue.map_or_else(
            || "its default queue".to_owned(),
            |q| format!("`--subscriber-queue {q}`")
        )
    )?;
    md.push_str(
        "| stuck subscribers | opened (sum) | ingest events/s | hub RSS before MiB | hub RSS after MiB | dropped by the hub (sum) | still open (sum) | ended otherwise (sum) |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    let mut counts: Vec<u64> = o.stuck.iter().map(|s| s.subscribers).collect();
    counts.sort();
    counts.dedup();
    for n in counts {
        let s: Vec<&stuck::Sample> = o.stuck.iter().filter(|x| x.subscribers == n).collect();
        let col = |f: &dyn Fn(&stuck::Sample) -> f64| s.iter().map(|x| f(x)).collect::<Vec<_>>();
        let sum = |f: &dyn Fn(&stuck::Sample) -> u64| s.iter().map(|x| f(x)).sum::<u64>();
        writeln!(
            md,
            "| {n} | {} of {}{} | {} | {} | {} | {} | {} | {} |",
            sum(&|x| x.opened),
            sum(&|x| x.subscribers),
            refused_note(s.iter().map(|x| &x.refused)),
            show(&col(&|x| x.ingest_per_sec), 0),
            show(&col(&|x| x.rss_before_kib as f64 / MIB), 1),
            show(&col(&|x| x.rss_after_kib as f64 / MIB), 1),
            sum(&|x| x.evicted),
            sum(&|x| x.still_open),
            sum(&|x| x.other_end),
        )?;
    }
    md.push('\n');
    Ok(())
}

fn conns_table(md: &mut String, s: &[conns::Sample]) -> Result<()> {
    let Some(first) = s.first() else {
        return Ok(());
    };
    writeln!(
        md,
        "### Connections held\n\n{} TCP connections that connect and never send a byte (no \
         HTTP/2 preface), against a hub with `--handshake-timeout {}s`. *Still open* counts \
         the connections on which a read would still block {} s after the last one was \
         opened (expected: 0). The hub's descriptors are the entries of `/proc/<pid>/fd`, \
         sampled every 20 ms; when opening them all takes longer than the timeout, the first \
         are closed before the last are open, and the peak stays below their number. \
         *ListTappers* is a fresh client's connect + ListTappers \
         (10 s limit): before the silent connections, and right after they are all open.\n",
        first.silent,
        first.handshake_timeout_secs,
        first.handshake_timeout_secs + 1.5
    )?;
    let col = |f: &dyn Fn(&conns::Sample) -> f64| s.iter().map(f).collect::<Vec<_>>();
    let opt =
        |f: &dyn Fn(&conns::Sample) -> Option<f64>| s.iter().filter_map(f).collect::<Vec<_>>();
    let held = opt(&|x| x.list_ms_held);
    md.push_str(
        "| silent connections opened (sum) | opening s | still open after the timeout (sum) | hub fds before | hub fds at peak | hub fds after | ListTappers ms before | ListTappers ms while held | answered while held |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    writeln!(
        md,
        "| {} of {} | {} | {} | {} | {} | {} | {} | {} | {} of {} |\n",
        s.iter().map(|x| x.opened).sum::<u64>(),
        s.iter().map(|x| x.silent).sum::<u64>(),
        show(&col(&|x| x.open_secs), 1),
        s.iter().map(|x| x.still_open).sum::<u64>(),
        show(&col(&|x| x.fds_before as f64), 0),
        show(&col(&|x| x.fds_peak as f64), 0),
        show(&col(&|x| x.fds_after as f64), 0),
        show(&opt(&|x| x.list_ms_before), 1),
        show(&held, 1),
        held.len(),
        s.len(),
    )?;
    Ok(())
}

/// "0", or the total and its split by status code, e.g. "3 (RESOURCE_EXHAUSTED: 3)".
fn codes<'a>(per_run: impl Iterator<Item = &'a BTreeMap<String, u64>>) -> String {
    let mut all = BTreeMap::<&str, u64>::new();
    for m in per_run {
        for (code, n) in m {
            *all.entry(code).or_default() += n;
        }
    }
    if all.is_empty() {
        return "0".into();
    }
    let parts: Vec<String> = all.iter().map(|(c, n)| format!("{c}: {n}")).collect();
    format!("{} ({})", all.values().sum::<u64>(), parts.join(", "))
}

/// Empty, or " (refused: …)" when the hub refused some Subscribe calls.
fn refused_note<'a>(per_run: impl Iterator<Item = &'a BTreeMap<String, u64>>) -> String {
    match codes(per_run).as_str() {
        "0" => String::new(),
        c => format!(" (refused: {c})"),
    }
}
