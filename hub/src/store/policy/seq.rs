//! Per-instance seq bookkeeping: which seq numbers are committed, and the in-memory cache
//! of that state for instances with an open stream.

use std::collections::{BTreeMap, HashMap};

use crate::store::{InstanceKey, Result};

/// Which seq numbers of an instance are committed: all up to `acked`, plus ranges above.
#[derive(Debug, Clone, Default)]
pub struct SeqState {
    pub acked: u64,
    /// first -> last of committed ranges above `acked + 1`.
    above: BTreeMap<u64, u64>,
}

impl SeqState {
    /// State known only by its acked seq (ranges above it are found again through the
    /// store's unique keys when re-sent).
    pub fn acked(acked: u64) -> Self {
        Self {
            acked,
            above: BTreeMap::new(),
        }
    }

    pub fn is_committed(&self, seq: u64) -> bool {
        seq <= self.acked
            || self
                .above
                .range(..=seq)
                .next_back()
                .is_some_and(|(_, &last)| seq <= last)
    }

    /// Whether any seq number of `[first, last]` is committed.
    pub fn overlaps(&self, first: u64, last: u64) -> bool {
        first <= self.acked || self.above.range(..=last).any(|(_, &l)| l >= first)
    }

    pub fn mark(&mut self, first: u64, last: u64) {
        if last <= self.acked {
            return;
        }
        let e = self.above.entry(first).or_insert(last);
        *e = (*e).max(last);
        while let Some((&f, &l)) = self.above.first_key_value() {
            if f > self.acked + 1 {
                break;
            }
            self.acked = self.acked.max(l);
            self.above.remove(&f);
        }
    }
}

/// Seq state of the instances seen since their stream (re)started. Entries are dropped when
/// a stream ends, so the map holds only live instances.
#[derive(Debug, Default)]
pub struct Instances {
    map: HashMap<InstanceKey, SeqState>,
}

impl Instances {
    /// A copy of the state of `key` (to update and [`put`](Self::put) back after a commit);
    /// `load_acked` gives the stored acked seq when the state is not cached.
    pub fn get(
        &mut self,
        key: &InstanceKey,
        load_acked: impl FnOnce() -> Result<u64>,
    ) -> Result<SeqState> {
        if let Some(s) = self.map.get(key) {
            return Ok(s.clone());
        }
        let s = SeqState::acked(load_acked()?);
        self.map.insert(key.clone(), s.clone());
        Ok(s)
    }

    /// Keeps `state` as the committed state of `key`.
    pub fn put(&mut self, key: &InstanceKey, state: SeqState) {
        self.map.insert(key.clone(), state);
    }

    /// Forgets `key` (its stream ended).
    pub fn forget(&mut self, key: &InstanceKey) {
        self.map.remove(key);
    }

    /// The cached (live) instances.
    pub fn keys(&self) -> Vec<InstanceKey> {
        self.map.keys().cloned().collect()
    }

    /// Number of cached instances.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_state_advances_over_ranges() {
        let mut s = SeqState::default();
        s.mark(2, 2);
        assert_eq!(s.acked, 0);
        s.mark(3, 10);
        s.mark(1, 1);
        assert_eq!(s.acked, 10);
        assert!(s.is_committed(7));
        s.mark(12, 12);
        assert!(s.is_committed(12) && !s.is_committed(11));
        assert!(s.overlaps(11, 13) && s.overlaps(9, 11) && !s.overlaps(11, 11));
        assert!(!s.overlaps(13, u64::MAX));
    }

    #[test]
    fn instances_load_once_and_forget() {
        let key = InstanceKey {
            node: "n".into(),
            instance_id: "i".into(),
        };
        let mut m = Instances::default();
        let mut s = m.get(&key, || Ok(3)).unwrap();
        assert_eq!(s.acked, 3);
        s.mark(4, 4);
        m.put(&key, s);
        let s = m
            .get(&key, || panic!("cached state must not reload"))
            .unwrap();
        assert_eq!(s.acked, 4);
        m.forget(&key);
        assert_eq!(m.len(), 0);
        assert_eq!(m.get(&key, || Ok(9)).unwrap().acked, 9);
    }
}
