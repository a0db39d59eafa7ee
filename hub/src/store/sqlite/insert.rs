//! The insert of a batch's events: multi-row statements (cached, in chunks of powers of two)
//! with hub_seq numbers taken in order after the high-water mark. A row whose unique key
//! (node, instance, seq) exists already is a duplicate, left out (`OR IGNORE`): when the
//! batch holds one, the multi-row insert is undone and the batch goes row by row, so that
//! stored events still take consecutive numbers. User stacks go to `stacks` once per distinct
//! stack, and the event row keeps `stack_id`.

use std::{ops::Range, sync::OnceLock};

use prost::Message;
use rusqlite::{Connection, ToSql};
use tapper_proto::v1::Event;

use super::{identity, stacks, u2i};
use crate::{
    store::{InstanceKey, Result},
    util::clock::from_ts,
};

/// The columns of an event row, in the order [`bind`] binds them.
const COLUMNS: &str = "hub_seq, node, instance_id, seq, ts_ns, received_ns, pid, errno, errno_name,
    family, family_name, comm, cgroup_id, body, source, cgroup_path, container_id,
    container_runtime, container_name, container_image, pod_uid, pod_namespace, pod_name,
    pod_labels, quota_memory_max, quota_memory_current, quota_pids_max, quota_pids_current,
    quota_file_nr, quota_file_max, suppressed, stack_id";
/// Number of [`COLUMNS`].
const WIDTH: usize = 16 + identity::COLUMNS;
/// Most rows in one statement (a power of two; 32 × 64 parameters stay far below SQLite's
/// limit).
const MAX_CHUNK: usize = 64;

/// What a row needs beyond its event: the encoded body's place in the batch's buffer and
/// the stack's id.
struct Extra {
    body: Range<usize>,
    stack_id: Option<i64>,
}

/// Stores `events` of `key` numbered after `last_hub_seq`; returns (seq, hub_seq) of each
/// event stored, in hub_seq order.
pub fn events(
    tx: &Connection,
    key: &InstanceKey,
    events: &mut [Event],
    last_hub_seq: u64,
    now_ns: i64,
) -> Result<Vec<(u64, u64)>> {
    // Every body of the batch in one buffer; the bodies keep no frames: they are stored
    // once per distinct stack.
    let mut bodies = Vec::new();
    let mut extras = Vec::with_capacity(events.len());
    for e in events.iter_mut() {
        let frames = std::mem::take(&mut e.user_stack);
        let stack_id = stacks::store(tx, &frames)?;
        let start = bodies.len();
        e.encode_raw(&mut bodies);
        e.user_stack = frames;
        extras.push(Extra {
            body: start..bodies.len(),
            stack_id,
        });
    }
    let rows = Rows {
        key,
        events,
        extras: &extras,
        bodies: &bodies,
        now_ns,
    };
    tx.prepare_cached("SAVEPOINT insert_events")?.execute([])?;
    match rows.all_at_once(tx, last_hub_seq) {
        Ok(true) => {
            tx.prepare_cached("RELEASE insert_events")?.execute([])?;
            let numbered = events.iter().zip(last_hub_seq + 1..);
            Ok(numbered.map(|(e, hub_seq)| (e.seq, hub_seq)).collect())
        }
        answer => {
            tx.prepare_cached("ROLLBACK TO insert_events")?
                .execute([])?;
            tx.prepare_cached("RELEASE insert_events")?.execute([])?;
            answer?;
            rows.one_by_one(tx, last_hub_seq)
        }
    }
}

/// A batch ready to bind.
struct Rows<'a> {
    key: &'a InstanceKey,
    events: &'a [Event],
    extras: &'a [Extra],
    bodies: &'a [u8],
    now_ns: i64,
}

impl Rows<'_> {
    /// Inserts every row numbered in order after `last_hub_seq`, in multi-row statements;
    /// false if some row was a duplicate (then the caller undoes the rest).
    fn all_at_once(&self, tx: &Connection, last_hub_seq: u64) -> Result<bool> {
        let mut done = 0;
        while done < self.events.len() {
            let left = self.events.len() - done;
            let chunk = MAX_CHUNK.min(1 << left.ilog2());
            let mut insert = tx.prepare_cached(statement(chunk))?;
            for row in 0..chunk {
                let at = done + row;
                self.bind(&mut insert, row * WIDTH, at, last_hub_seq + 1 + at as u64)?;
            }
            if insert.raw_execute()? != chunk {
                return Ok(false);
            }
            done += chunk;
        }
        Ok(true)
    }

    /// Inserts row by row, leaving duplicates out; stored rows take consecutive numbers.
    fn one_by_one(&self, tx: &Connection, last_hub_seq: u64) -> Result<Vec<(u64, u64)>> {
        let mut insert = tx.prepare_cached(statement(1))?;
        let mut stored = Vec::new();
        let mut next = last_hub_seq;
        for (at, e) in self.events.iter().enumerate() {
            self.bind(&mut insert, 0, at, next + 1)?;
            if insert.raw_execute()? == 1 {
                next += 1;
                stored.push((e.seq, next));
            }
        }
        Ok(stored)
    }

    /// Binds row `at` of the batch, numbered `hub_seq`, to the parameters after `offset`.
    fn bind(
        &self,
        insert: &mut rusqlite::CachedStatement<'_>,
        offset: usize,
        at: usize,
        hub_seq: u64,
    ) -> Result<()> {
        let (e, extra, key) = (&self.events[at], &self.extras[at], self.key);
        let identity = identity::values(e);
        let body = &self.bodies[extra.body.clone()];
        let (seq, ts_ns) = (u2i(e.seq), e.ts.as_ref().map_or(0, from_ts));
        let (cgroup_id, suppressed, hub_seq) = (u2i(e.cgroup_id), u2i(e.suppressed), u2i(hub_seq));
        let head: [&dyn ToSql; 14] = [
            &hub_seq,
            &key.node,
            &key.instance_id,
            &seq,
            &ts_ns,
            &self.now_ns,
            &e.pid,
            &e.errno,
            &e.errno_name,
            &e.family,
            &e.family_name,
            &e.comm,
            &cgroup_id,
            &body,
        ];
        let tail: [&dyn ToSql; 2] = [&suppressed, &extra.stack_id];
        let values = head
            .into_iter()
            .chain(identity.iter().map(|v| v as &dyn ToSql))
            .chain(tail);
        for (i, value) in values.enumerate() {
            insert.raw_bind_parameter(offset + i + 1, value)?;
        }
        Ok(())
    }
}

/// The insert of `rows` event rows, a power of two up to [`MAX_CHUNK`]; made once.
fn statement(rows: usize) -> &'static str {
    static MADE: [OnceLock<String>; MAX_CHUNK.ilog2() as usize + 1] =
        [const { OnceLock::new() }; MAX_CHUNK.ilog2() as usize + 1];
    MADE[rows.ilog2() as usize].get_or_init(|| {
        let row = format!("({})", vec!["?"; WIDTH].join(", "));
        format!(
            "INSERT OR IGNORE INTO events ({COLUMNS}) VALUES {}",
            vec![row; rows].join(", ")
        )
    })
}
