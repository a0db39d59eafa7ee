//! A map whose entries are trusted for a fixed time: enrichment reads each source at most
//! once per key and period, however many events share the key.

use std::{
    collections::HashMap,
    hash::Hash,
    time::{Duration, Instant},
};

pub struct TtlCache<K, V> {
    ttl: Duration,
    /// Above this many entries, expired ones are swept on insert.
    sweep_above: usize,
    entries: HashMap<K, (Instant, V)>,
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, sweep_above: usize) -> Self {
        Self {
            ttl,
            sweep_above,
            entries: HashMap::new(),
        }
    }

    /// The value for `key`: the cached one while fresh, else `read(&key)`, then cached.
    pub fn get_or_read(&mut self, key: K, read: impl FnOnce(&K) -> V) -> V {
        let now = Instant::now();
        if let Some((at, value)) = self.entries.get(&key)
            && now.duration_since(*at) < self.ttl
        {
            return value.clone();
        }
        let value = read(&key);
        if self.entries.len() >= self.sweep_above {
            let ttl = self.ttl;
            self.entries
                .retain(|_, (at, _)| now.duration_since(*at) < ttl);
        }
        self.entries.insert(key, (now, value.clone()));
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_once_per_period_and_sweeps() {
        let mut cache = TtlCache::new(Duration::from_millis(50), 2);
        let mut reads = 0;
        let mut read = |key: &u32| {
            reads += 1;
            key * 10
        };
        assert_eq!(cache.get_or_read(1, &mut read), 10);
        assert_eq!(cache.get_or_read(1, &mut read), 10);
        assert_eq!(cache.get_or_read(2, &mut read), 20);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get_or_read(3, &mut read), 30);
        // Both expired entries went when the third came.
        assert_eq!(cache.entries.len(), 1);
        assert_eq!(cache.get_or_read(1, &mut read), 10);
        assert_eq!(reads, 4);
    }
}
