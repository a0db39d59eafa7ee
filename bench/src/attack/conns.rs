//! Connections held: K silent TCP connections that never send the HTTP/2 preface; how many
//! the hub still holds after its handshake timeout, its open descriptors, and how long a
//! real client waits for a ListTappers answer meanwhile.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use hub_client::proto::v1::ListTappersRequest;
use serde::Serialize;
use tokio::net::TcpStream;

use super::Options;
use crate::hub;

/// How often the hub's descriptors are counted while the connections are held.
const FD_POLL: Duration = Duration::from_millis(20);
/// A connect or a ListTappers call taking longer than this counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Extra wait beyond the handshake timeout before counting what is still open.
const MARGIN: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub run: usize,
    pub silent: u64,
    /// Silent connections this process could open (connect refused or timed out: failed).
    pub opened: u64,
    pub connect_failed: u64,
    /// How long opening them took (the first may be closed before the last is open).
    pub open_secs: f64,
    pub handshake_timeout_secs: f64,
    /// Silent connections still open `handshake_timeout + 1.5 s` after the last one opened.
    pub still_open: u64,
    /// The hub's open descriptors before, at the peak (sampled every 20 ms) and after.
    pub fds_before: u64,
    pub fds_peak: u64,
    pub fds_after: u64,
    /// A fresh client's connect + ListTappers time before, and while the silent
    /// connections are held (None: no answer within 10 s).
    pub list_ms_before: Option<f64>,
    pub list_ms_held: Option<f64>,
}

pub async fn measure(opts: &Options, run: usize) -> Result<Sample> {
    raise_fd_limit();
    let timeout = format!("{}ms", opts.handshake_timeout.as_millis());
    let hub = hub::start_with(&opts.hub, &["--handshake-timeout", &timeout])?;
    let pid = hub.peer.pid();
    let addr = hub.url.trim_start_matches("http://").to_owned();
    let fds_before = fd_count(pid)?;
    let list_ms_before = list_tappers_ms(&hub.url).await;
    let (stop, peak) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let poller = tokio::spawn(poll_fds(pid, stop.clone(), peak.clone()));
    let (mut held, mut connect_failed) = (Vec::new(), 0);
    let opening = Instant::now();
    for _ in 0..opts.silent {
        match tokio::time::timeout(CALL_TIMEOUT, TcpStream::connect(&addr)).await {
            Ok(Ok(s)) => held.push(s),
            _ => connect_failed += 1,
        }
    }
    let last_opened = Instant::now();
    let list_ms_held = list_tappers_ms(&hub.url).await;
    tokio::time::sleep_until((last_opened + opts.handshake_timeout + MARGIN).into()).await;
    let still_open = held.iter().filter(|s| is_open(s)).count() as u64;
    stop.store(true, Ordering::Relaxed);
    poller.await?;
    let fds_after = fd_count(pid)?;
    let opened = held.len() as u64;
    drop(held);
    hub.peer.stop(Duration::from_secs(10))?;
    Ok(Sample {
        run,
        silent: opts.silent,
        opened,
        connect_failed,
        open_secs: last_opened.duration_since(opening).as_secs_f64(),
        handshake_timeout_secs: opts.handshake_timeout.as_secs_f64(),
        still_open,
        fds_before,
        fds_peak: peak.load(Ordering::Relaxed).max(fds_before),
        fds_after,
        list_ms_before,
        list_ms_held,
    })
}

/// A connection is open while a read would block; EOF or an error means the hub closed it.
fn is_open(s: &TcpStream) -> bool {
    let mut buf = [0u8; 1];
    matches!(s.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Connect + ListTappers on a fresh connection, in ms; None if it failed or took too long.
async fn list_tappers_ms(url: &str) -> Option<f64> {
    let start = Instant::now();
    let call = async {
        let mut c = hub_client::connect(url).await.ok()?;
        c.list_tappers(ListTappersRequest::default()).await.ok()
    };
    tokio::time::timeout(CALL_TIMEOUT, call).await.ok()??;
    Some(start.elapsed().as_secs_f64() * 1000.0)
}

async fn poll_fds(pid: u32, stop: Arc<AtomicBool>, peak: Arc<AtomicU64>) {
    while !stop.load(Ordering::Relaxed) {
        if let Ok(n) = fd_count(pid) {
            peak.fetch_max(n, Ordering::Relaxed);
        }
        tokio::time::sleep(FD_POLL).await;
    }
}

/// Open descriptors of a process: the entries of `/proc/<pid>/fd`.
fn fd_count(pid: u32) -> Result<u64> {
    let dir = format!("/proc/{pid}/fd");
    Ok(std::fs::read_dir(&dir)
        .with_context(|| format!("reading {dir}"))?
        .count() as u64)
}

/// This process holds the silent connections: lift its soft descriptor limit to the hard one.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
