//! Records and databases for the store's tests: one tapper instance per node, events and
//! loss records by seq, and a private directory for a database file.

use tapper_proto::v1::{Event, Hello, Loss};

use crate::{store::InstanceKey, util::clock::to_ts};

pub fn hello(node: &str) -> Hello {
    Hello {
        node: node.into(),
        instance_id: "i1".into(),
        ..Default::default()
    }
}

pub fn key(node: &str) -> InstanceKey {
    InstanceKey {
        node: node.into(),
        instance_id: "i1".into(),
    }
}

pub fn ev(seq: u64, errno: i32) -> Event {
    Event {
        seq,
        errno,
        errno_name: format!("E{errno}"),
        ts: Some(to_ts(1_000 + seq as i64)),
        comm: "x".into(),
        ..Default::default()
    }
}

pub fn loss(first_seq: u64, last_seq: u64) -> Loss {
    Loss {
        count: last_seq - first_seq + 1,
        reason: "r".into(),
        first_seq,
        last_seq,
    }
}

/// A fresh database file in a private directory (removed with the returned guard).
pub struct TempDb(std::path::PathBuf);

impl TempDb {
    pub fn new(name: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hub-store-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> String {
        self.0.join("hub.db").to_str().unwrap().to_owned()
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
