//! The schema and its migrations, versioned with `PRAGMA user_version`. A database with
//! the tables but version 0 predates versioning and is version 1.

use rusqlite::Connection;
use tracing::info;

use crate::store::{Result, StoreError};

/// Version 1: the tables as the first hub created them.
const V1: &str = "
CREATE TABLE IF NOT EXISTS events (
    hub_seq INTEGER PRIMARY KEY,
    node TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts_ns INTEGER NOT NULL,
    received_ns INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    errno INTEGER NOT NULL,
    errno_name TEXT NOT NULL,
    family INTEGER,
    family_name TEXT NOT NULL,
    comm TEXT NOT NULL,
    cgroup_id INTEGER NOT NULL,
    body BLOB NOT NULL,
    UNIQUE (node, instance_id, seq)
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts_ns);
CREATE TABLE IF NOT EXISTS losses (
    hub_seq INTEGER PRIMARY KEY,
    node TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    count INTEGER NOT NULL,
    reason TEXT NOT NULL,
    received_ns INTEGER NOT NULL,
    UNIQUE (node, instance_id, first_seq)
);
CREATE TABLE IF NOT EXISTS tappers (
    node TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    kernel_release TEXT NOT NULL,
    probe_mode TEXT NOT NULL,
    agent_version TEXT NOT NULL,
    first_seen_ns INTEGER NOT NULL,
    last_seen_ns INTEGER NOT NULL,
    events_received INTEGER NOT NULL DEFAULT 0,
    losses_reported INTEGER NOT NULL DEFAULT 0,
    loss_records INTEGER NOT NULL DEFAULT 0,
    acked_seq INTEGER NOT NULL DEFAULT 0,
    counters BLOB,
    PRIMARY KEY (node, instance_id)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

/// Version 2: one clock (the hub's receive time) for retention, stats and replay, indexed;
/// nothing reads the event-time index any more.
const V2: &str = "
CREATE INDEX events_received ON events (received_ns);
CREATE INDEX losses_received ON losses (received_ns);
DROP INDEX IF EXISTS events_ts;
";

/// Version 3: per-minute rollups of the events by (node, errno, errno_name), built from
/// the stored events, so the common GetStats reads minutes instead of events; and loss
/// totals read from the receive-time index alone.
const V3: &str = "
CREATE TABLE rollups (
    minute INTEGER NOT NULL,
    node TEXT NOT NULL,
    errno INTEGER NOT NULL,
    errno_name TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (minute, node, errno, errno_name)
) WITHOUT ROWID;
INSERT INTO rollups (minute, node, errno, errno_name, count)
    SELECT CASE WHEN received_ns >= 0 THEN received_ns / 60000000000
                ELSE (received_ns + 1) / 60000000000 - 1 END,
           node, errno, errno_name, COUNT(*)
    FROM events GROUP BY 1, 2, 3, 4;
DROP INDEX losses_received;
CREATE INDEX losses_received ON losses (received_ns, node, count);
";

/// Version 4: who failed and inside which quota: the event's source, cgroup path, container,
/// pod and quota as columns (GetStats groups by them), NULL where the event has none. Rows
/// stored before stay NULL: their bodies predate these fields.
const V4: &str = "
ALTER TABLE events ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN cgroup_path TEXT;
ALTER TABLE events ADD COLUMN container_id TEXT;
ALTER TABLE events ADD COLUMN container_runtime TEXT;
ALTER TABLE events ADD COLUMN container_name TEXT;
ALTER TABLE events ADD COLUMN container_image TEXT;
ALTER TABLE events ADD COLUMN pod_uid TEXT;
ALTER TABLE events ADD COLUMN pod_namespace TEXT;
ALTER TABLE events ADD COLUMN pod_name TEXT;
ALTER TABLE events ADD COLUMN pod_labels TEXT;
ALTER TABLE events ADD COLUMN quota_memory_max INTEGER;
ALTER TABLE events ADD COLUMN quota_memory_current INTEGER;
ALTER TABLE events ADD COLUMN quota_pids_max INTEGER;
ALTER TABLE events ADD COLUMN quota_pids_current INTEGER;
ALTER TABLE events ADD COLUMN quota_file_nr INTEGER;
ALTER TABLE events ADD COLUMN quota_file_max INTEGER;
";

/// Version 5: an event may stand for failures the kernel's rate limit suppressed
/// (`suppressed`, counted by stats and rollups); user stacks are stored once per distinct
/// stack (`stacks`, keyed by a digest of the encoded frames) and referenced by events
/// (`stack_id`, the body then carries no frames); warnings (fd exhaustion ahead) are stored
/// in the same hub_seq space and instance seq space as events and loss records.
const V5: &str = "
ALTER TABLE events ADD COLUMN suppressed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN stack_id INTEGER;
CREATE TABLE stacks (
    id INTEGER PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,
    frames BLOB NOT NULL
);
CREATE TABLE warnings (
    hub_seq INTEGER PRIMARY KEY,
    node TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    ts_ns INTEGER NOT NULL,
    received_ns INTEGER NOT NULL,
    pid INTEGER,
    comm TEXT NOT NULL,
    body BLOB NOT NULL,
    UNIQUE (node, instance_id, seq)
);
CREATE INDEX warnings_received ON warnings (received_ns);
";

/// `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5];

/// The version this code writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`VERSION`], one transaction per step, keeping its data.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let mut version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version == 0 {
        let has_events: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events')",
            [],
            |r| r.get(0),
        )?;
        if has_events {
            version = 1;
        }
    }
    if version > VERSION {
        return Err(StoreError::NewerSchema {
            found: version,
            known: VERSION,
        });
    }
    let from = version;
    for (step, sql) in (version..).zip(&MIGRATIONS[version as usize..]) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", step + 1)?;
        tx.commit()?;
    }
    if from > 0 && from < VERSION {
        info!(from, to = VERSION, "database schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use rusqlite::{Connection, params};

    use super::{V1, V2, V3, VERSION};
    use crate::store::{
        QueryBudget, Reader, Store, StoreError, Stored, Writer,
        sqlite::testkit::{TempDb, ev, hello, key},
    };

    /// A database as hubs before schema versioning left it (`V1` is frozen: it is exactly
    /// the SQL they ran): two events, a loss record, a tapper, and a hub_seq mark above
    /// them (retention had deleted newer records).
    fn v1_database(path: &str) {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(V1).unwrap();
        for (hub_seq, seq) in [(1, 1), (2, 2)] {
            let mut e = ev(seq, 24);
            e.node = "a".into();
            e.instance_id = "i1".into();
            conn.execute(
                "INSERT INTO events (hub_seq, node, instance_id, seq, ts_ns, received_ns, pid,
                     errno, errno_name, family, family_name, comm, cgroup_id, body)
                 VALUES (?1, 'a', 'i1', ?2, 1000, 50, 7, 24, 'E24', NULL, '', 'x', 0, ?3)",
                params![hub_seq, seq as i64, e.encode_to_vec()],
            )
            .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO losses VALUES (3, 'a', 'i1', 3, 4, 2, 'r', 60);
             INSERT INTO tappers (node, instance_id, kernel_release, probe_mode, agent_version,
                                  first_seen_ns, last_seen_ns, events_received,
                                  losses_reported, loss_records, acked_seq)
                 VALUES ('a', 'i1', '6.1', 'tracepoint', '0.1.0', 10, 60, 2, 2, 1, 4);
             INSERT INTO meta VALUES ('last_hub_seq', 7);",
        )
        .unwrap();
    }

    fn user_version(path: &str) -> i64 {
        let conn = Connection::open(path).unwrap();
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_v1_database_is_migrated_with_its_data() {
        let db = TempDb::new("v1");
        v1_database(&db.path());
        assert_eq!(user_version(&db.path()), 0);

        let mut st = Store::open(&db.path(), QueryBudget::default()).unwrap();
        assert_eq!(user_version(&db.path()), VERSION);
        let r = st.reader.clone();
        let t = &r.tappers(None, &[], 10).unwrap()[0];
        assert_eq!(
            (t.node.as_str(), t.events_received, t.acked_seq),
            ("a", 2, 4)
        );
        let page = r.replay_page(0, u64::MAX, None, 10).unwrap();
        assert!(matches!(
            &page[..],
            [Stored::Event(e1), Stored::Event(e2), Stored::Loss(l)]
                if e1.seq == 1 && e2.seq == 2 && l.hub_seq == 3
        ));
        assert_eq!(r.first_received_since(55).unwrap(), Some(3));
        // Dedup and numbering carry on from the old data.
        assert_eq!(st.last_hub_seq(), 7);
        assert_eq!(st.writer.hello(&hello("a"), 70).unwrap(), 4);
        let c = st
            .writer
            .commit_events(&key("a"), vec![ev(2, 24), ev(5, 24)], 80)
            .unwrap();
        assert_eq!((c.new.len(), c.new[0].hub_seq, c.acked), (1, 8, 5));

        let conn = Connection::open(db.path()).unwrap();
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            indexes,
            ["events_received", "losses_received", "warnings_received"]
        );
    }

    #[test]
    fn a_v2_database_gets_rollups_of_its_events() {
        let db = TempDb::new("v2");
        {
            let conn = Connection::open(db.path()).unwrap();
            conn.execute_batch(V1).unwrap();
            conn.execute_batch(V2).unwrap();
            conn.pragma_update(None, "user_version", 2).unwrap();
            let mut insert = conn
                .prepare(
                    "INSERT INTO events (node, instance_id, seq, ts_ns, received_ns, pid, errno,
                         errno_name, family, family_name, comm, cgroup_id, body)
                     VALUES (?1, 'i1', ?2, 0, ?3, 1, ?4, ?5, NULL, '', ?6, 0, x'')",
                )
                .unwrap();
            // Several nodes, errnos (one under two names), minutes and comms, with receive
            // times on minute boundaries, inside minutes, and before 1970.
            for seq in 0..400i64 {
                let node = ["a", "b", "c"][(seq % 3) as usize];
                let errno = [24, 22, 97, 13][(seq % 4) as usize];
                let name = if seq % 11 == 0 { "ALIAS" } else { "E" };
                let received_ns = (seq * 7_919 % 13 - 2) * 60_000_000_000 + seq % 5 * 3;
                insert
                    .execute(params![
                        node,
                        seq,
                        received_ns,
                        errno,
                        format!("{name}{errno}"),
                        format!("c{}", seq % 3)
                    ])
                    .unwrap();
            }
        }
        let (mut w, r) = crate::store::sqlite::testkit::open(&db.path()).unwrap();
        assert_eq!(user_version(&db.path()), VERSION);
        let check = || {
            let conn = Connection::open(db.path()).unwrap();
            crate::store::sqlite::stats::assert_rollups_match_scans(&conn);
        };
        check();
        // The writer keeps them up to date from there on.
        w.hello(&hello("a"), 1).unwrap();
        w.commit_events(
            &key("a"),
            vec![ev(1_000, 24), ev(1_001, 22)],
            90_000_000_000,
        )
        .unwrap();
        check();
        assert_eq!(
            r.stats(&crate::store::StatsQuery {
                group: vec![],
                since_ns: 0,
                until_ns: i64::MAX,
                nodes: vec!["a".into()],
            })
            .unwrap()
            .per_node["a"],
            // Node "a" has every third of the 400 events; those received from 1970 on count.
            (0..400i64)
                .filter(|s| s % 3 == 0 && s * 7_919 % 13 >= 2)
                .count() as u64
                + 2
        );
    }

    #[test]
    fn a_v3_database_gains_identity_columns_and_keeps_its_events() {
        let db = TempDb::new("v3");
        v1_database(&db.path());
        {
            let conn = Connection::open(db.path()).unwrap();
            for sql in [V2, V3] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 3).unwrap();
        }
        let (mut w, r) = crate::store::sqlite::testkit::open(&db.path()).unwrap();
        assert_eq!(user_version(&db.path()), VERSION);
        // The old events replay as they were, with no identity.
        let page = r.replay_page(0, u64::MAX, None, 10).unwrap();
        assert!(matches!(
            &page[..],
            [Stored::Event(e1), Stored::Event(e2), Stored::Loss(_)]
                if e1.seq == 1 && e2.seq == 2 && e1.pod.is_none() && e1.container.is_none()
        ));
        let old: (String, Option<String>) = Connection::open(db.path())
            .unwrap()
            .query_row(
                "SELECT source, pod_namespace FROM events WHERE seq = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(old, (String::new(), None));
        // New events store and group by their identity next to the old ones.
        w.hello(&hello("a"), 70).unwrap();
        let new = crate::store::conformance::reads::in_pod(5, "shop", "web-1", "nginx", "ab12cd34");
        w.commit_events(&key("a"), vec![new], 80).unwrap();
        let rows = r
            .stats(&crate::store::StatsQuery {
                group: vec![crate::store::GroupCol::Pod],
                since_ns: 0,
                until_ns: i64::MAX,
                nodes: vec![],
            })
            .unwrap()
            .rows;
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.namespace.as_deref(), r.pod.as_deref(), r.count))
            .collect();
        assert_eq!(got, [(None, None, 2), (Some("shop"), Some("web-1"), 1)]);
    }

    #[test]
    fn reopening_is_a_no_op_and_newer_schemas_are_refused() {
        let db = TempDb::new("versions");
        drop(Store::open(&db.path(), QueryBudget::default()).unwrap());
        drop(Store::open(&db.path(), QueryBudget::default()).unwrap());
        assert_eq!(user_version(&db.path()), VERSION);
        Connection::open(db.path())
            .unwrap()
            .pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        assert!(matches!(
            Store::open(&db.path(), QueryBudget::default()),
            Err(StoreError::NewerSchema { found, known }) if found == VERSION + 1 && known == VERSION
        ));
    }
}
