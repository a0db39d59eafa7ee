//! The `/metrics` endpoint of the tapper and the hub: binds `--metrics-listen` (port 0
//! allowed) and serves a prometheus-client registry as OpenMetrics text until told to stop,
//! within [`ConnectionLimits`] (the `--metrics-*` connection flags).

mod accept;
mod idle;
mod limits;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

pub use limits::ConnectionLimits;

/// The content type Prometheus asks for and gets.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `--metrics-listen` could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("--metrics-listen {addr}: cannot listen ({source}); pick a free address or port 0")]
pub struct BindError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// A bound, not yet serving, metrics endpoint.
pub struct MetricsEndpoint {
    listener: TcpListener,
    local_addr: SocketAddr,
    limits: ConnectionLimits,
}

impl MetricsEndpoint {
    /// Binds `addr` now, so a bad address is an error at start, and logs the bound address;
    /// connections will be held within `limits`.
    pub async fn bind(addr: SocketAddr, limits: ConnectionLimits) -> Result<Self, BindError> {
        let bind_error = |source| BindError { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        tracing::info!("metrics on http://{local_addr}/metrics");
        Ok(Self {
            listener,
            local_addr,
            limits,
        })
    }

    /// The bound address (the chosen port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `GET /metrics` from `registry` until `stop` resolves.
    pub async fn serve(self, registry: Registry, stop: impl Future<Output = ()> + Send + 'static) {
        let app = Router::new()
            .route("/metrics", get(scrape))
            .with_state(Arc::new(Mutex::new(registry)));
        accept::serve(self.listener, app, self.limits, stop).await
    }
}

async fn scrape(State(registry): State<Arc<Mutex<Registry>>>) -> impl IntoResponse {
    let mut text = String::new();
    let encoded = {
        let registry = registry.lock().unwrap_or_else(|e| e.into_inner());
        prometheus_client::encoding::text::encode(&mut text, &registry)
    };
    match encoded {
        Ok(()) => (StatusCode::OK, [(header::CONTENT_TYPE, OPENMETRICS)], text),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            "encoding the metrics failed\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
        sync::oneshot,
    };

    const GET: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

    /// Serves a registry with one counter; the sender stops it.
    async fn start(limits: ConnectionLimits) -> (SocketAddr, oneshot::Sender<()>) {
        let mut registry = Registry::default();
        let counter = Counter::<u64>::default();
        counter.inc_by(7);
        registry.register("demo_things", "Things seen", counter);
        let endpoint = MetricsEndpoint::bind("127.0.0.1:0".parse().unwrap(), limits)
            .await
            .unwrap();
        let addr = endpoint.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(endpoint.serve(registry, async {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    async fn scrape_text(addr: SocketAddr) -> String {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(GET).await.unwrap();
        let mut reply = String::new();
        conn.read_to_string(&mut reply).await.unwrap();
        reply
    }

    /// Whether the server closes `conn` within `within` (reads EOF or a reset).
    async fn closed_within(conn: &mut TcpStream, within: Duration) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(within, conn.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn serves_openmetrics_on_a_chosen_port() {
        let (addr, stop) = start(ConnectionLimits::default()).await;
        assert_ne!(addr.port(), 0);
        let reply = scrape_text(addr).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.contains(OPENMETRICS), "{reply}");
        assert!(reply.contains("demo_things_total 7\n"), "{reply}");
        assert!(reply.trim_end().ends_with("# EOF"), "{reply}");
        stop.send(()).unwrap();
    }

    #[tokio::test]
    async fn connections_over_the_cap_are_closed_and_a_freed_slot_serves_again() {
        let limits = ConnectionLimits {
            max_connections: 2,
            ..Default::default()
        };
        let (addr, stop) = start(limits).await;
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(TcpStream::connect(addr).await.unwrap());
        }
        let mut over = TcpStream::connect(addr).await.unwrap();
        assert!(closed_within(&mut over, Duration::from_secs(5)).await);
        drop(held.pop());
        // The slot is freed once the server sees the close.
        let mut served = false;
        for _ in 0..50 {
            if scrape_text(addr).await.starts_with("HTTP/1.1 200") {
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(served, "a freed slot takes a scrape again");
        stop.send(()).unwrap();
    }

    #[tokio::test]
    async fn a_partial_request_and_a_silent_connection_are_closed_in_time() {
        let limits = ConnectionLimits {
            max_connections: 4,
            header_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(300),
        };
        let (addr, stop) = start(limits).await;
        let mut partial = TcpStream::connect(addr).await.unwrap();
        partial
            .write_all(b"GET /metrics HTTP/1.1\r\nHost:")
            .await
            .unwrap();
        let mut silent = TcpStream::connect(addr).await.unwrap();
        assert!(closed_within(&mut partial, Duration::from_secs(10)).await);
        assert!(closed_within(&mut silent, Duration::from_secs(10)).await);
        stop.send(()).unwrap();
    }

    #[tokio::test]
    async fn a_taken_address_is_a_clear_error() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let err = MetricsEndpoint::bind(addr, ConnectionLimits::default())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with(&format!("--metrics-listen {addr}: cannot listen")),
            "{err}"
        );
    }
}
