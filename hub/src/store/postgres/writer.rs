//! The writer connection of one replica: the engine's queries under the store's commit
//! policy (Hello, event, loss and warning commits with dedup by (node, instance, seq)),
//! counters, stream marks, retention.
//!
//! Order across replicas: every write transaction first takes the numbering lock
//! (`pg_advisory_xact_lock`), which PostgreSQL releases only after the commit is visible,
//! and takes its hub_seq numbers from the one sequence while holding it. Transactions of
//! the whole fleet thus commit one at a time, in hub_seq order, so a reader that sees some
//! hub_seq sees every smaller one that will ever exist: a tail by `hub_seq > last` never
//! skips a row that commits late. (A sequence alone would not do: a number taken in a
//! transaction that commits after a later number's would be skipped.) The price is one
//! commit at a time fleet-wide; each replica's group commit makes those commits large.
//! Taking the lock before any write also keeps two replicas from deadlocking on rows.

use postgres::{Client, Statement};
use tapper_proto::v1::{Counters, Event, Hello, Loss, LossNotice, Warning};
use tracing::{info, warn};

use super::{CHANNEL, Database, insert, locks, losses, retention, schema, u2i, warnings};
use crate::store::{
    Committed, InstanceKey, Result, StoreError, Writer,
    policy::{CommitQueries, Ledger, LossRows},
};

/// A live connection and what is prepared on it.
struct Conn {
    client: Client,
    insert: Statement,
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
    /// The open transaction has queued its notification to the tails.
    notified: bool,
}

fn prepare(mut client: Client) -> Result<Conn> {
    let insert = client.prepare(insert::SQL)?;
    Ok(Conn {
        client,
        insert,
        retention_leader: false,
    })
}

