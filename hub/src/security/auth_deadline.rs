//! `--auth-timeout`: a connection must make one authorized call within this time after its
//! handshake, or it is closed. The guard marks the connection when a call passes; until
//! then the connection's reads fail once the deadline is past.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::Context,
    time::Duration,
};

use tokio::time::Sleep;

/// Set once the connection made an authorized call (shared with the guard).
#[derive(Debug, Clone, Default)]
pub struct Authorized(Arc<AtomicBool>);

impl Authorized {
    pub fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn is_marked(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The deadline of one connection.
pub struct AuthDeadline {
    authorized: Authorized,
    /// `None` once the connection made an authorized call.
    timer: Option<Pin<Box<Sleep>>>,
}

impl AuthDeadline {
    /// A deadline `timeout` from now, and the mark that lifts it.
    pub fn start(timeout: Duration) -> (Self, Authorized) {
        let authorized = Authorized::default();
        let deadline = Self {
            authorized: authorized.clone(),
            timer: Some(Box::pin(tokio::time::sleep(timeout))),
        };
        (deadline, authorized)
    }

    /// Whether the connection must close now (the deadline passed with no authorized call);
    /// otherwise `cx` is woken at the deadline, to ask again.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(timer) = &mut self.timer else {
            return false;
        };
        if self.authorized.is_marked() {
            self.timer = None;
            return false;
        }
        timer.as_mut().poll(cx).is_ready()
    }
}
