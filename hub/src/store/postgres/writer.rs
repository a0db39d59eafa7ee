//! The writer connection of one replica: the engine's queries under the store's commit
//! policy (Hello, event, loss and warning commits with dedup by (node, instance, seq)),
//! counters, stream marks, retention.
//!
//! Order across replicas without a fleet-wide commit order: rows are numbered from blocks
//! of the hub_seq sequence, and a transaction holding numbers holds a mark until it ended,
//! which keeps every replica's tail below them (see `numbering`). Replicas commit at the
//! same time; a commit waits only for its own fsync.
//!
//! A commit group costs five round trips whatever its size: `BEGIN`, a block of numbers,
//! the tappers' rows (locked in key order, then updated), the group's events by `COPY`, and
//! the commit (with the unused numbers given back and the mark dropped). The events are
//! numbered here, in step order, and wait in one [`Batch`] until the group ends (or another
//! kind of step comes); a group ends at [`GROUP_ROWS`]. The unique key checks that every
//! one of them was new: an event that another replica stored meanwhile (the local seq state
//! said new, the unique key said no) fails its group, whose tappers re-send, and its
//! instance's batches then go to the database one by one (exact mode), as they do when its
//! state is loaded with rows stored above its acked seq.

use std::collections::HashSet;

use postgres::{Client, error::SqlState};
use tapper_proto::v1::{Counters, Event, Hello, Loss, LossNotice, Warning};
use tracing::{info, warn};

use super::{
    CHANNEL, Database, insert,
    insert::Batch,
    locks, losses,
    numbering::{Pool, Watermark},
    retention, schema, u2i, warnings,
};
use crate::store::{
    Committed, InstanceKey, Result, StoreError, Writer,
    policy::{CommitQueries, Ledger, LossRows},
};

/// Rows numbered in one group transaction at the most, roughly (the step that reaches it
/// ends the group).
const GROUP_ROWS: u64 = 4_096;

/// A live connection and what is prepared on it.
struct Conn {
    client: Client,
    prepared: insert::Prepared,
    /// This session holds the retention lock: this replica runs retention for the fleet.
    retention_leader: bool,
}

/// The writer of one replica.
pub struct PgWriter {
    steps: Steps,
    ledger: Ledger,
}

/// The writer's connection and the state of its open transaction.
struct Steps {
    db: Database,
    /// `None` after the connection was lost; the next call reconnects.
    conn: Option<Conn>,
    /// The connection was opened anew since the ledger last asked: nothing cached is trusted.
    reconnected: bool,
    /// A group transaction is open.
    in_group: bool,
    /// A step of the open group failed in a way that may have aborted the transaction.
    broken: bool,
    /// The hub_seq numbers of the open transaction.
    pool: Pool,
    /// Rows were added in the open transaction: its commit wakes every replica's tail.
    added: bool,
    /// The open group's events, numbered, written at its end (or before any other step).
    staged: Batch,
    /// Instances whose events go to the database at once, each batch on its own.
    exact: HashSet<InstanceKey>,
}

fn prepare(mut client: Client) -> Result<Conn> {
    let prepared = insert::Prepared::new(&mut client)?;
    Ok(Conn {
        client,
        prepared,
        retention_leader: false,
    })
}

/// A step of a group that cannot be stored any more.
fn group_lost() -> StoreError {
    StoreError::Busy("the database connection was lost during this commit group".into())
}

/// Raises the tapper row's acked seq (never lowers it: another replica may be ahead) and
/// sets last_seen.
fn raise_acked(client: &mut Client, key: &InstanceKey, acked: u64, now_ns: i64) -> Result<()> {
    client.execute(
        "UPDATE tappers SET acked_seq = GREATEST(acked_seq, $3), last_seen_ns = $4
         WHERE node = $1 AND instance_id = $2",
        &[&key.node, &key.instance_id, &u2i(acked), &now_ns],
    )?;
    Ok(())
}

impl PgWriter {
    /// Connects (errors say what to fix), brings the schema up to date and reads where
    /// hub_seq stands.
    pub(super) fn open(db: Database, watermark: &Watermark) -> Result<Self> {
        let mut client = db.open()?;
        schema::migrate(&mut client)?;
        let last_hub_seq = watermark.read(&mut client)?;
        let conn = prepare(client)?;
        info!(replica = %db.replica, "joined the database as a hub replica");
        Ok(Self {
            steps: Steps {
                db,
                conn: Some(conn),
                reconnected: false,
                in_group: false,
                broken: false,
                pool: Pool::default(),
                added: false,
                staged: Batch::default(),
                exact: HashSet::new(),
            },
            ledger: Ledger::new(last_hub_seq),
        })
    }
}

