//! Accepts `/metrics` connections within the limits: at most `max_connections` open (one
//! over the cap is closed at once and logged, rate-limited), each served over HTTP/1.1
//! with a header-read and an idle timeout; accept errors (EMFILE) back off.

use std::{sync::Arc, time::Duration};

use axum::Router;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use sys_limits::Acceptor;
use tapper_logging::LogBudget;
use tokio::{net::TcpListener, sync::Semaphore};

use crate::{ConnectionLimits, idle::IdleTimeout};

/// At most one warning per this interval about the connection cap.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `stop` resolves; connections open then run out under
/// their timeouts.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    let mut full = LogBudget::one_per(WARN_EVERY);
    let mut acceptor = Acceptor::new(
        "metrics",
        "if the process is out of descriptors, raise its open-files limit (ulimit -n) or \
         lower --metrics-max-connections",
    );
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = acceptor.accept(&listener) => accepted,
            () = &mut stop => return,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if let Some(unlogged) = full.due() {
                tracing::warn!(%peer, limit = limits.max_connections, unlogged,
                    "metrics: connection limit reached; closing a new connection (raise \
                     --metrics-max-connections if scrapers need more)");
            }
            continue;
        };
        let io = TokioIo::new(IdleTimeout::new(stream, limits.idle_timeout));
        let service = TowerToHyperService::new(app.clone());
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(io, service);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%peer, error = %err, "metrics: connection closed");
            }
            drop(slot);
        });
    }
}
