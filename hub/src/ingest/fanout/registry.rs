//! The live subscribers, indexed by their `container_id` prefixes: an event with a
//! container id reaches those subscribers through a few hash lookups (one per distinct
//! prefix length) instead of a check of each, so subscribers that filter on other
//! containers cost an event nothing.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use super::queue::Subscriber;

#[derive(Default)]
pub struct Registry {
    /// Subscribers without a `container_id` filter: every event is checked against them.
    general: Vec<Arc<Subscriber>>,
    /// Subscribers with one.
    indexed: Vec<Arc<Subscriber>>,
    /// Those, by each of their prefixes.
    by_prefix: HashMap<String, Vec<Arc<Subscriber>>>,
    /// How many prefixes of each length `by_prefix` holds.
    lengths: BTreeMap<usize, usize>,
}

impl Registry {
    pub fn len(&self) -> usize {
        self.general.len() + self.indexed.len()
    }

    pub fn add(&mut self, sub: Arc<Subscriber>) {
        let prefixes = sub.filter.container_id_prefixes();
        if prefixes.is_empty() {
            self.general.push(sub);
            return;
        }
        for prefix in prefixes {
            *self.lengths.entry(prefix.len()).or_default() += 1;
            self.by_prefix
                .entry(prefix.clone())
                .or_default()
                .push(sub.clone());
        }
        self.indexed.push(sub);
    }

    pub fn remove(&mut self, id: u64) {
        if let Some(at) = self.general.iter().position(|s| s.id == id) {
            self.general.swap_remove(at);
            return;
        }
        let Some(at) = self.indexed.iter().position(|s| s.id == id) else {
            return;
        };
        let sub = self.indexed.swap_remove(at);
        for prefix in sub.filter.container_id_prefixes() {
            if let Some(subs) = self.by_prefix.get_mut(prefix) {
                subs.retain(|s| s.id != id);
                if subs.is_empty() {
                    self.by_prefix.remove(prefix);
                }
            }
            if let Some(n) = self.lengths.get_mut(&prefix.len()) {
                *n -= 1;
                if *n == 0 {
                    self.lengths.remove(&prefix.len());
                }
            }
        }
    }

    /// Drops the subscribers `gone` says are gone.
    pub fn remove_where(&mut self, gone: impl Fn(&Subscriber) -> bool) {
        let ids: Vec<u64> = self.all().filter(|s| gone(s)).map(|s| s.id).collect();
        for id in ids {
            self.remove(id);
        }
    }

    /// Every subscriber.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Subscriber>> {
        self.general.iter().chain(&self.indexed)
    }

    /// The subscribers an event with container id `id` may match: those without a
    /// `container_id` filter, and those with a prefix of `id` (at most one each, since a
    /// filter keeps no prefix of another).
    pub fn for_container(&self, id: Option<&str>) -> impl Iterator<Item = &Arc<Subscriber>> {
        let indexed = id.into_iter().flat_map(move |id| {
            self.lengths
                .keys()
                .take_while(move |len| **len <= id.len())
                .filter_map(move |len| id.get(..*len))
                .filter_map(|prefix| self.by_prefix.get(prefix))
                .flatten()
        });
        self.general.iter().chain(indexed)
    }
}