impl Steps {
    /// The live connection, reconnecting if it was lost (then nothing cached is trusted).
    fn conn(&mut self) -> Result<&mut Conn> {
        if self.conn.as_ref().is_none_or(|c| c.client.is_closed()) {
            if self.conn.take().is_some() {
                warn!("lost the database connection; reconnecting");
            }
            // The open group went with the old connection: none of its steps may be acked.
            self.broken |= self.in_group;
            self.staged.clear();
            self.pool.forget();
            self.reconnected = true;
            let client = self.db.connect()?;
            self.conn = Some(prepare(client)?);
            info!("database connection restored");
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    /// Opens a transaction.
    fn begin(&mut self) -> Result<()> {
        self.conn()?.client.batch_execute("BEGIN")?;
        self.added = false;
        Ok(())
    }

    /// Ends the open step's savepoint with `sql`.
    fn savepoint(&mut self, sql: &str) -> std::result::Result<(), postgres::Error> {
        let conn = self
            .conn
            .as_mut()
            .expect("a step runs on a live connection");
        conn.client.batch_execute(sql)
    }

    /// Ends the open transaction and drops its mark, if any (one round trip).
    fn finish(&mut self, commit: bool) -> std::result::Result<(), postgres::Error> {
        self.staged.clear();
        let Some(conn) = self.conn.as_mut() else {
            self.pool.forget();
            return Ok(());
        };
        let end = if commit { "COMMIT" } else { "ROLLBACK" };
        let ended = conn.client.batch_execute(&self.pool.end_sql(end, CHANNEL));
        if ended.is_ok() {
            self.pool.ended();
        } else if conn.client.is_closed() {
            self.pool.forget();
        }
        ended
    }

    /// Writes the staged events of the open group. Any failure, and an event found stored
    /// already, breaks the group: none of its steps may be acknowledged.
    fn flush(&mut self) -> Result<()> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let wanted = self.staged.len();
        let instances: Vec<InstanceKey> = self.staged.instances().cloned().collect();
        self.conn()?;
        if self.broken {
            return Err(group_lost());
        }
        let conn = self.conn.as_mut().expect("connected above");
        let written = self.staged.copy(&mut conn.client, &conn.prepared);
        match written {
            Ok(stored) if stored == wanted as u64 => {
                self.added |= wanted > 0;
                Ok(())
            }
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                self.broken = true;
                self.exact.extend(instances);
                Err(StoreError::Busy(
                    "another replica stored some of these events meanwhile; the group is \
                     rolled back and these tappers' events are now checked one batch at a time"
                        .into(),
                ))
            }
            Ok(stored) => {
                self.broken = true;
                Err(StoreError::Busy(
                    format!("COPY stored {stored} of {wanted} events; the group is rolled back")
                        .into(),
                ))
            }
            Err(e) => {
                self.broken = true;
                Err(e.into())
            }
        }
    }

    /// Runs one all-or-nothing step: a savepoint inside the open group (after its staged
    /// events are written), else a transaction of its own. `f` gets the transaction's
    /// hub_seq numbers and the replica's name.
    fn step<T>(&mut self, f: impl FnOnce(&mut Conn, &mut Pool, &str) -> Result<T>) -> Result<T> {
        let in_group = self.in_group;
        self.conn()?;
        if self.broken {
            return Err(group_lost());
        }
        if in_group {
            self.flush()?;
            self.conn()?.client.batch_execute("SAVEPOINT step")?;
        } else {
            self.begin()?;
        }
        let before = self.pool.given();
        let conn = self.conn.as_mut().expect("connected above");
        let result = f(conn, &mut self.pool, &self.db.replica);
        self.added |= result.is_ok() && self.pool.given() > before;
        let ended = match (&result, in_group) {
            (Ok(_), true) => self.savepoint("RELEASE SAVEPOINT step"),
            (Err(_), true) => self.savepoint("ROLLBACK TO SAVEPOINT step"),
            (Ok(_), false) => self.finish(true),
            (Err(_), false) => self.finish(false),
        };
        match (result, ended) {
            (Ok(v), Ok(())) => Ok(v),
            (Err(e), Ok(())) => Err(e),
            (_, Err(e)) => {
                self.broken = in_group;
                Err(e.into())
            }
        }
    }
}

impl CommitQueries for Steps {
    fn reconnected(&mut self) -> Result<bool> {
        self.conn()?;
        Ok(std::mem::take(&mut self.reconnected))
    }

