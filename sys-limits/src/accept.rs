//! Accepting connections when descriptors run out: EMFILE, ENFILE or ENOBUFS leave the
//! connection queued, so retrying at once would spin; wait, longer each time, and say so.

use std::{net::SocketAddr, time::Duration};

use tapper_logging::LogBudget;
use tokio::net::{TcpListener, TcpStream};

/// The first and the longest pause between accept attempts after errors.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// At most one warning about failing accepts per this interval.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Accepts from one listener, backing off on errors.
pub struct Acceptor {
    /// Names the listener in the log, e.g. `metrics`.
    what: &'static str,
    /// What the operator can do, e.g. which limit to raise or lower.
    advice: &'static str,
    backoff: Duration,
    warnings: LogBudget,
}

impl Acceptor {
    pub fn new(what: &'static str, advice: &'static str) -> Self {
        Self {
            what,
            advice,
            backoff: Duration::ZERO,
            warnings: LogBudget::one_per(WARN_EVERY),
        }
    }

    /// The next connection, waiting out accept errors. Cancel-safe.
    pub async fn accept(&mut self, listener: &TcpListener) -> (TcpStream, SocketAddr) {
        loop {
            match listener.accept().await {
                Ok(accepted) => {
                    self.backoff = Duration::ZERO;
                    return accepted;
                }
                Err(err) => {
                    self.backoff = (self.backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
                    if let Some(unlogged) = self.warnings.due() {
                        tracing::warn!(error = %err, retry_in = ?self.backoff, unlogged,
                            "{}: cannot accept a connection; {}", self.what, self.advice);
                    }
                    tokio::time::sleep(self.backoff).await;
                }
            }
        }
    }
}
