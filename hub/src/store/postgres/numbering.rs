//! hub_seq numbers without a fleet-wide commit order. A write transaction reserves a block
//! of numbers from the `hub_seq` sequence and, in the same moment, holds a *mark*: a session
//! advisory lock whose key carries the block's first number. Until the transaction has
//! ended, the mark says "numbers from here on may still commit". Reserving happens under
//! the short numbering lock, and so does reading the watermark: the sequence's last value
//! and every mark, seen together. The watermark is the number below the lowest mark (or
//! the last value given when nobody holds one): every number up to it was given by a
//! transaction that has ended, so every row up to it that will ever exist is visible, and
//! the live tail reads up to it and no further. A block a transaction did not use is
//! given back while its mark still stands, if no block was reserved after it, so one
//! replica numbers without gaps.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use postgres::{Client, SimpleQueryMessage};

use super::locks;
use crate::store::{Result, StoreError};

/// Marks are advisory lock keys `MARK_TAG | first number` ("th" in the high bytes); numbers
/// stay below 2^48.
const MARK_TAG: i64 = 0x7468 << 48;
const MARK_BITS: i64 = (1 << 48) - 1;
/// Numbers reserved at once at the least and at the most (a transaction's use, doubled).
const BLOCK_MIN: u64 = 64;
const BLOCK_MAX: u64 = 65_536;

/// The numbers of the open transaction: its mark, and what is reserved and not yet given.
#[derive(Default)]
pub struct Pool {
    /// The first number reserved by the open transaction, whose mark it holds.
    mark: Option<u64>,
    /// Reserved ranges `[first, last]`, lowest first.
    free: VecDeque<(u64, u64)>,
    /// The end of the last block reserved.
    reserved_to: u64,
    /// Numbers given by the open transaction, and by the one before (sizes the blocks).
    given: u64,
    given_before: u64,
}

impl Pool {
    /// The next `n` numbers, in order, reserving a block when the pool runs short.
    pub fn take(&mut self, client: &mut Client, n: usize) -> Result<Vec<u64>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let Some((first, last)) = self.free.pop_front() else {
                let want = (n - out.len()) as u64;
                self.reserve(client, want.max(2 * self.given_before))?;
                continue;
            };
            let k = (last - first + 1).min((n - out.len()) as u64);
            out.extend(first..first + k);
            if first + k <= last {
                self.free.push_front((first + k, last));
            }
        }
        self.given += n as u64;
        Ok(out)
    }

    /// Puts back the lowest numbers taken last, unused.
    pub fn give_back(&mut self, numbers: &[u64]) {
        if let (Some(&first), Some(&last)) = (numbers.first(), numbers.last()) {
            self.free.push_front((first, last));
            self.given -= numbers.len() as u64;
        }
    }

    /// Reserves a block of at least `n` numbers (one round trip) under the numbering lock,
    /// marking its first number if the transaction holds no mark yet.
    fn reserve(&mut self, client: &mut Client, n: u64) -> Result<()> {
        let size = n.clamp(BLOCK_MIN, BLOCK_MAX.max(n));
        let mark = if self.mark.is_some() {
            "".to_owned()
        } else {
            format!("SELECT pg_advisory_lock({MARK_TAG} | s) FROM {NEXT};")
        };
        let sql = format!(
            "SELECT pg_advisory_lock({lock}); {mark}
             SELECT s, setval('hub_seq', s + {size} - 1) FROM {NEXT};
             SELECT pg_advisory_unlock({lock})",
            lock = locks::NUMBERING
        );
        let rows = match client.simple_query(&sql) {
            Ok(messages) => rows(messages),
            Err(e) => {
                // Never leave the numbering lock or a mark behind: every reservation and
                // every tail would wait on it. The open transaction is lost either way.
                let _ = client.batch_execute(&format!(
                    "ROLLBACK; SELECT pg_advisory_unlock({lock});
                     SELECT pg_advisory_unlock(l.classid::BIGINT << 32 | l.objid::BIGINT)
                     FROM pg_locks l WHERE l.pid = pg_backend_pid() AND l.locktype = 'advisory'
                         AND l.objsubid = 1 AND l.classid::BIGINT >> 16 = {tag}",
                    lock = locks::NUMBERING,
                    tag = MARK_TAG >> 48,
                ));
                self.mark = None;
                return Err(e.into());
            }
        };
        let first = rows
            .iter()
            .rev()
            .find_map(|r| r.get(0).filter(|_| r.len() == 2))
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| StoreError::Busy("reserving hub_seq numbers returned nothing".into()))?;
        if first.saturating_add(size) > MARK_BITS as u64 {
            return Err(StoreError::Engine {
                engine: "postgres",
                source: "hub_seq reached 2^48, the highest number a mark can carry".into(),
            });
        }
        self.mark.get_or_insert(first);
        self.free.push_back((first, first + size - 1));
        self.reserved_to = first + size - 1;
        Ok(())
    }

    /// The SQL that ends the open transaction with `end` (`COMMIT` or `ROLLBACK`): gives the
    /// unused end of the last block back if nothing was reserved after it, drops the mark
    /// and then wakes every replica's tail (the rows the mark held back are final now).
    /// Call [`Self::ended`] once it ran.
    pub fn end_sql(&self, end: &str, channel: &str) -> String {
        let Some(mark) = self.mark else {
            return end.to_owned();
        };
        let unused_from = match self.free.back() {
            Some(&(first, last)) if last == self.reserved_to => Some(first),
            _ => None,
        };
        let give_back = unused_from.map_or(String::new(), |from| {
            format!(
                "SELECT pg_advisory_lock({lock});
                 SELECT setval('hub_seq', {back}, {called}) FROM hub_seq
                     WHERE last_value = {to};
                 SELECT pg_advisory_unlock({lock});",
                lock = locks::NUMBERING,
                back = (from - 1).max(1),
                called = from > 1,
                to = self.reserved_to,
            )
        });
        format!(
            "{end}; {give_back} SELECT pg_advisory_unlock({MARK_TAG} | {mark});
             SELECT pg_notify('{channel}', '')"
        )
    }

    /// The open transaction ended: its numbers are forgotten, its mark dropped.
    pub fn ended(&mut self) {
        if self.mark.take().is_some() {
            self.given_before = std::mem::take(&mut self.given);
        }
        self.free.clear();
    }

    /// Numbers given by the open transaction so far.
    pub fn given(&self) -> u64 {
        self.given
    }

    /// The connection was lost: its session's marks went with it.
    pub fn forget(&mut self) {
        *self = Self {
            given_before: self.given_before,
            ..Self::default()
        };
    }
}

