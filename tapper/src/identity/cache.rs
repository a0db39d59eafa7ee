//! What the runtimes said about each container (by id) and pod (by uid). Entries are
//! refreshed by each listing and kept for a while after they leave the listings, so late
//! events of exited containers still get their names; the oldest go first past a fixed size.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use tapper_proto::v1::{Container, Pod};

/// A container as a runtime described it (the id is the cache key).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerMeta {
    pub runtime: &'static str,
    pub name: Option<String>,
    pub image: Option<String>,
    pub pod: Option<Pod>,
}

impl ContainerMeta {
    /// The event's `container` for id `id`.
    pub fn container(&self, id: &str) -> Container {
        Container {
            id: Some(id.to_owned()),
            runtime: Some(self.runtime.to_owned()),
            name: self.name.clone(),
            image: self.image.clone(),
        }
    }
}

/// What one runtime listed: containers by id, and pods by uid (known as soon as their
/// sandbox runs, before any of their containers starts).
#[derive(Debug, Default)]
pub struct Listing {
    pub containers: Vec<(String, ContainerMeta)>,
    pub pods: Vec<(String, Pod)>,
}

/// How long a container or pod stays known after it was last listed.
pub const RETAIN_EXITED: Duration = Duration::from_secs(600);
/// At most this many containers (and as many pods) are kept; past it the least recently
/// listed go.
pub const CAPACITY: usize = 8192;

#[derive(Default)]
pub struct MetadataCache {
    containers: Retained<ContainerMeta>,
    pods: Retained<Pod>,
}

impl MetadataCache {
    pub fn container(&self, id: &str) -> Option<&ContainerMeta> {
        self.containers.get(id)
    }

    pub fn pod(&self, uid: &str) -> Option<&Pod> {
        self.pods.get(uid)
    }

    /// Takes one runtime's listing made at `now`.
    pub fn update(&mut self, listing: Listing, now: Instant) {
        self.containers.update(listing.containers, now);
        self.pods.update(listing.pods, now);
    }
}

/// Entries by key, each with when it was last listed.
struct Retained<V> {
    entries: HashMap<String, (Instant, V)>,
}

impl<V> Default for Retained<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }
}

impl<V> Retained<V> {
    fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key).map(|(_, value)| value)
    }

    /// Listed entries are (re)learnt; those last listed more than [`RETAIN_EXITED`] ago
    /// are forgotten, and past [`CAPACITY`] the least recently listed.
    fn update(&mut self, listed: Vec<(String, V)>, now: Instant) {
        for (key, value) in listed {
            self.entries.insert(key, (now, value));
        }
        self.entries
            .retain(|_, (at, _)| now.saturating_duration_since(*at) <= RETAIN_EXITED);
        if self.entries.len() > CAPACITY {
            let mut by_age: Vec<(Instant, String)> = self
                .entries
                .iter()
                .map(|(key, (at, _))| (*at, key.clone()))
                .collect();
            by_age.sort_unstable();
            let excess = self.entries.len() - CAPACITY;
            for (_, key) in by_age.into_iter().take(excess) {
                self.entries.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> ContainerMeta {
        ContainerMeta {
            runtime: "containerd",
            name: Some(name.into()),
            ..Default::default()
        }
    }

    #[test]
    fn exited_containers_are_kept_then_forgotten() {
        let start = Instant::now();
        let mut cache = MetadataCache::default();
        let pod = Pod {
            name: Some("web-1".into()),
            ..Default::default()
        };
        let listing = |ids: &[&str]| Listing {
            containers: ids.iter().map(|id| (id.to_string(), named(id))).collect(),
            pods: vec![("uid-1".into(), pod.clone())],
        };
        cache.update(listing(&["a", "b"]), start);
        // "b" exited and is no longer listed: still known within the retention.
        let later = start + RETAIN_EXITED;
        cache.update(listing(&["a"]), later);
        assert_eq!(
            cache.container("b").and_then(|m| m.name.as_deref()),
            Some("b")
        );
        cache.update(listing(&["a"]), later + Duration::from_secs(1));
        assert!(cache.container("b").is_none());
        assert_eq!(
            cache.container("a").unwrap().container("a").name.as_deref(),
            Some("a")
        );
        assert_eq!(cache.pod("uid-1"), Some(&pod));
        cache.update(
            Listing::default(),
            later + RETAIN_EXITED + Duration::from_secs(2),
        );
        assert!(cache.pod("uid-1").is_none());
    }

    #[test]
    fn past_capacity_the_least_recently_listed_go() {
        let start = Instant::now();
        let mut cache = Retained::default();
        cache.update(vec![("old".into(), named("old"))], start);
        let listing = (0..CAPACITY)
            .map(|i| (format!("c{i}"), named("n")))
            .collect();
        cache.update(listing, start + Duration::from_secs(1));
        assert_eq!(cache.entries.len(), CAPACITY);
        assert!(cache.get("old").is_none() && cache.get("c0").is_some());
    }
}