    /// Also puts the instance in exact mode when rows of it are stored above that seq (a
    /// re-sent batch may then hold events stored already).
    fn stored_acked(&mut self, key: &InstanceKey) -> Result<u64> {
        self.flush()?;
        let row = self.conn()?.client.query_one(
            "WITH t AS (SELECT COALESCE((SELECT acked_seq FROM tappers
                                         WHERE node = $1 AND instance_id = $2), 0) AS acked)
             SELECT acked,
                 EXISTS (SELECT 1 FROM events
                         WHERE node = $1 AND instance_id = $2 AND seq > acked)
                 OR EXISTS (SELECT 1 FROM warnings
                            WHERE node = $1 AND instance_id = $2 AND seq > acked)
                 OR EXISTS (SELECT 1 FROM losses
                            WHERE node = $1 AND instance_id = $2 AND first_seq > acked)
             FROM t",
            &[&key.node, &key.instance_id],
        )?;
        if row.get::<_, bool>(1) {
            self.exact.insert(key.clone());
        }
        Ok(super::i2u(row.get(0)))
    }

    fn store_events(
        &mut self,
        key: &InstanceKey,
        events: &mut [Event],
        acked: u64,
        now_ns: i64,
    ) -> Result<Vec<(u64, u64)>> {
        let events = &*events;
        if self.in_group && !self.exact.contains(key) {
            self.conn()?;
            if self.broken {
                return Err(group_lost());
            }
            let client = &mut self.conn.as_mut().expect("connected above").client;
            let numbered = self.pool.take(client, events.len()).and_then(|numbers| {
                Ok(self
                    .staged
                    .push(client, key, events, &numbers, (acked, now_ns))?)
            });
            if numbered.is_err() {
                self.broken = true;
            }
            return numbered;
        }
        self.step(|conn, pool, _| {
            let numbers = pool.take(&mut conn.client, events.len())?;
            let mut batch = Batch::default();
            batch.push(&mut conn.client, key, events, &numbers, (acked, now_ns))?;
            Ok(batch.write(&mut conn.client, &conn.prepared)?)
        })
    }

    fn store_loss<F>(
        &mut self,
        key: &InstanceKey,
        acked: u64,
        now_ns: i64,
        store: F,
    ) -> Result<Option<u64>>
    where
        F: FnOnce(&mut dyn LossRows) -> Result<Option<u64>>,
    {
        self.step(|conn, pool, _| {
            let hub_seq = store(&mut losses::Rows {
                client: &mut conn.client,
                pool,
            })?;
            raise_acked(&mut conn.client, key, acked, now_ns)?;
            Ok(hub_seq)
        })
    }

    fn store_warning(
        &mut self,
        key: &InstanceKey,
        warning: Option<&Warning>,
        acked: u64,
        now_ns: i64,
    ) -> Result<Option<u64>> {
        self.step(|conn, pool, _| {
            let hub_seq = match warning {
                Some(w) => warnings::insert(&mut conn.client, key, w, pool, now_ns)?,
                None => None,
            };
            raise_acked(&mut conn.client, key, acked, now_ns)?;
            Ok(hub_seq)
        })
    }
}

impl Writer for PgWriter {
    fn last_hub_seq(&self) -> u64 {
        self.ledger.last_hub_seq()
    }

    fn begin_group(&mut self) -> Result<()> {
        let steps = &mut self.steps;
        steps.begin()?;
        steps.in_group = true;
        steps.broken = false;
        Ok(())
    }

    fn end_group(&mut self) -> Result<()> {
        let steps = &mut self.steps;
        if !steps.in_group {
            return Ok(());
        }
        let flushed = if steps.broken { Ok(()) } else { steps.flush() };
        steps.in_group = false;
        let broken = std::mem::take(&mut steps.broken);
        let committed = match (flushed, broken) {
            _ if steps.conn.is_none() => Err(StoreError::Busy("database connection lost".into())),
            (Err(e), _) => Err(e),
            (Ok(()), true) => Err(StoreError::Busy(
                "a step of the group failed to end; the group was rolled back".into(),
            )),
            (Ok(()), false) => steps.finish(true).map_err(StoreError::from),
        };
        if committed.is_err() {
            if steps.conn.as_ref().is_some_and(|c| !c.client.is_closed()) {
                let _ = steps.finish(false);
            }
            steps.staged.clear();
            self.ledger.forget_all();
        }
        committed
    }

    /// Its rows stay invisible to every replica's tail until it commits, and hold back the
    /// rows numbered after them: a group ends at [`GROUP_ROWS`].
    fn group_full(&self) -> bool {
        self.steps.in_group && self.steps.pool.given() >= GROUP_ROWS
    }

