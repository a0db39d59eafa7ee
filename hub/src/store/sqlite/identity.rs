//! The identity and quota columns of a stored event (schema version 4): the values the
//! writer inserts for them, NULL where the event has no such field.

use std::collections::BTreeMap;

use rusqlite::types::Value;
use tapper_proto::v1::Event;

use super::u2i;

/// Number of identity and quota columns, in the order of [`values`]: source, cgroup_path,
/// container_id, container_runtime, container_name, container_image, pod_uid,
/// pod_namespace, pod_name, pod_labels, quota_memory_max, quota_memory_current,
/// quota_pids_max, quota_pids_current, quota_file_nr, quota_file_max.
pub const COLUMNS: usize = 16;

fn text(v: Option<&String>) -> Value {
    v.map_or(Value::Null, |s| Value::Text(s.clone()))
}

fn int(v: Option<u64>) -> Value {
    v.map_or(Value::Null, |n| Value::Integer(u2i(n)))
}

/// The column values of `e`. Pod labels are a JSON object with sorted keys, NULL when
/// there are none.
pub fn values(e: &Event) -> [Value; COLUMNS] {
    let c = e.container.as_ref();
    let p = e.pod.as_ref();
    let q = e.quota.as_ref();
    let labels = p.filter(|p| !p.labels.is_empty()).map(|p| {
        let sorted: BTreeMap<_, _> = p.labels.iter().collect();
        Value::Text(serde_json::to_string(&sorted).unwrap_or_default())
    });
    [
        Value::Text(e.source.clone()),
        text(e.cgroup_path.as_ref()),
        text(c.and_then(|c| c.id.as_ref())),
        text(c.and_then(|c| c.runtime.as_ref())),
        text(c.and_then(|c| c.name.as_ref())),
        text(c.and_then(|c| c.image.as_ref())),
        text(p.and_then(|p| p.uid.as_ref())),
        text(p.and_then(|p| p.namespace.as_ref())),
        text(p.and_then(|p| p.name.as_ref())),
        labels.unwrap_or(Value::Null),
        int(q.and_then(|q| q.memory_max)),
        int(q.and_then(|q| q.memory_current)),
        int(q.and_then(|q| q.pids_max)),
        int(q.and_then(|q| q.pids_current)),
        int(q.and_then(|q| q.file_nr)),
        int(q.and_then(|q| q.file_max)),
    ]
}

#[cfg(test)]
pub(super) mod tests {
    use rusqlite::Connection;
    use tapper_proto::v1::{Container, Event, Pod, Quota};

    use super::super::testkit::{TempDb, ev, hello, key};
    use crate::store::{GroupCol, Reader, StatsQuery, Stored, Writer};

    /// An event of container `name` (id `id`) in pod `namespace/pod`, with labels and quota.
    pub fn in_pod(seq: u64, namespace: &str, pod: &str, name: &str, id: &str) -> Event {
        Event {
            source: "syscall".into(),
            cgroup_path: Some(format!("/kubepods/besteffort/pod-{pod}/{id}")),
            container: Some(Container {
                id: Some(id.into()),
                runtime: Some("containerd".into()),
                name: Some(name.into()),
                image: Some(format!("registry.local/{name}:1")),
            }),
            pod: Some(Pod {
                uid: Some(format!("uid-{pod}")),
                namespace: Some(namespace.into()),
                name: Some(pod.into()),
                labels: [
                    ("app".to_owned(), name.to_owned()),
                    ("tier".into(), "b".into()),
                ]
                .into(),
            }),
            quota: Some(Quota {
                memory_max: Some(1 << 30),
                memory_current: Some(12_345),
                pids_max: None,
                pids_current: Some(7),
                file_nr: None,
                file_max: None,
            }),
            ..ev(seq, 24)
        }
    }

    fn group(r: &dyn Reader, by: Vec<GroupCol>) -> Vec<(Option<String>, Option<String>, u64)> {
        let rows = r
            .stats(&StatsQuery {
                group: by.clone(),
                since_ns: 0,
                until_ns: i64::MAX,
                nodes: vec![],
            })
            .unwrap()
            .rows;
        rows.into_iter()
            .map(|row| match by[0] {
                GroupCol::Namespace => (row.namespace, None, row.count),
                GroupCol::Pod => (row.namespace, row.pod, row.count),
                _ => (row.container_id, row.container, row.count),
            })
            .collect()
    }

    #[test]
    fn identity_is_stored_in_columns_served_back_exactly_and_grouped() {
        let db = TempDb::new("identity");
        let (mut w, r) = super::super::testkit::open(&db.path()).unwrap();
        w.hello(&hello("a"), 1).unwrap();
        let sent = vec![
            in_pod(1, "shop", "web-1", "nginx", "aaaa1111"),
            in_pod(2, "shop", "web-1", "nginx", "aaaa1111"),
            in_pod(3, "shop", "web-2", "nginx", "bbbb2222"),
            in_pod(4, "ops", "web-1", "agent", "cccc3333"),
            ev(5, 24),
        ];
        w.commit_events(&key("a"), sent.clone(), 60_000_000_000)
            .unwrap();
        // Replay gives back every field as sent (the hub's own fields set).
        let page = r.replay_page(0, u64::MAX, None, 10).unwrap();
        for (s, got) in sent.iter().zip(&page) {
            let Stored::Event(got) = got else {
                panic!("{got:?}")
            };
            let mut want = s.clone();
            want.node = "a".into();
            want.instance_id = "i1".into();
            want.hub_seq = got.hub_seq;
            want.received = got.received;
            assert_eq!(got, &want);
        }
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            group(&r, vec![GroupCol::Namespace]),
            [(s("shop"), None, 3), (None, None, 1), (s("ops"), None, 1)]
        );
        // Pods are told apart by namespace: web-1 of shop and web-1 of ops are two.
        assert_eq!(
            group(&r, vec![GroupCol::Pod]),
            [
                (s("shop"), s("web-1"), 2),
                (None, None, 1),
                (s("ops"), s("web-1"), 1),
                (s("shop"), s("web-2"), 1)
            ]
        );
        // Containers by id, with their names: the two nginx containers are two groups.
        assert_eq!(
            group(&r, vec![GroupCol::Container]),
            [
                (s("aaaa1111"), s("nginx"), 2),
                (None, None, 1),
                (s("bbbb2222"), s("nginx"), 1),
                (s("cccc3333"), s("agent"), 1)
            ]
        );
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
