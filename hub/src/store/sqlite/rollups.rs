//! Per-minute rollups: failures of stored events (each `1 + suppressed`) counted by
//! (receive minute, node, errno, errno_name), kept exact by the writer in the transaction
//! that inserts or deletes the events.

use std::collections::HashMap;

use rusqlite::{Connection, Transaction, params, params_from_iter, types::Value};

use super::i2u;
use crate::store::Result;

/// Nanoseconds in a rollup minute.
pub const MINUTE_NS: i64 = 60_000_000_000;

/// The rollup minute of `events.received_ns` in SQL: floor division, as [`minute`] does
/// (written into schema version 3; the two must agree).
const MINUTE_SQL: &str = "CASE WHEN received_ns >= 0 THEN received_ns / 60000000000
     ELSE (received_ns + 1) / 60000000000 - 1 END";

/// The failures a group of events stands for: each event, and the failures the tapper's
/// rate limit suppressed before it.
pub const FAILURES_SQL: &str = "SUM(1 + suppressed)";

/// The rollup minute of a receive time.
pub fn minute(received_ns: i64) -> i64 {
    received_ns.div_euclid(MINUTE_NS)
}

/// A rollup key within one minute: node, errno, errno_name.
pub type Key = (String, i32, String);

/// Adds `counts` (failures per errno and errno_name) of events of `node` received in
/// `minute`.
pub fn add(
    tx: &Connection,
    node: &str,
    minute: i64,
    counts: &HashMap<(i32, &str), i64>,
) -> Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO rollups (minute, node, errno, errno_name, count) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (minute, node, errno, errno_name) DO UPDATE SET count = count + ?5",
    )?;
    for (&(errno, name), &n) in counts {
        upsert.execute(params![minute, node, errno, name, n])?;
    }
    Ok(())
}

/// Takes the events matching `cond` (SQL over `events` with one parameter, `arg`) out of the
/// rollups; call it before deleting those events, in the same transaction.
pub fn subtract(tx: &Transaction<'_>, cond: &str, arg: i64) -> Result<()> {
    let mut gone = tx.prepare(&format!(
        "SELECT {MINUTE_SQL}, node, errno, errno_name, {FAILURES_SQL} FROM events WHERE {cond}
         GROUP BY 1, 2, 3, 4"
    ))?;
    let gone = gone
        .query_map([arg], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i32>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut take = tx.prepare_cached(
        "UPDATE rollups SET count = count - ?5
         WHERE minute = ?1 AND node = ?2 AND errno = ?3 AND errno_name = ?4",
    )?;
    let mut drop_empty = tx.prepare_cached(
        "DELETE FROM rollups
         WHERE minute = ?1 AND node = ?2 AND errno = ?3 AND errno_name = ?4 AND count <= 0",
    )?;
    for (minute, node, errno, name, n) in gone {
        take.execute(params![minute, node, errno, name, n])?;
        drop_empty.execute(params![minute, node, errno, name])?;
    }
    Ok(())
}

/// Adds to `out` the event counts of the minutes `[first, end)`, only of `nodes` if any.
pub fn counts(
    conn: &Connection,
    first: i64,
    end: i64,
    nodes: &[String],
    out: &mut HashMap<Key, u64>,
) -> Result<()> {
    let mut sql = String::from(
        "SELECT node, errno, errno_name, SUM(count) FROM rollups WHERE minute >= ? AND minute < ?",
    );
    let mut args: Vec<Value> = vec![first.into(), end.into()];
    super::push_node_filter(&mut sql, &mut args, nodes);
    sql.push_str(" GROUP BY node, errno, errno_name");
    let mut st = conn.prepare(&sql)?;
    let mut rows = st.query(params_from_iter(args.iter()))?;
    while let Some(r) = rows.next()? {
        let n = i2u(r.get(3)?);
        *out.entry((r.get(0)?, r.get(1)?, r.get(2)?)).or_default() += n;
    }
    Ok(())
}

/// Whether the rollups hold exactly the counts of the stored events.
#[cfg(test)]
pub fn consistent(conn: &Connection) -> bool {
    let diff: i64 = conn
        .query_row(
            &format!(
                "WITH scan AS (SELECT {MINUTE_SQL} AS minute, node, errno, errno_name,
                                      {FAILURES_SQL} AS count
                               FROM events GROUP BY 1, 2, 3, 4)
                 SELECT (SELECT COUNT(*) FROM (SELECT * FROM scan EXCEPT SELECT * FROM rollups))
                      + (SELECT COUNT(*) FROM (SELECT * FROM rollups EXCEPT SELECT * FROM scan))"
            ),
            [],
            |r| r.get(0),
        )
        .unwrap();
    diff == 0
}

#[cfg(test)]
mod tests {
    use tapper_proto::v1::Event;

    use std::time::Duration;

    use super::{super::testkit::key, MINUTE_NS as M};
    use crate::store::{
        QueryBudget, Writer, budget::Work, sqlite::stats::assert_rollups_match_scans,
    };

    /// A small deterministic pseudo-random sequence (an LCG), enough to spread test data.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) % n
        }
    }

    #[test]
    fn stats_from_rollups_equal_scans_before_and_after_retention() {
        // The checks run many queries as one: a budget that fits them all.
        let budget = QueryBudget {
            timeout: Duration::from_secs(3600),
            ..QueryBudget::default()
        };
        let (mut w, r) = super::super::open(":memory:", budget).unwrap();
        let mut rng = Lcg(9);
        let nodes = ["a", "b", "c", "d"];
        let mut next_seq = [1u64; 4];
        let start = 1_000 * M;
        // Batches received over seven minutes, some exactly on minute boundaries.
        for batch in 0..150 {
            let now = if batch % 25 == 0 {
                start + (batch / 25) as i64 * M
            } else {
                start + rng.below(7 * M as u64) as i64
            };
            let n = rng.below(4) as usize;
            let events = (0..1 + rng.below(10))
                .map(|_| {
                    let errno = [1, 13, 22, 24, 97][rng.below(5) as usize];
                    // The same errno under two names (e.g. an older tapper's spelling).
                    let name = if rng.below(10) == 0 { "ALIAS" } else { "E" };
                    next_seq[n] += 1;
                    Event {
                        seq: next_seq[n] - 1,
                        suppressed: [0, 0, 3, 1000][rng.below(4) as usize],
                        errno,
                        errno_name: format!("{name}{errno}"),
                        comm: format!("c{}", rng.below(3)),
                        ..Default::default()
                    }
                })
                .collect();
            w.commit_events(&key(nodes[n]), events, now).unwrap();
        }
        // A few receive times before 1970: minutes round down there too.
        w.commit_events(&key("a"), vec![ev_at(next_seq[0])], -1)
            .unwrap();
        w.commit_events(&key("a"), vec![ev_at(next_seq[0] + 1)], -M)
            .unwrap();
        let check = || {
            r.with_conn(Work::Stats, |c| {
                assert_rollups_match_scans(c);
                Ok(())
            })
            .unwrap()
        };
        check();
        // Retention by age (a cutoff inside a minute), then by rows (inside a batch).
        assert!(
            w.apply_retention(Some(5 * M + 17), None, start + 7 * M)
                .unwrap()
                > 0
        );
        check();
        assert!(w.apply_retention(None, Some(300), start + 7 * M).unwrap() > 0);
        check();
        assert!(w.apply_retention(None, Some(1), start + 7 * M).unwrap() > 0);
        check();
    }

    fn ev_at(seq: u64) -> Event {
        Event {
            seq,
            errno: 24,
            errno_name: "E24".into(),
            ..Default::default()
        }
    }
}
