//! The commit skeleton shared by the engines: an instance's seq state is loaded once, the
//! records whose seq is committed already are left out, the rest are stored in one step
//! together with the new acked seq, and only after that step the state and the hub_seq
//! high-water mark move on. An engine supplies the steps ([`CommitQueries`]).

use std::collections::HashMap;

use tapper_proto::v1::{Event, Loss, LossNotice, Warning};

use super::{
    loss_check::{self, LossRows},
    seq::{Instances, SeqState},
};
use crate::{
    store::{Committed, InstanceKey, Result},
    util::clock::to_ts,
};

/// The queries of one engine. Each `store_*` call is one all-or-nothing step (a savepoint
/// inside an open group): it stores what it is given, skipping rows whose unique key
/// (node, instance, seq) exists, and sets the tapper row's acked seq to `acked`.
pub trait CommitQueries {
    /// Makes sure the connection is up; `true` when it was opened anew since the last call,
    /// so that no cached seq state may be trusted.
    fn reconnected(&mut self) -> Result<bool> {
        Ok(false)
    }

    /// The acked seq stored for `key` (0 for an unknown instance).
    fn stored_acked(&mut self, key: &InstanceKey) -> Result<u64>;

    /// Stores `events` (their hub fields cleared) and adds the stored ones to the tapper's
    /// totals; returns (seq, hub_seq) of each event stored.
    fn store_events(
        &mut self,
        key: &InstanceKey,
        events: &mut [Event],
        acked: u64,
        now_ns: i64,
    ) -> Result<Vec<(u64, u64)>>;

    /// Runs `store` (the loss check, and the insert of a new record) on the step's rows;
    /// returns what it returns: the record's hub_seq, if it stored one.
    fn store_loss<F>(
        &mut self,
        key: &InstanceKey,
        acked: u64,
        now_ns: i64,
        store: F,
    ) -> Result<Option<u64>>
    where
        F: FnOnce(&mut dyn LossRows) -> Result<Option<u64>>;

    /// Stores `warning` (its hub fields cleared) when given; returns its hub_seq if stored.
    fn store_warning(
        &mut self,
        key: &InstanceKey,
        warning: Option<&Warning>,
        acked: u64,
        now_ns: i64,
    ) -> Result<Option<u64>>;
}

/// What a writer knows between commits: the seq state of the live instances and the
/// highest hub_seq assigned.
#[derive(Debug, Default)]
pub struct Ledger {
    instances: Instances,
    last_hub_seq: u64,
}

impl Ledger {
    /// A ledger that starts numbering after `last_hub_seq`, with nothing cached.
    pub fn new(last_hub_seq: u64) -> Self {
        Self {
            instances: Instances::default(),
            last_hub_seq,
        }
    }

    /// The highest hub_seq assigned so far.
    pub fn last_hub_seq(&self) -> u64 {
        self.last_hub_seq
    }

    /// Forgets every cached state (after a failed group, whose commits were rolled back).
    pub fn forget_all(&mut self) {
        self.instances = Instances::default();
    }

    /// Forgets the state of `key` (its stream ended, or may go on elsewhere).
    pub fn forget(&mut self, key: &InstanceKey) {
        self.instances.forget(key);
    }

    /// The instances whose state is cached: those with a live stream.
    pub fn live(&self) -> Vec<InstanceKey> {
        self.instances.keys()
    }

    /// Number of instances whose seq state is cached.
    #[cfg(test)]
    pub fn cached_instances(&self) -> usize {
        self.instances.len()
    }

    /// The committed state of `key`, from the cache or else from the store.
    fn state(&mut self, q: &mut impl CommitQueries, key: &InstanceKey) -> Result<SeqState> {
        if q.reconnected()? {
            self.forget_all();
        }
        self.instances.get(key, || q.stored_acked(key))
    }

    /// The acked seq of `key`.
    pub fn acked(&mut self, q: &mut impl CommitQueries, key: &InstanceKey) -> Result<u64> {
        Ok(self.state(q, key)?.acked)
    }

