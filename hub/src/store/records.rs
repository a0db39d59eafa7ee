//! What the store keeps and hands back: instance keys, commit results and replay items.

use tapper_proto::v1::{Event, Loss, LossNotice, Warning};

use crate::util::clock::to_ts;

/// Reason of the loss notice that stands in for a stored row that no longer decodes.
pub const UNREADABLE: &str = "stored record unreadable";

/// Identifies one tapper run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceKey {
    pub node: String,
    pub instance_id: String,
}

/// What a commit added.
#[derive(Debug, Default)]
pub struct Committed<T> {
    /// New records, with their hub fields set (duplicates left out).
    pub new: Vec<T>,
    /// The instance's acked seq after the commit.
    pub acked: u64,
}

/// An item of a replay, in hub order.
#[allow(clippy::large_enum_variant)] // events are the common case
#[derive(Debug)]
pub enum Stored {
    Event(Event),
    Loss(LossNotice),
    Warning(Warning),
}

impl Stored {
    pub fn hub_seq(&self) -> u64 {
        match self {
            Self::Event(e) => e.hub_seq,
            Self::Loss(l) => l.hub_seq,
            Self::Warning(w) => w.hub_seq,
        }
    }
}

impl Stored {
    /// The loss notice that stands in for a stored event or warning that no longer decodes
    /// ([`UNREADABLE`]): its one seq number, counted once, in the row's hub_seq place.
    pub fn unreadable(
        node: String,
        instance_id: String,
        seq: u64,
        hub_seq: u64,
        received_ns: i64,
    ) -> Self {
        Self::Loss(LossNotice {
            node,
            instance_id,
            loss: Some(Loss {
                count: 1,
                reason: UNREADABLE.into(),
                first_seq: seq,
                last_seq: seq,
            }),
            hub_seq,
            received: Some(to_ts(received_ns)),
        })
    }
}
