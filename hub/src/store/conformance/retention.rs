//! Cases of retention: the row cap and the age cut count events, loss records and warnings
//! by the hub's receive time; idle instances expire unless their stream is live; stacks go
//! with the last event that references them.

use tapper_proto::v1::{Event, StackFrame};

use super::{
    Db,
    records::{ev, hello, key, loss},
};
use crate::store::{Reader, Stored};

fn stored(r: &dyn Reader) -> Vec<u64> {
    let page = r.replay_page(0, u64::MAX, None, 100).unwrap();
    page.iter().map(Stored::hub_seq).collect()
}

pub fn the_row_cap_counts_events_and_losses(db: &Db) {
    let (mut w, r) = db.open();
    w.hello(&hello("a"), 1).unwrap();
    w.commit_events(&key("a"), vec![ev(1, 24), ev(2, 24)], 5)
        .unwrap();
    w.commit_loss(&key("a"), loss(3, 4), 5).unwrap();
    w.commit_events(&key("a"), vec![ev(5, 24)], 5).unwrap();
    assert_eq!(stored(&*r), vec![1, 2, 3, 4]);
    assert_eq!(w.apply_retention(None, Some(2), 10).unwrap(), 2);
    assert_eq!(stored(&*r), vec![3, 4]);
    assert_eq!(w.apply_retention(None, Some(2), 10).unwrap(), 0);
    assert!(r.known_node("a").unwrap(), "tappers are kept");
}

pub fn idle_instances_expire_unless_live(db: &Db) {
    let (mut w, r) = db.open();
    for n in ["old", "live", "new"] {
        w.hello(&hello(n), 100).unwrap();
        w.stream_started(&key(n), "peer", 100).unwrap();
    }
    w.commit_events(&key("old"), vec![ev(1, 24)], 100).unwrap();
    w.stream_ended(&key("old"), 100).unwrap();
    w.stream_ended(&key("new"), 900).unwrap();
    // "live" still has its stream (last seen at 100, quiet since).
    assert_eq!(w.expire_instances(500, 1000).unwrap(), 1);
    let left: Vec<String> = r
        .tappers(None, &[], 10)
        .unwrap()
        .into_iter()
        .map(|t| t.node)
        .collect();
    assert_eq!(left, ["live", "new"]);
    assert!(!r.known_node("old").unwrap());
    assert_eq!(stored(&*r), vec![1], "events stay under retention");
    assert_eq!(w.expire_instances(500, 1000).unwrap(), 0);
}

pub fn age_is_the_receive_time_for_events_and_losses(db: &Db) {
    let (mut w, r) = db.open();
    w.hello(&hello("a"), 1).unwrap();
    // Event times (ts about 1000 ns) are newer than the receive times on purpose.
    w.commit_events(&key("a"), vec![ev(1, 24)], 100).unwrap();
    w.commit_loss(&key("a"), loss(2, 2), 100).unwrap();
    w.commit_events(&key("a"), vec![ev(3, 24)], 200).unwrap();
    w.commit_loss(&key("a"), loss(4, 4), 200).unwrap();
    assert_eq!(w.apply_retention(Some(50), None, 200).unwrap(), 2);
    assert_eq!(stored(&*r), vec![3, 4]);
}

pub fn frame(address: u64, symbol: Option<&str>) -> StackFrame {
    StackFrame {
        address,
        module: Some("/usr/bin/w".into()),
        offset: Some(address - 0x1000),
        symbol: symbol.map(Into::into),
        build_id: Some(format!("{address:040x}")),
    }
}

pub fn with_stack(seq: u64, frames: &[StackFrame]) -> Event {
    Event {
        user_stack: frames.to_vec(),
        ..ev(seq, 24)
    }
}

pub fn replayed_stacks(r: &dyn Reader) -> Vec<Vec<StackFrame>> {
    let page = r.replay_page(0, u64::MAX, None, 100).unwrap();
    page.into_iter()
        .filter_map(|s| match s {
            Stored::Event(e) => Some(e.user_stack),
            Stored::Loss(_) | Stored::Warning(_) => None,
        })
        .collect()
}

pub fn retention_drops_the_stacks_no_event_references(db: &Db) {
    let (mut w, r) = db.open();
    w.hello(&hello("a"), 1).unwrap();
    let old = [frame(0x1010, Some("old"))];
    let kept = [frame(0x1020, Some("kept"))];
    w.commit_events(
        &key("a"),
        vec![with_stack(1, &old), with_stack(2, &kept)],
        10,
    )
    .unwrap();
    w.commit_events(&key("a"), vec![with_stack(3, &kept)], 20)
        .unwrap();
    assert_eq!(db.count_rows("stacks"), 2);
    assert_eq!(w.apply_retention(Some(5), None, 20).unwrap(), 2);
    assert_eq!(db.count_rows("stacks"), 1);
    assert_eq!(replayed_stacks(&*r), [kept.to_vec()]);
}
