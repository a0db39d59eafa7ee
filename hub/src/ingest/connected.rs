//! Which tapper instances have a Report stream open right now, and from where; the
//! ListTappers RPC is in `api::list_tappers`.

use dashmap::{DashMap, Entry};

use crate::store::InstanceKey;

/// The live Report stream of each instance: its peer address. An instance has at most one.
#[derive(Default)]
pub struct Connected {
    map: DashMap<InstanceKey, String>,
}

/// Holds an instance's one live stream while it lives.
pub struct ConnGuard<'a> {
    connected: &'a Connected,
    key: InstanceKey,
}

impl Connected {
    /// Marks `key` connected from `peer` until the guard drops; `None` if another stream of
    /// `key` is live (a second Hello must not take an instance over).
    pub fn claim(&self, key: InstanceKey, peer: String) -> Option<ConnGuard<'_>> {
        match self.map.entry(key.clone()) {
            Entry::Occupied(_) => None,
            Entry::Vacant(v) => {
                v.insert(peer);
                Some(ConnGuard {
                    connected: self,
                    key,
                })
            }
        }
    }

    /// How many instances have a live stream.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The peer address if `key` has a live stream.
    pub fn peer(&self, key: &InstanceKey) -> Option<String> {
        self.map.get(key).map(|p| p.clone())
    }
}

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.connected.map.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_live_stream_per_instance() {
        let c = Connected::default();
        let k = InstanceKey {
            node: "n".into(),
            instance_id: "i".into(),
        };
        let g1 = c.claim(k.clone(), "a".into()).unwrap();
        assert!(c.claim(k.clone(), "b".into()).is_none());
        assert_eq!(c.peer(&k).as_deref(), Some("a"));
        drop(g1);
        assert_eq!(c.peer(&k), None);
        let _g2 = c.claim(k.clone(), "b".into()).unwrap();
        assert_eq!(c.peer(&k).as_deref(), Some("b"));
    }
}
