//! Starts a hub (through the test kit, in memory or on a given database) as a benchmark
//! peer, with the flags of a hub under a load of many reporters.

use std::path::Path;

use anyhow::Result;
use tapper_testkit::{HubCommand, HubProcess};

pub struct Hub {
    pub peer: HubProcess,
    /// `http://127.0.0.1:PORT`, or `https://` with `--tls-cert`.
    pub url: String,
}

/// Starts a fresh in-memory hub for a load of many reporters ([`load_flags`]), with `extra`
/// flags.
pub fn start(hub: &Path, subscriber_queue: u64, extra: &[String]) -> Result<Hub> {
    let mut flags = load_flags(subscriber_queue);
    flags.extend(extra.iter().cloned());
    start_with(hub, &flags.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The flags of a hub under a load of many reporters:
/// - subscriber queues of `items` items, with a byte budget that never binds before the item
///   count (events are far smaller than 64 KiB), so the figures stay about items;
/// - every synthetic reporter connects from 127.0.0.1, as many nodes behind one NAT would,
///   so the per-peer connection cap is raised the way such a deployment would raise it.
pub fn load_flags(items: u64) -> Vec<String> {
    vec![
        "--subscriber-queue".into(),
        items.to_string(),
        "--subscriber-queue-bytes".into(),
        items.saturating_mul(64 << 10).to_string(),
        "--max-connections-per-peer".into(),
        "4096".into(),
    ]
}

/// Starts a fresh in-memory hub with these extra flags.
pub fn start_with(hub: &Path, flags: &[&str]) -> Result<Hub> {
    start_on(hub, ":memory:", flags)
}

/// Starts a hub on the database `db` (a file, `:memory:` or a `postgres://` URL) with these
/// extra flags.
pub fn start_on(hub: &Path, db: &str, flags: &[&str]) -> Result<Hub> {
    let peer = HubCommand::new(hub)
        .db(db)
        .flags(flags.iter().copied())
        .start()?;
    Ok(Hub {
        url: peer.url(),
        peer,
    })
}