    fn hello(&mut self, hello: &Hello, now_ns: i64) -> Result<u64> {
        let key = InstanceKey {
            node: hello.node.clone(),
            instance_id: hello.instance_id.clone(),
        };
        // The stream may come from another replica: what this one cached is stale.
        self.ledger.forget(&key);
        let h = hello.clone();
        self.steps.step(|conn, _, _| {
            conn.client.execute(
                "INSERT INTO tappers (node, instance_id, kernel_release, probe_mode,
                                      agent_version, first_seen_ns, last_seen_ns)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)
                 ON CONFLICT (node, instance_id) DO UPDATE SET
                     kernel_release = $3, probe_mode = $4, agent_version = $5,
                     last_seen_ns = $6",
                &[
                    &h.node,
                    &h.instance_id,
                    &h.kernel_release,
                    &h.probe_mode,
                    &h.agent_version,
                    &now_ns,
                ],
            )?;
            Ok(())
        })?;
        self.ledger.acked(&mut self.steps, &key)
    }

    fn stream_started(&mut self, key: &InstanceKey, peer: &str, _now_ns: i64) -> Result<()> {
        self.steps.step(|conn, _, replica| {
            conn.client.execute(
                "UPDATE tappers SET replica = $3, peer = $4
                 WHERE node = $1 AND instance_id = $2",
                &[&key.node, &key.instance_id, &replica, &peer],
            )?;
            Ok(())
        })
    }

    fn commit_events(
        &mut self,
        key: &InstanceKey,
        events: Vec<Event>,
        now_ns: i64,
    ) -> Result<Committed<Event>> {
        self.ledger
            .commit_events(&mut self.steps, key, events, now_ns)
    }

    fn commit_loss(
        &mut self,
        key: &InstanceKey,
        loss: Loss,
        now_ns: i64,
    ) -> Result<Committed<LossNotice>> {
        self.ledger.commit_loss(&mut self.steps, key, loss, now_ns)
    }

    fn commit_warning(
        &mut self,
        key: &InstanceKey,
        warning: Warning,
        now_ns: i64,
    ) -> Result<Committed<Warning>> {
        self.ledger
            .commit_warning(&mut self.steps, key, warning, now_ns)
    }

    fn set_counters(&mut self, key: &InstanceKey, c: &Counters, now_ns: i64) -> Result<()> {
        use prost::Message;
        let body = c.encode_to_vec();
        self.steps.step(|conn, _, _| {
            conn.client.execute(
                "UPDATE tappers SET counters = $3, last_seen_ns = $4
                 WHERE node = $1 AND instance_id = $2",
                &[&key.node, &key.instance_id, &body, &now_ns],
            )?;
            Ok(())
        })
    }

    fn stream_ended(&mut self, key: &InstanceKey, now_ns: i64) -> Result<()> {
        self.ledger.forget(key);
        self.steps.exact.remove(key);
        self.steps.step(|conn, _, replica| {
            conn.client.execute(
                "UPDATE tappers SET last_seen_ns = $3,
                     replica = CASE WHEN replica = $4 THEN NULL ELSE replica END,
                     peer = CASE WHEN replica = $4 THEN NULL ELSE peer END
                 WHERE node = $1 AND instance_id = $2",
                &[&key.node, &key.instance_id, &now_ns, &replica],
            )?;
            Ok(())
        })
    }

    fn apply_retention(
        &mut self,
        max_age_ns: Option<i64>,
        max_rows: Option<u64>,
        now_ns: i64,
    ) -> Result<u64> {
        if !self.steps.retention_leader()? {
            return Ok(0);
        }
        let client = &mut self.steps.conn()?.client;
        retention::apply(client, max_age_ns, max_rows, now_ns)
    }

    fn expire_instances(&mut self, max_idle_ns: i64, now_ns: i64) -> Result<u64> {
        if !self.steps.retention_leader()? {
            return Ok(0);
        }
        let client = &mut self.steps.conn()?.client;
        retention::expire_instances(client, now_ns.saturating_sub(max_idle_ns))
    }
}

impl Steps {
    /// Whether this replica runs retention: the first to take the session's retention lock
    /// keeps it until its connection ends; the others skip.
    fn retention_leader(&mut self) -> Result<bool> {
        let conn = self.conn()?;
        if !conn.retention_leader {
            let row = conn
                .client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&locks::RETENTION])?;
            conn.retention_leader = row.get(0);
            if conn.retention_leader {
                info!("this replica runs retention for the fleet");
            }
        }
        Ok(conn.retention_leader)
    }
}
