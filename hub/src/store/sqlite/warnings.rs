//! Warnings on the writer side: stored in the same hub_seq space as events and loss
//! records, deduplicated by (node, instance, seq), the full message kept as its body.

use prost::Message;
use rusqlite::{Connection, params};
use tapper_proto::v1::Warning;

use super::u2i;
use crate::{
    clock::from_ts,
    store::{InstanceKey, Result},
};

/// Stores `warning` of `key` (its hub fields cleared) as `hub_seq`; false when that seq is
/// stored already (a resend).
pub fn insert(
    tx: &Connection,
    key: &InstanceKey,
    warning: &Warning,
    hub_seq: u64,
    now_ns: i64,
) -> Result<bool> {
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO warnings (hub_seq, node, instance_id, seq, kind, ts_ns,
                                         received_ns, pid, comm, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            u2i(hub_seq),
            key.node,
            key.instance_id,
            u2i(warning.seq),
            warning.kind,
            warning.ts.as_ref().map_or(0, from_ts),
            now_ns,
            warning.pid,
            warning.comm,
            warning.encode_to_vec()
        ],
    )?;
    Ok(inserted == 1)
}

#[cfg(test)]
mod tests {
    use tapper_proto::v1::Warning;

    use super::super::testkit::{TempDb, ev, hello, key, loss, open};
    use crate::{
        clock::to_ts,
        store::{Reader, StoreError, Stored, Writer},
    };

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

    #[test]
    fn warnings_take_hub_seqs_dedup_and_replay_between_events() {
        let db = TempDb::new("warnings");
        {
            let (mut w, r) = open(&db.path()).unwrap();
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
                replayed(&r),
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
        let (mut w, r) = open(&db.path()).unwrap();
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
        assert_eq!(replayed(&r), vec![(3, "event", 3), (4, "warning", 4)]);
        assert_eq!(w.apply_retention(Some(5), None, 20).unwrap(), 2);
        assert!(replayed(&r).is_empty());
    }
}
