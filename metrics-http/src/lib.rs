//! The `/metrics` endpoint of the tapper and the hub: binds `--metrics-listen` (port 0
//! allowed) and serves a prometheus-client registry as OpenMetrics text until told to stop.

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
}

impl MetricsEndpoint {
    /// Binds `addr` now, so a bad address is an error at start, and logs the bound address.
    pub async fn bind(addr: SocketAddr) -> Result<Self, BindError> {
        let bind_error = |source| BindError { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        tracing::info!("metrics on http://{local_addr}/metrics");
        Ok(Self {
            listener,
            local_addr,
        })
    }

    /// The bound address (the chosen port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `GET /metrics` from `registry` until `stop` resolves.
    pub async fn serve(
        self,
        registry: Registry,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = Router::new()
            .route("/metrics", get(scrape))
            .with_state(Arc::new(Mutex::new(registry)));
        axum::serve(self.listener, app)
            .with_graceful_shutdown(stop)
            .await
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
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn serves_openmetrics_on_a_chosen_port() {
        let mut registry = Registry::default();
        let counter = Counter::<u64>::default();
        counter.inc_by(7);
        registry.register("demo_things", "Things seen", counter);
        let endpoint = MetricsEndpoint::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = endpoint.local_addr();
        assert_ne!(addr.port(), 0);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(endpoint.serve(registry, async {
            let _ = stopped.await;
        }));
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        conn.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.contains(OPENMETRICS), "{reply}");
        assert!(reply.contains("demo_things_total 7\n"), "{reply}");
        assert!(reply.trim_end().ends_with("# EOF"), "{reply}");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_taken_address_is_a_clear_error() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let err = MetricsEndpoint::bind(addr).await.err().unwrap().to_string();
        assert!(
            err.starts_with(&format!("--metrics-listen {addr}: cannot listen")),
            "{err}"
        );
    }
}
