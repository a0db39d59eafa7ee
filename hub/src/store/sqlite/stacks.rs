//! User stacks stored once per distinct stack: an event's frames go to the `stacks` table,
//! keyed by the SHA-256 digest of their encoding, and the event row keeps only `stack_id`;
//! reads put the frames back, and retention drops stacks no event references any more.

use rusqlite::{Connection, params};
use tapper_proto::v1::StackFrame;

pub use crate::store::stack_blob::decode;
use crate::store::{Result, stack_blob::StackBlob};

/// The id of the stored stack equal to `frames` (stored now if new); `None` for no stack.
pub fn store(conn: &Connection, frames: &[StackFrame]) -> Result<Option<i64>> {
    let Some(blob) = StackBlob::of(frames) else {
        return Ok(None);
    };
    let mut upsert = conn.prepare_cached(
        "INSERT INTO stacks (digest, frames) VALUES (?1, ?2)
         ON CONFLICT (digest) DO UPDATE SET digest = excluded.digest
         RETURNING id",
    )?;
    let id = upsert.query_row(params![blob.digest, blob.frames], |r| r.get(0))?;
    Ok(Some(id))
}

/// Deletes stacks that no event references; returns how many went.
pub fn delete_unreferenced(conn: &Connection) -> Result<u64> {
    let n = conn.execute(
        "DELETE FROM stacks WHERE id NOT IN
             (SELECT stack_id FROM events WHERE stack_id IS NOT NULL)",
        [],
    )?;
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;
    use tapper_proto::v1::{Event, StackFrame};

    use super::super::testkit::{TempDb, ev, hello, key, open};
    use crate::store::{Reader, Stored, Writer};

    fn frame(address: u64, symbol: Option<&str>) -> StackFrame {
        StackFrame {
            address,
            module: Some("/usr/bin/w".into()),
            offset: Some(address - 0x1000),
            symbol: symbol.map(Into::into),
        }
    }

    fn with_stack(seq: u64, frames: &[StackFrame]) -> Event {
        Event {
            user_stack: frames.to_vec(),
            ..ev(seq, 24)
        }
    }

    fn stacks_stored(db: &TempDb) -> i64 {
        let conn = Connection::open(db.path()).unwrap();
        conn.query_row("SELECT COUNT(*) FROM stacks", [], |r| r.get(0))
            .unwrap()
    }

    fn replayed_stacks(r: &dyn Reader) -> Vec<Vec<StackFrame>> {
        let page = r.replay_page(0, u64::MAX, None, 100).unwrap();
        page.into_iter()
            .filter_map(|s| match s {
                Stored::Event(e) => Some(e.user_stack),
                Stored::Loss(_) | Stored::Warning(_) => None,
            })
            .collect()
    }

    #[test]
    fn identical_stacks_are_stored_once_and_read_back_whole() {
        let db = TempDb::new("stacks");
        let (mut w, r) = open(&db.path()).unwrap();
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
        assert_eq!(stacks_stored(&db), 2);
        assert_eq!(
            replayed_stacks(&r),
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
        assert_eq!(stacks_stored(&db), 2);
    }

    #[test]
    fn retention_drops_the_stacks_no_event_references() {
        let db = TempDb::new("stacks-retention");
        let (mut w, r) = open(&db.path()).unwrap();
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
        assert_eq!(stacks_stored(&db), 2);
        assert_eq!(w.apply_retention(Some(5), None, 20).unwrap(), 2);
        assert_eq!(stacks_stored(&db), 1);
        assert_eq!(replayed_stacks(&r), [kept.to_vec()]);
    }
}
