//! The loss check: a new loss record must not cover any seq number already stored (as an
//! event, a warning or in another record); a re-sent identical record is a duplicate.

use tapper_proto::v1::Loss;

use super::seq::SeqState;
use crate::store::{InstanceKey, Result, StoreError};

/// A stored loss record's range and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredLoss {
    pub first_seq: u64,
    pub last_seq: u64,
    pub count: u64,
}

/// The queries the check needs, run by an engine inside the commit's open step.
pub trait LossRows {
    /// The loss record of `key` that starts last at or before `last_seq`, if any.
    fn loss_at_or_before(&mut self, key: &InstanceKey, last_seq: u64)
    -> Result<Option<StoredLoss>>;

    /// Whether an event or a warning of `key` has a seq number in `[first_seq, last_seq]`.
    fn seq_stored_in(&mut self, key: &InstanceKey, first_seq: u64, last_seq: u64) -> Result<bool>;

    /// Stores `loss` (adding it to the tapper's totals, saturating); returns its hub_seq.
    fn insert_loss(&mut self, key: &InstanceKey, loss: &Loss, now_ns: i64) -> Result<u64>;
}

/// What to do with a loss record.
#[derive(Debug, PartialEq, Eq)]
enum Check {
    /// Not stored yet and covers nothing stored: store it.
    New,
    /// The same record is stored already (a resend): ack, store nothing.
    Duplicate,
    /// Covers seq numbers already stored: reject, store nothing.
    Overlaps,
}

/// Classifies `loss` of `key` against the committed `state` and the stored rows (which
/// also know ranges a restarted hub, or another replica, has not cached).
fn check(
    rows: &mut dyn LossRows,
    key: &InstanceKey,
    state: &SeqState,
    loss: &Loss,
) -> Result<Check> {
    // Stored loss records never overlap, so the one starting last at or before `last` is
    // the only one that can reach into the range.
    let before = rows.loss_at_or_before(key, loss.last_seq)?;
    let resent = StoredLoss {
        first_seq: loss.first_seq,
        last_seq: loss.last_seq,
        count: loss.count,
    };
    if before == Some(resent) {
        return Ok(Check::Duplicate);
    }
    if state.overlaps(loss.first_seq, loss.last_seq)
        || before.is_some_and(|b| b.last_seq >= loss.first_seq)
        || rows.seq_stored_in(key, loss.first_seq, loss.last_seq)?
    {
        return Ok(Check::Overlaps);
    }
    Ok(Check::New)
}

/// Stores `loss` if it is new and returns its hub_seq; `None` for a resend; an error that
/// says so for a record over stored seq numbers (nothing stored).
pub fn store_if_new(
    rows: &mut dyn LossRows,
    key: &InstanceKey,
    state: &SeqState,
    loss: &Loss,
    now_ns: i64,
) -> Result<Option<u64>> {
    match check(rows, key, state, loss)? {
        Check::Duplicate => Ok(None),
        Check::Overlaps => Err(StoreError::Rejected {
            field: "loss",
            reason: format!(
                "seq {}..={} overlaps events or loss records already stored",
                loss.first_seq, loss.last_seq
            ),
        }),
        Check::New => rows.insert_loss(key, loss, now_ns).map(Some),
    }
}
