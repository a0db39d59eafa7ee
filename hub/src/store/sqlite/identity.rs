//! The identity and quota columns of a stored event (schema version 4): the values the
//! writer inserts for them, borrowed from the event, NULL where it has no such field.

use std::collections::BTreeMap;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use tapper_proto::v1::Event;

use super::u2i;

/// Number of identity and quota columns, in the order of [`values`]: source, cgroup_path,
/// container_id, container_runtime, container_name, container_image, pod_uid,
/// pod_namespace, pod_name, pod_labels, quota_memory_max, quota_memory_current,
/// quota_pids_max, quota_pids_current, quota_file_nr, quota_file_max.
pub const COLUMNS: usize = 16;

fn text(v: Option<&String>) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(v.map_or(ValueRef::Null, |s| ValueRef::Text(s.as_bytes())))
}

fn int<'a>(v: Option<u64>) -> ToSqlOutput<'a> {
    ToSqlOutput::Owned(v.map_or(Value::Null, |n| Value::Integer(u2i(n))))
}

/// The column values of `e`. Pod labels are a JSON object with sorted keys, NULL when
/// there are none.
pub fn values(e: &Event) -> [ToSqlOutput<'_>; COLUMNS] {
    let c = e.container.as_ref();
    let p = e.pod.as_ref();
    let q = e.quota.as_ref();
    let labels = p.filter(|p| !p.labels.is_empty()).map(|p| {
        let sorted: BTreeMap<_, _> = p.labels.iter().collect();
        ToSqlOutput::Owned(Value::Text(
            serde_json::to_string(&sorted).unwrap_or_default(),
        ))
    });
    [
        text(Some(&e.source)),
        text(e.cgroup_path.as_ref()),
        text(c.and_then(|c| c.id.as_ref())),
        text(c.and_then(|c| c.runtime.as_ref())),
        text(c.and_then(|c| c.name.as_ref())),
        text(c.and_then(|c| c.image.as_ref())),
        text(p.and_then(|p| p.uid.as_ref())),
        text(p.and_then(|p| p.namespace.as_ref())),
        text(p.and_then(|p| p.name.as_ref())),
        labels.unwrap_or(ToSqlOutput::Owned(Value::Null)),
        int(q.and_then(|q| q.memory_max)),
        int(q.and_then(|q| q.memory_current)),
        int(q.and_then(|q| q.pids_max)),
        int(q.and_then(|q| q.pids_current)),
        int(q.and_then(|q| q.file_nr)),
        int(q.and_then(|q| q.file_max)),
    ]
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::super::testkit::{TempDb, open};
    use crate::store::conformance::reads::commit_pods;

    #[test]
    fn identity_is_stored_in_columns() {
        let db = TempDb::new("identity");
        let (mut w, _r) = open(&db.path()).unwrap();
        commit_pods(&mut w);
        let s = |v: &str| Some(v.to_owned());
        // The columns hold the values (labels as a sorted JSON object), NULL when absent.
        let conn = Connection::open(db.path()).unwrap();
        let row = |seq: i64| {
            conn.query_row(
                "SELECT source, cgroup_path, container_runtime, container_image, pod_uid,
                        pod_labels, quota_memory_max, quota_memory_current, quota_pids_max,
                        quota_pids_current, quota_file_nr
                 FROM events WHERE seq = ?1",
                [seq],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        [6, 7, 8, 9, 10].map(|i| r.get::<_, Option<i64>>(i).unwrap()),
                    ))
                },
            )
            .unwrap()
        };
        assert_eq!(
            row(3),
            (
                "syscall".into(),
                s("/kubepods/besteffort/pod-web-2/bbbb2222"),
                s("containerd"),
                s("registry.local/nginx:1"),
                s("uid-web-2"),
                s(r#"{"app":"nginx","tier":"b"}"#),
                [Some(1 << 30), Some(12_345), None, Some(7), None]
            )
        );
        assert_eq!(
            row(5),
            (String::new(), None, None, None, None, None, [None; 5])
        );
    }
}
