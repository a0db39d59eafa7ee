//! What the store keeps and hands back: instance keys, commit results and replay items.

use tapper_proto::v1::{Event, LossNotice, Warning};

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
