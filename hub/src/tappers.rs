//! Which tapper instances have a Report stream open right now, and from where; the
//! ListTappers RPC is in `list`.

pub mod list;

use dashmap::DashMap;

use crate::store::InstanceKey;

#[derive(Debug)]
struct Conn {
    streams: u32,
    peer: String,
}

/// Live Report streams per instance (a reconnect may briefly overlap the old stream).
#[derive(Default)]
pub struct Connected {
    map: DashMap<InstanceKey, Conn>,
}

/// Marks an instance connected while it lives.
pub struct ConnGuard<'a> {
    connected: &'a Connected,
    key: InstanceKey,
}

impl Connected {
    /// Marks `key` connected from `peer` until the guard drops.
    pub fn connect(&self, key: InstanceKey, peer: String) -> ConnGuard<'_> {
        let mut c = self.map.entry(key.clone()).or_insert(Conn {
            streams: 0,
            peer: String::new(),
        });
        c.streams += 1;
        c.peer = peer;
        drop(c);
        ConnGuard {
            connected: self,
            key,
        }
    }

    /// The peer address if `key` has a live stream.
    pub fn peer(&self, key: &InstanceKey) -> Option<String> {
        self.map.get(key).map(|c| c.peer.clone())
    }
}

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.connected.map.remove_if_mut(&self.key, |_, c| {
            c.streams -= 1;
            c.streams == 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_streams() {
        let c = Connected::default();
        let k = InstanceKey {
            node: "n".into(),
            instance_id: "i".into(),
        };
        let g1 = c.connect(k.clone(), "a".into());
        let g2 = c.connect(k.clone(), "b".into());
        drop(g1);
        assert_eq!(c.peer(&k).as_deref(), Some("b"));
        drop(g2);
        assert_eq!(c.peer(&k), None);
    }
}
