//! Cases of the reader: stats windows and groupings by the hub's receive time, replay
//! `since`, stacks stored once and served whole, container and pod identity served back.

use tapper_proto::v1::{Container, Event, Pod, Quota};

use super::{
    Db,
    records::{ev, hello, key, loss},
    retention::{frame, replayed_stacks, with_stack},
};
use crate::store::{GroupCol, Reader, StatsQuery, Stored};

const M: i64 = 60_000_000_000;

/// A stats query by node and errno over `[since_ns, until_ns)`.
pub fn window(since_ns: i64, until_ns: i64) -> StatsQuery {
    StatsQuery {
        group: vec![GroupCol::Node, GroupCol::Errno],
        since_ns,
        until_ns,
        nodes: vec![],
    }
}

pub fn groups_and_totals(db: &Db) {
    let (mut w, r) = db.open();
    for n in ["a", "b"] {
        w.hello(&hello(n), 1).unwrap();
    }
    w.commit_events(&key("a"), vec![ev(1, 24), ev(2, 24), ev(3, 22)], 5)
        .unwrap();
    w.commit_events(&key("b"), vec![ev(1, 24)], 5).unwrap();
    w.commit_loss(&key("b"), loss(2, 4), 5).unwrap();
    let s = r.stats(&window(i64::MIN, i64::MAX)).unwrap();
    assert_eq!((s.total_events, s.total_lost), (4, 3));
    assert_eq!(s.per_node["a"], 3);
    assert_eq!(
        (s.rows[0].node.as_str(), s.rows[0].errno, s.rows[0].count),
        ("a", 24, 2)
    );
    assert_eq!(s.rows.len(), 3);
    let mut only_b = window(i64::MIN, i64::MAX);
    only_b.nodes = vec!["b".into()];
    let s = r.stats(&only_b).unwrap();
    assert_eq!((s.total_events, s.total_lost, s.rows.len()), (1, 3, 1));
}

pub fn an_event_counts_the_failures_it_stands_for(db: &Db) {
    let (mut w, r) = db.open();
    w.hello(&hello("a"), 1).unwrap();
    let mut storm = ev(1, 24);
    storm.suppressed = 99;
    w.commit_events(&key("a"), vec![storm, ev(2, 24), ev(3, 22)], 5 * M + 1)
        .unwrap();
    // A whole-minute window (SQLite reads its rollups) and a partial one (a scan).
    for (since, until) in [(0, 10 * M), (5 * M, 5 * M + 2)] {
        let s = r.stats(&window(since, until)).unwrap();
        assert_eq!(s.total_events, 102, "{since}..{until}");
        assert_eq!(s.per_node["a"], 102);
        assert_eq!((s.rows[0].errno, s.rows[0].count), (24, 101));
        assert_eq!((s.rows[1].errno, s.rows[1].count), (22, 1));
    }
    let mut by_comm = window(0, 10 * M);
    by_comm.group = vec![GroupCol::Comm];
    assert_eq!(r.stats(&by_comm).unwrap().rows[0].count, 102);
}

pub fn the_window_is_the_receive_time_for_events_and_losses(db: &Db) {
    let (mut w, r) = db.open();
    w.hello(&hello("a"), 1).unwrap();
    // The events' own ts is about 1000 ns; they arrive at 100 and 200.
    w.commit_events(&key("a"), vec![ev(1, 24)], 100).unwrap();
    w.commit_loss(&key("a"), loss(2, 2), 100).unwrap();
    w.commit_events(&key("a"), vec![ev(3, 24), ev(4, 24)], 200)
        .unwrap();
    w.commit_loss(&key("a"), loss(5, 7), 200).unwrap();
    let s = r.stats(&window(150, 250)).unwrap();
    assert_eq!((s.total_events, s.total_lost), (2, 3));
    let s = r.stats(&window(100, 200)).unwrap();
    assert_eq!((s.total_events, s.total_lost), (1, 1));
}

pub fn since_is_the_receive_time(db: &Db) {
    let (mut w, r) = db.open();
    w.hello(&hello("a"), 1).unwrap();
    // Event times (ts) are far from the receive times on purpose.
    w.commit_events(&key("a"), vec![ev(1, 24)], 100).unwrap();
    w.commit_loss(&key("a"), loss(2, 3), 200).unwrap();
    w.commit_events(&key("a"), vec![ev(4, 24)], 300).unwrap();
    assert_eq!(r.first_received_since(150).unwrap(), Some(2));
    assert_eq!(r.first_received_since(301).unwrap(), None);
    let page = r.replay_page(0, u64::MAX, Some(150), 10).unwrap();
    assert!(
        matches!(&page[..], [Stored::Loss(l), Stored::Event(e)] if l.hub_seq == 2 && e.seq == 4)
    );
}

pub fn identical_stacks_are_stored_once_and_read_back_whole(db: &Db) {
    let (mut w, r) = db.open();
    w.hello(&hello("a"), 1).unwrap();
    let one = [frame(0x1010, Some("inner")), frame(0x1020, None)];
    let two = [frame(0x1030, Some("other"))];
    let batch = vec![
        with_stack(1, &one),
        with_stack(2, &one),
        with_stack(3, &two),
        ev(4, 24),
        with_stack(5, &one),
    ];
    let committed = w.commit_events(&key("a"), batch, 5).unwrap();
    // What the live stream gets carries the frames too.
    assert_eq!(committed.new[0].user_stack, one);
    assert_eq!(db.count_rows("stacks"), 2);
    assert_eq!(
        replayed_stacks(&*r),
        [
            one.to_vec(),
            one.to_vec(),
            two.to_vec(),
            vec![],
            one.to_vec()
        ]
    );
    // A re-sent event changes nothing.
    w.commit_events(&key("a"), vec![with_stack(2, &one)], 6)
        .unwrap();
    assert_eq!(db.count_rows("stacks"), 2);
}

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

/// The events of [`identity_is_served_back_exactly_and_grouped`], committed at one minute.
pub fn commit_pods(w: &mut dyn crate::store::Writer) -> Vec<Event> {
    w.hello(&hello("a"), 1).unwrap();
    let sent = vec![
        in_pod(1, "shop", "web-1", "nginx", "aaaa1111"),
        in_pod(2, "shop", "web-1", "nginx", "aaaa1111"),
        in_pod(3, "shop", "web-2", "nginx", "bbbb2222"),
        in_pod(4, "ops", "web-1", "agent", "cccc3333"),
        ev(5, 24),
    ];
    w.commit_events(&key("a"), sent.clone(), M).unwrap();
    sent
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

pub fn identity_is_served_back_exactly_and_grouped(db: &Db) {
    let (mut w, r) = db.open();
    let sent = commit_pods(&mut *w);
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
        group(&*r, vec![GroupCol::Namespace]),
        [(s("shop"), None, 3), (None, None, 1), (s("ops"), None, 1)]
    );
    // Pods are told apart by namespace: web-1 of shop and web-1 of ops are two.
    assert_eq!(
        group(&*r, vec![GroupCol::Pod]),
        [
            (s("shop"), s("web-1"), 2),
            (None, None, 1),
            (s("ops"), s("web-1"), 1),
            (s("shop"), s("web-2"), 1)
        ]
    );
    // Containers by id, with their names: the two nginx containers are two groups.
    assert_eq!(
        group(&*r, vec![GroupCol::Container]),
        [
            (s("aaaa1111"), s("nginx"), 2),
            (None, None, 1),
            (s("bbbb2222"), s("nginx"), 1),
            (s("cccc3333"), s("agent"), 1)
        ]
    );
}