    /// After a step that stored: the instance's new state and the high-water mark.
    fn settle<T>(
        &mut self,
        key: &InstanceKey,
        state: SeqState,
        hub_seqs: impl IntoIterator<Item = u64>,
        new: Vec<T>,
    ) -> Committed<T> {
        self.last_hub_seq = hub_seqs.into_iter().fold(self.last_hub_seq, u64::max);
        let acked = state.acked;
        self.instances.put(key, state);
        Committed { new, acked }
    }

    /// Stores the events of one batch; those whose seq is committed are duplicates and left
    /// out of the result, the others come back with their hub fields, in hub_seq order.
    pub fn commit_events(
        &mut self,
        q: &mut impl CommitQueries,
        key: &InstanceKey,
        events: Vec<Event>,
        now_ns: i64,
    ) -> Result<Committed<Event>> {
        let mut state = self.state(q, key)?;
        let mut fresh = Vec::new();
        for mut e in events {
            if state.is_committed(e.seq) {
                continue;
            }
            // Marked even when the row exists already: after a restart or a pruned state,
            // the unique key is what finds a re-sent event.
            state.mark(e.seq, e.seq);
            e.node.clone_from(&key.node);
            e.instance_id.clone_from(&key.instance_id);
            e.hub_seq = 0;
            e.received = None;
            fresh.push(e);
        }
        let stored = q.store_events(key, &mut fresh, state.acked, now_ns)?;
        let hub_seqs: HashMap<u64, u64> = stored.into_iter().collect();
        let mut new: Vec<Event> = fresh
            .into_iter()
            .filter_map(|mut e| {
                e.hub_seq = *hub_seqs.get(&e.seq)?;
                e.received = Some(to_ts(now_ns));
                Some(e)
            })
            .collect();
        new.sort_by_key(|e| e.hub_seq);
        Ok(self.settle(key, state, hub_seqs.into_values(), new))
    }

    /// Stores one loss record unless it is a resend; a record over stored seq numbers is
    /// rejected and stores nothing.
    pub fn commit_loss(
        &mut self,
        q: &mut impl CommitQueries,
        key: &InstanceKey,
        loss: Loss,
        now_ns: i64,
    ) -> Result<Committed<LossNotice>> {
        let checked = self.state(q, key)?;
        let mut state = checked.clone();
        state.mark(loss.first_seq, loss.last_seq);
        let hub_seq = q.store_loss(key, state.acked, now_ns, |rows| {
            loss_check::store_if_new(rows, key, &checked, &loss, now_ns)
        })?;
        let new = hub_seq
            .map(|hub_seq| LossNotice {
                node: key.node.clone(),
                instance_id: key.instance_id.clone(),
                loss: Some(loss.clone()),
                hub_seq,
                received: Some(to_ts(now_ns)),
            })
            .into_iter()
            .collect();
        Ok(self.settle(key, state, hub_seq, new))
    }

    /// Stores one warning (it takes a hub_seq like an event) unless its seq is committed.
    pub fn commit_warning(
        &mut self,
        q: &mut impl CommitQueries,
        key: &InstanceKey,
        mut warning: Warning,
        now_ns: i64,
    ) -> Result<Committed<Warning>> {
        let mut state = self.state(q, key)?;
        let fresh = !state.is_committed(warning.seq);
        state.mark(warning.seq, warning.seq);
        warning.node.clone_from(&key.node);
        warning.instance_id.clone_from(&key.instance_id);
        warning.hub_seq = 0;
        warning.received = None;
        let hub_seq = q.store_warning(key, fresh.then_some(&warning), state.acked, now_ns)?;
        let new = hub_seq
            .map(|hub_seq| Warning {
                hub_seq,
                received: Some(to_ts(now_ns)),
                ..warning
            })
            .into_iter()
            .collect();
        Ok(self.settle(key, state, hub_seq, new))
    }
}
