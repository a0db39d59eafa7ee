//! The PostgreSQL schema and its versions, kept in `schema_version`. The version numbers are
//! SQLite's (`sqlite::schema`): PostgreSQL support starts at version 5, whose shape an empty
//! database gets in one step; later versions add a step each, as SQLite's do. The replica
//! columns of `tappers` (who holds a tapper's stream) exist only here; tappers sort by
//! bytes (`COLLATE "C"`), as in SQLite, whatever the database's locale.

use postgres::Client;
use tracing::info;

use super::locks;
use crate::store::{Result, StoreError};

/// Version 5, as SQLite's migrations 1 to 5 leave it, with PostgreSQL types, the global
/// hub_seq sequence and the replica columns.
const V5: &str = "
CREATE SEQUENCE hub_seq AS BIGINT;
CREATE TABLE events (
    hub_seq BIGINT PRIMARY KEY,
    node TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    ts_ns BIGINT NOT NULL,
    received_ns BIGINT NOT NULL,
    pid BIGINT NOT NULL,
    errno INTEGER NOT NULL,
    errno_name TEXT NOT NULL,
    family INTEGER,
    family_name TEXT NOT NULL,
    comm TEXT NOT NULL,
    cgroup_id BIGINT NOT NULL,
    body BYTEA NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    cgroup_path TEXT,
    container_id TEXT,
    container_runtime TEXT,
    container_name TEXT,
    container_image TEXT,
    pod_uid TEXT,
    pod_namespace TEXT,
    pod_name TEXT,
    pod_labels TEXT,
    quota_memory_max BIGINT,
    quota_memory_current BIGINT,
    quota_pids_max BIGINT,
    quota_pids_current BIGINT,
    quota_file_nr BIGINT,
    quota_file_max BIGINT,
    suppressed BIGINT NOT NULL DEFAULT 0,
    stack_id BIGINT,
    UNIQUE (node, instance_id, seq)
);
CREATE INDEX events_received ON events (received_ns, node, errno, errno_name);
CREATE TABLE losses (
    hub_seq BIGINT PRIMARY KEY,
    node TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    count BIGINT NOT NULL,
    reason TEXT NOT NULL,
    received_ns BIGINT NOT NULL,
    UNIQUE (node, instance_id, first_seq)
);
CREATE INDEX losses_received ON losses (received_ns, node, count);
CREATE TABLE tappers (
    node TEXT COLLATE \"C\" NOT NULL,
    instance_id TEXT COLLATE \"C\" NOT NULL,
    kernel_release TEXT NOT NULL,
    probe_mode TEXT NOT NULL,
    agent_version TEXT NOT NULL,
    first_seen_ns BIGINT NOT NULL,
    last_seen_ns BIGINT NOT NULL,
    events_received BIGINT NOT NULL DEFAULT 0,
    losses_reported BIGINT NOT NULL DEFAULT 0,
    loss_records BIGINT NOT NULL DEFAULT 0,
    acked_seq BIGINT NOT NULL DEFAULT 0,
    counters BYTEA,
    replica TEXT,
    peer TEXT,
    PRIMARY KEY (node, instance_id)
);
CREATE TABLE stacks (
    id BIGSERIAL PRIMARY KEY,
    digest BYTEA NOT NULL UNIQUE,
    frames BYTEA NOT NULL
);
CREATE TABLE warnings (
    hub_seq BIGINT PRIMARY KEY,
    node TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    ts_ns BIGINT NOT NULL,
    received_ns BIGINT NOT NULL,
    pid BIGINT,
    comm TEXT NOT NULL,
    body BYTEA NOT NULL,
    UNIQUE (node, instance_id, seq)
);
CREATE INDEX warnings_received ON warnings (received_ns);
";

/// `(version, SQL)`: each step takes the schema to its version from the one before.
const MIGRATIONS: &[(i64, &str)] = &[(5, V5)];

/// The version this code writes.
pub const VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Brings the database to [`VERSION`], one transaction per step, while holding the
/// migration lock (replicas starting together migrate once).
pub fn migrate(client: &mut Client) -> Result<()> {
    client.execute("SELECT pg_advisory_lock($1)", &[&locks::MIGRATION])?;
    let result = migrate_locked(client);
    client.execute("SELECT pg_advisory_unlock($1)", &[&locks::MIGRATION])?;
    result
}

fn migrate_locked(client: &mut Client) -> Result<()> {
    client.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
    let found: Option<i64> = client
        .query_opt("SELECT version FROM schema_version", &[])?
        .map(|r| r.get(0));
    let from = found.unwrap_or(0);
    if from > VERSION {
        return Err(StoreError::NewerSchema {
            found: from,
            known: VERSION,
        });
    }
    for &(version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > from) {
        let mut tx = client.transaction()?;
        tx.batch_execute(sql)?;
        tx.execute("DELETE FROM schema_version", &[])?;
        tx.execute("INSERT INTO schema_version VALUES ($1)", &[&version])?;
        tx.commit()?;
    }
    if from < VERSION {
        info!(from, to = VERSION, "PostgreSQL schema created or migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_follow_sqlite() {
        assert_eq!(super::VERSION, crate::store::sqlite::schema::VERSION);
    }
}