/// The highest hub_seq stored.
pub(super) fn stored_last_hub_seq(client: &mut Client) -> Result<u64> {
    let row = client.query_one(
        "SELECT GREATEST(COALESCE((SELECT MAX(hub_seq) FROM events), 0),
                         COALESCE((SELECT MAX(hub_seq) FROM losses), 0),
                         COALESCE((SELECT MAX(hub_seq) FROM warnings), 0))",
        &[],
    )?;
    Ok(super::i2u(row.get(0)))
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
    pub(super) fn open(db: Database) -> Result<Self> {
        let mut client = db.open()?;
        schema::migrate(&mut client)?;
        let last_hub_seq = stored_last_hub_seq(&mut client)?;
        let conn = prepare(client)?;
        info!(replica = %db.replica, "joined the database as a hub replica");
        Ok(Self {
            steps: Steps {
                db,
                conn: Some(conn),
                reconnected: false,
                in_group: false,
                broken: false,
                notified: false,
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
            self.reconnected = true;
            let client = self.db.connect()?;
            self.conn = Some(prepare(client)?);
            info!("database connection restored");
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    /// Runs one all-or-nothing step: a savepoint inside the open group, else a transaction
    /// of its own (which takes the numbering lock first).
    fn step<T>(&mut self, f: impl FnOnce(&mut Conn, &str) -> Result<T>) -> Result<T> {
        let in_group = self.in_group;
        let replica = self.db.replica.clone();
        self.conn()?;
        if self.broken {
            return Err(StoreError::Busy(
                "the database connection was lost during this commit group".into(),
            ));
        }
        let conn = self.conn.as_mut().expect("connected above");
        if in_group {
            conn.client.batch_execute("SAVEPOINT step")?;
        } else {
            conn.client.batch_execute("BEGIN")?;
            conn.client
                .execute("SELECT pg_advisory_xact_lock($1)", &[&locks::NUMBERING])?;
        }
        let result = f(conn, &replica);
        let end = match (&result, in_group) {
            (Ok(_), true) => "RELEASE SAVEPOINT step",
            (Ok(_), false) => "COMMIT",
            (Err(_), true) => "ROLLBACK TO SAVEPOINT step",
            (Err(_), false) => "ROLLBACK",
        };
        let ended = conn.client.batch_execute(end);
        if !in_group {
            self.notified = false;
        }
        match (result, ended) {
            (Ok(v), Ok(())) => Ok(v),
            (Err(e), Ok(())) => {
                if in_group {
                    // The notification queued inside the rolled-back step is gone too.
                    self.notified = false;
                }
                Err(e)
            }
            (_, Err(e)) => {
                self.broken = in_group;
                Err(e.into())
            }
        }
    }

    /// Runs a step that may add rows; `f` gets a notifier that queues the wake-up of every
    /// replica's tail, once per transaction (delivered at commit).
    fn step_adding<T>(
        &mut self,
        f: impl FnOnce(&mut Conn, &mut dyn FnMut(&mut Client) -> Result<()>) -> Result<T>,
    ) -> Result<T> {
        let mut notified = self.notified;
        let result = self.step(|conn, _| {
            f(conn, &mut |client| {
                if !notified {
                    client.execute("SELECT pg_notify($1, '')", &[&CHANNEL])?;
                    notified = true;
                }
                Ok(())
            })
        });
        self.notified |= notified && self.in_group && result.is_ok();
        result
    }
}

impl CommitQueries for Steps {
    fn reconnected(&mut self) -> Result<bool> {
        self.conn()?;
        Ok(std::mem::take(&mut self.reconnected))
    }

    fn stored_acked(&mut self, key: &InstanceKey) -> Result<u64> {
        let acked: Option<i64> = self
            .conn()?
            .client
            .query_opt(
                "SELECT acked_seq FROM tappers WHERE node = $1 AND instance_id = $2",
                &[&key.node, &key.instance_id],
            )?
            .map(|r| r.get(0));
        Ok(super::i2u(acked.unwrap_or(0)))
    }

    fn store_events(
        &mut self,
        key: &InstanceKey,
        events: &mut [Event],
        acked: u64,
        now_ns: i64,
    ) -> Result<Vec<(u64, u64)>> {
        let events = &*events;
        self.step_adding(|conn, notify| {
            let stored = if events.is_empty() {
                Vec::new()
            } else {
                insert::events(&mut conn.client, &conn.insert, key, events, now_ns)?
            };
            if !stored.is_empty() {
                notify(&mut conn.client)?;
            }
            conn.client.execute(
                "UPDATE tappers SET events_received = events_received + $3,
                                    acked_seq = GREATEST(acked_seq, $4), last_seen_ns = $5
                 WHERE node = $1 AND instance_id = $2",
                &[
                    &key.node,
                    &key.instance_id,
                    &(stored.len() as i64),
                    &u2i(acked),
                    &now_ns,
                ],
            )?;
            Ok(stored)
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
        self.step_adding(|conn, notify| {
            let hub_seq = store(&mut losses::Rows {
                client: &mut conn.client,
            })?;
            if hub_seq.is_some() {
                notify(&mut conn.client)?;
            }
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
        self.step_adding(|conn, notify| {
            let hub_seq = match warning {
                Some(w) => warnings::insert(&mut conn.client, key, w, now_ns)?,
                None => None,
            };
            if hub_seq.is_some() {
                notify(&mut conn.client)?;
            }
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
        let conn = steps.conn()?;
        conn.client.batch_execute("BEGIN")?;
        steps.in_group = true;
        steps.broken = false;
        steps.notified = false;
        let conn = steps.conn()?;
        conn.client
            .execute("SELECT pg_advisory_xact_lock($1)", &[&locks::NUMBERING])?;
        Ok(())
    }

    fn end_group(&mut self) -> Result<()> {
        let steps = &mut self.steps;
        if !steps.in_group {
            return Ok(());
        }
        steps.in_group = false;
        steps.notified = false;
        let broken = std::mem::take(&mut steps.broken);
        let Some(conn) = steps.conn.as_mut() else {
            self.ledger.forget_all();
            return Err(StoreError::Busy("database connection lost".into()));
        };
        let committed = if broken {
            let _ = conn.client.batch_execute("ROLLBACK");
            Err(StoreError::Busy(
                "a step of the group failed to end; the group was rolled back".into(),
            ))
        } else {
            conn.client
                .batch_execute("COMMIT")
                .map_err(StoreError::from)
        };
        if committed.is_err() {
            if !conn.client.is_closed() {
                let _ = conn.client.batch_execute("ROLLBACK");
            }
            self.ledger.forget_all();
        }
        committed
    }

    fn hello(&mut self, hello: &Hello, now_ns: i64) -> Result<u64> {
        let key = InstanceKey {
            node: hello.node.clone(),
            instance_id: hello.instance_id.clone(),
        };
        // The stream may come from another replica: what this one cached is stale.
        self.ledger.forget(&key);
        let h = hello.clone();
        self.steps.step(|conn, _| {
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
        self.steps.step(|conn, replica| {
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
        self.steps.step(|conn, _| {
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
        self.steps.step(|conn, replica| {
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
