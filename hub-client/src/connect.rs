//! Builds gRPC channels to a hub from a URL ("http://host:port" or just "host:port").

use std::time::Duration;

use tapper_proto::v1::hub_client::HubClient;
use tonic::transport::{Channel, Endpoint};

use crate::error::ClientError;

/// Adds `http://` when the URL has no scheme.
pub fn normalize_url(url: &str) -> String {
    if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    }
}

/// An endpoint with the timeouts and keep-alives the client uses everywhere.
pub fn endpoint(url: &str, connect_timeout: Duration) -> Result<Endpoint, ClientError> {
    let url = normalize_url(url);
    Endpoint::from_shared(url.clone())
        .map_err(|e| ClientError::InvalidUrl {
            url,
            reason: e.to_string(),
        })
        .map(|e| {
            e.connect_timeout(connect_timeout)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(10))
                .keep_alive_while_idle(true)
        })
}

/// How a query client connects; [`Default`] gives the values in the field docs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// TCP connect timeout. Default 5 s.
    pub connect_timeout: Duration,
    /// Largest response message decoded, in bytes; bigger is an `OUT_OF_RANGE` error.
    /// Default 64 MiB (a `GetStats` over many groups can be large).
    pub max_decoding_message_bytes: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            max_decoding_message_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Connects a `HubClient` with [`ClientConfig::default`] (no retry; the reporter retries on
/// its own).
pub async fn connect(url: &str) -> Result<HubClient<Channel>, ClientError> {
    connect_with(url, &ClientConfig::default()).await
}

/// Connects a `HubClient` configured by `cfg` (no retry).
pub async fn connect_with(
    url: &str,
    cfg: &ClientConfig,
) -> Result<HubClient<Channel>, ClientError> {
    let channel = endpoint(url, cfg.connect_timeout)?.connect().await?;
    Ok(HubClient::new(channel).max_decoding_message_size(cfg.max_decoding_message_bytes))
}