/// The first number the sequence gives next.
const NEXT: &str =
    "(SELECT last_value + CASE WHEN is_called THEN 1 ELSE 0 END AS s FROM hub_seq) AS next";

fn rows(messages: Vec<SimpleQueryMessage>) -> Vec<postgres::SimpleQueryRow> {
    messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// The highest hub_seq up to which every row is final, never moving back (shared by the
/// reader, the change notifications and the writer of one replica).
#[derive(Clone, Default)]
pub struct Watermark {
    floor: Arc<AtomicU64>,
}

impl Watermark {
    /// Reads the watermark (one round trip, in a transaction of its own: read it before
    /// taking the snapshot that reads the rows).
    pub fn read(&self, client: &mut Client) -> Result<u64> {
        let sql = format!(
            "SELECT pg_advisory_lock_shared({lock});
             SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END,
                 (SELECT MIN(((l.classid::BIGINT & 65535) << 32) | l.objid::BIGINT)
                  FROM pg_locks l
                  WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
                      AND l.classid::BIGINT >> 16 = {tag}
                      AND l.database = (SELECT oid FROM pg_database
                                        WHERE datname = current_database()))
             FROM hub_seq;
             SELECT pg_advisory_unlock_shared({lock})",
            lock = locks::NUMBERING,
            tag = MARK_TAG >> 48,
        );
        let rows = match client.simple_query(&sql) {
            Ok(messages) => rows(messages),
            Err(e) => {
                // A shared numbering lock left behind would stop every reservation.
                let _ = client.batch_execute(&format!(
                    "SELECT pg_advisory_unlock_shared({})",
                    locks::NUMBERING
                ));
                return Err(e.into());
            }
        };
        let row = rows
            .iter()
            .find(|r| r.len() == 2)
            .ok_or_else(|| StoreError::Busy("reading the watermark returned nothing".into()))?;
        let given: u64 = row.get(0).and_then(|v| v.parse().ok()).unwrap_or(0);
        let open: Option<u64> = row.get(1).and_then(|v| v.parse().ok());
        let now = open.map_or(given, |mark| given.min(mark.saturating_sub(1)));
        Ok(self.floor.fetch_max(now, Ordering::SeqCst).max(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_stay_apart_from_the_fixed_locks() {
        for fixed in [locks::NUMBERING, locks::MIGRATION, locks::RETENTION] {
            assert_ne!(fixed >> 48, MARK_TAG >> 48);
        }
        assert_eq!(MARK_TAG & MARK_BITS, 0);
    }
}
