//! Open connections per peer address (`--max-connections-per-peer`), so that one address
//! cannot take every connection slot; IPv6 peers count per /64, the block one host holds.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    sync::{Arc, Mutex},
};

/// The connections open from each peer address.
pub struct PeerCaps {
    max_per_peer: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of a peer; dropping it frees its place.
pub struct PeerSlot {
    limits: Arc<PeerCaps>,
    peer: IpAddr,
}

impl PeerCaps {
    pub fn new(max_per_peer: usize) -> Arc<Self> {
        Arc::new(Self {
            max_per_peer,
            open: Mutex::new(HashMap::new()),
        })
    }

    pub fn max_per_peer(&self) -> usize {
        self.max_per_peer
    }

    /// A place for one more connection from `addr`, unless it has the most already.
    pub fn try_take(self: &Arc<Self>, addr: IpAddr) -> Option<PeerSlot> {
        let peer = counted_as(addr);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(peer).or_insert(0);
        if *count >= self.max_per_peer {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            limits: self.clone(),
            peer,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

/// The address a peer counts under: IPv4 (also when mapped into IPv6) as it is, IPv6 by
/// its /64.
fn counted_as(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_has_its_own_places_and_gets_them_back() {
        let limits = PeerCaps::new(2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let a1 = limits.try_take(a).unwrap();
        let _a2 = limits.try_take(a).unwrap();
        assert!(limits.try_take(a).is_none());
        assert!(
            limits
                .try_take("::ffff:127.0.0.1".parse().unwrap())
                .is_none()
        );
        let _b1 = limits.try_take(b).unwrap();
        drop(a1);
        assert!(limits.try_take(a).is_some());
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let _x = limits.try_take(v6).unwrap();
        let _y = limits
            .try_take("2001:db8::ffff:2".parse().unwrap())
            .unwrap();
        assert!(
            limits.try_take("2001:db8::3".parse().unwrap()).is_none(),
            "one /64"
        );
    }
}
