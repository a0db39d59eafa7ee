//! Starts a hub (`hub --listen 127.0.0.1:0 --db :memory:`) as a benchmark peer and learns
//! its address from the "hub listening on ADDR" line.

use std::{path::Path, process::Command, time::Duration};

use anyhow::{Context, Result};

use crate::peer::{Peer, Stream};

pub struct Hub {
    pub peer: Peer,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

/// Starts a fresh in-memory hub whose subscribers may queue `subscriber_queue` items.
pub fn start(hub: &Path, subscriber_queue: u64) -> Result<Hub> {
    let mut cmd = Command::new(hub);
    cmd.args(["--listen", "127.0.0.1:0", "--db", ":memory:"])
        .args(["--subscriber-queue", &subscriber_queue.to_string()])
        .env("RUST_LOG", "info");
    let peer = Peer::spawn(
        "hub",
        cmd,
        "hub listening on",
        Stream::Stderr,
        false,
        Duration::from_secs(30),
    )?;
    let line = peer
        .first_line_with("hub listening on")
        .context("the hub's listening line vanished")?;
    let addr = line
        .rsplit("hub listening on")
        .next()
        .map(|a| a.trim().to_owned())
        .context("no address on the hub's listening line")?;
    Ok(Hub {
        peer,
        url: format!("http://{addr}"),
    })
}
