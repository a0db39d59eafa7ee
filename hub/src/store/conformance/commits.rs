//! Cases of the writer's exactly-once rules: dedup by seq, the acked seq, hub_seq order,
//! commit groups, the loss check and warnings, also across a reopen.

use tapper_proto::v1::{Loss, Warning};

use super::{
    Db,
    records::{ev, hello, key, loss},
};
use crate::{
    store::{GroupCol, Reader, StatsQuery, StoreError, Stored},
    util::clock::to_ts,
};

pub fn dedup_ack_and_hub_seq(db: &Db) {
    let (mut w, r) = db.open();
    assert_eq!(w.hello(&hello("a"), 1).unwrap(), 0);
    let c = w
        .commit_events(&key("a"), vec![ev(1, 24), ev(2, 24), ev(4, 22)], 5)
        .unwrap();
    assert_eq!(c.new.len(), 3);
    assert_eq!(c.acked, 2);
    assert_eq!(
        c.new.iter().map(|e| e.hub_seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let c = w
        .commit_events(&key("a"), vec![ev(2, 24), ev(3, 24), ev(4, 22)], 6)
        .unwrap();
    assert_eq!(c.new.len(), 1, "only seq 3 is new");
    assert_eq!(c.acked, 4);
    let l = w.commit_loss(&key("a"), loss(5, 6), 7).unwrap();
    assert_eq!((l.new.len(), l.acked), (1, 6));
    let l = w.commit_loss(&key("a"), loss(5, 6), 7).unwrap();
    assert_eq!(l.new.len(), 0, "duplicate loss");
    let t = &r.tappers(None, &[], 10).unwrap()[0];
    assert_eq!(
        (t.events_received, t.losses_reported, t.acked_seq),
        (4, 2, 6)
    );
    let page = r.replay_page(0, u64::MAX, None, 100).unwrap();
    assert_eq!(
        page.iter().map(|s| s.hub_seq()).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
}

pub fn ended_streams_are_forgotten_and_dedup_still_holds(db: &Db) {
    let (mut w, r) = db.open();
    w.hello(&hello("a"), 1).unwrap();
    // seq 3 is missing: 4 and 5 are committed above the acked seq.
    let c = w
        .commit_events(
            &key("a"),
            vec![ev(1, 24), ev(2, 24), ev(4, 24), ev(5, 24)],
            2,
        )
        .unwrap();
    assert_eq!(c.acked, 2);
    w.stream_ended(&key("a"), 3).unwrap();
    // The reconnecting tapper re-sends everything above its ack.
    assert_eq!(w.hello(&hello("a"), 4).unwrap(), 2);
    let c = w
        .commit_events(&key("a"), vec![ev(3, 24), ev(4, 24), ev(5, 24)], 5)
        .unwrap();
    assert_eq!(c.new.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3]);
    assert_eq!(c.acked, 5);
    assert_eq!(r.tappers(None, &[], 10).unwrap()[0].events_received, 5);
}

pub fn a_group_is_stored_at_its_end_and_a_refused_step_undoes_only_itself(db: &Db) {
    let (mut w, r) = db.open();
    w.hello(&hello("a"), 1).unwrap();
    w.hello(&hello("b"), 1).unwrap();
    w.begin_group().unwrap();
    let a = w
        .commit_events(&key("a"), vec![ev(1, 24), ev(2, 24)], 2)
        .unwrap();
    assert!(
        w.commit_loss(&key("a"), loss(2, 3), 2).is_err(),
        "a loss over a stored event is refused"
    );
    let b = w.commit_events(&key("b"), vec![ev(1, 22)], 2).unwrap();
    assert_eq!((a.acked, b.acked, w.last_hub_seq()), (2, 1, 3));
    assert!(
        r.replay_page(0, u64::MAX, None, 10).unwrap().is_empty(),
        "nothing is visible before the group commits"
    );
    w.end_group().unwrap();
    let stored = r.replay_page(0, u64::MAX, None, 10).unwrap();
    assert_eq!(
        stored.iter().map(|s| s.hub_seq()).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let acked: Vec<u64> = r
        .tappers(None, &[], 10)
        .unwrap()
        .iter()
        .map(|t| t.acked_seq)
        .collect();
    assert_eq!(acked, vec![2, 1]);
    // The refused loss left seq 3 free for a later event.
    let c = w.commit_events(&key("a"), vec![ev(3, 24)], 4).unwrap();
    assert_eq!((c.new.len(), c.acked), (1, 3));
}

pub fn state_survives_reopen(db: &Db) {
    {
        let (mut w, _r) = db.open();
        w.hello(&hello("a"), 1).unwrap();
        w.commit_events(&key("a"), vec![ev(1, 24), ev(2, 24)], 5)
            .unwrap();
    }
    let (mut w, _r) = db.open();
    assert_eq!(w.last_hub_seq(), 2);
    assert_eq!(w.hello(&hello("a"), 9).unwrap(), 2);
    let c = w
        .commit_events(&key("a"), vec![ev(2, 24), ev(3, 24)], 9)
        .unwrap();
    assert_eq!((c.new.len(), c.new[0].hub_seq, c.acked), (1, 3, 3));
}

fn totals(r: &dyn Reader) -> (u64, u64) {
    let s = r
        .stats(&StatsQuery {
            group: vec![GroupCol::Node],
            since_ns: i64::MIN,
            until_ns: i64::MAX,
            nodes: vec![],
        })
        .unwrap();
    (s.total_events, s.total_lost)
}

pub fn a_loss_over_stored_events_is_rejected_and_stores_nothing(db: &Db) {
    let (mut w, r) = db.open();
    w.hello(&hello("a"), 1).unwrap();
    w.commit_events(&key("a"), vec![ev(1, 24), ev(2, 24), ev(3, 24)], 2)
        .unwrap();
    let before = w.last_hub_seq();
    let e = w.commit_loss(&key("a"), loss(2, 4), 3).unwrap_err();
    assert!(
        matches!(e, StoreError::Rejected { field: "loss", .. }),
        "{e}"
    );
    assert_eq!(w.last_hub_seq(), before);
    assert_eq!(totals(&*r), (3, 0));
    // The honest record for seq 4 is taken; its resend is a duplicate.
    assert_eq!(w.commit_loss(&key("a"), loss(4, 4), 4).unwrap().acked, 4);
    assert!(
        w.commit_loss(&key("a"), loss(4, 4), 4)
            .unwrap()
            .new
            .is_empty()
    );
    // A record over another record, after a restart of the stream too.
    w.commit_loss(&key("a"), loss(6, 8), 5).unwrap();
    w.stream_ended(&key("a"), 6).unwrap();
    assert!(w.commit_loss(&key("a"), loss(7, 9), 7).is_err());
    assert!(w.commit_loss(&key("a"), loss(5, 6), 7).is_err());
    let t = &r.tappers(None, &[], 10).unwrap()[0];
    assert_eq!(
        (t.events_received, t.losses_reported, t.loss_records),
        (3, 4, 2)
    );
    assert_eq!(totals(&*r), (3, 4));
}

pub fn huge_losses_saturate_instead_of_breaking_stats(db: &Db) {
    let (mut w, r) = db.open();
    w.hello(&hello("a"), 1).unwrap();
    for seq in 1..=3 {
        let huge = Loss {
            count: i64::MAX as u64,
            ..loss(seq, seq)
        };
        w.commit_loss(&key("a"), huge, 2).unwrap();
    }
    assert_eq!(totals(&*r), (0, u64::MAX));
    let t = &r.tappers(None, &[], 10).unwrap()[0];
    assert_eq!((t.losses_reported, t.loss_records), (i64::MAX as u64, 3));
}

fn nofile(seq: u64) -> Warning {
    Warning {
        seq,
        kind: "nofile".into(),
        ts: Some(to_ts(1_000 + seq as i64)),
        pid: Some(42),
        comm: "server".into(),
        used: 205,
        limit: 256,
        ratio: 205.0 / 256.0,
        eta_seconds: Some(1.5),
        ..Default::default()
    }
}

fn replayed(r: &dyn Reader) -> Vec<(u64, &'static str, u64)> {
    let page = r.replay_page(0, u64::MAX, None, 100).unwrap();
    page.iter()
        .map(|s| match s {
            Stored::Event(e) => (e.hub_seq, "event", e.seq),
            Stored::Loss(l) => (l.hub_seq, "loss", l.loss.as_ref().unwrap().first_seq),
            Stored::Warning(w) => (w.hub_seq, "warning", w.seq),
        })
        .collect()
}

pub fn warnings_take_hub_seqs_dedup_and_replay_between_events(db: &Db) {
    {
        let (mut w, r) = db.open();
        w.hello(&hello("a"), 1).unwrap();
        w.commit_events(&key("a"), vec![ev(1, 24)], 2).unwrap();
        let c = w.commit_warning(&key("a"), nofile(2), 3).unwrap();
        assert_eq!((c.acked, c.new.len()), (2, 1));
        let stored = &c.new[0];
        assert_eq!((stored.hub_seq, stored.node.as_str()), (2, "a"));
        assert_eq!(stored.received, Some(to_ts(3)));
        // A resend is a duplicate: acked, nothing new.
        let again = w.commit_warning(&key("a"), nofile(2), 4).unwrap();
        assert_eq!((again.acked, again.new.len()), (2, 0));
        // A loss over the warning's seq is refused.
        let err = w.commit_loss(&key("a"), loss(2, 3), 5).unwrap_err();
        assert!(
            matches!(err, StoreError::Rejected { field: "loss", .. }),
            "{err}"
        );
        w.commit_events(&key("a"), vec![ev(3, 24)], 6).unwrap();
        assert_eq!(
            replayed(&*r),
            vec![(1, "event", 1), (2, "warning", 2), (3, "event", 3)]
        );
        let Stored::Warning(back) = &r.replay_page(2, 2, None, 10).unwrap()[0] else {
            panic!("not a warning");
        };
        assert_eq!(
            (back.used, back.limit, back.eta_seconds),
            (205, 256, Some(1.5))
        );
        assert_eq!(back.instance_id, "i1");
        assert_eq!(r.rows().unwrap(), 3);
        assert_eq!(r.first_received_since(3).unwrap(), Some(2));
    }
    // After a restart the hub_seq high-water mark and dedup still hold.
    let (mut w, r) = db.open();
    assert_eq!(w.last_hub_seq(), 3);
    w.stream_ended(&key("a"), 7).unwrap();
    assert!(
        w.commit_warning(&key("a"), nofile(2), 8)
            .unwrap()
            .new
            .is_empty()
    );
    // Retention counts warnings among the rows and deletes them by age too.
    w.commit_warning(&key("a"), nofile(4), 9).unwrap();
    assert_eq!(w.apply_retention(None, Some(2), 10).unwrap(), 2);
    assert_eq!(replayed(&*r), vec![(3, "event", 3), (4, "warning", 4)]);
    assert_eq!(w.apply_retention(Some(5), None, 20).unwrap(), 2);
    assert!(replayed(&*r).is_empty());
}
