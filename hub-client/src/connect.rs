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

/// Connects a `HubClient` (no retry; the reporter retries on its own).
pub async fn connect(url: &str) -> Result<HubClient<Channel>, ClientError> {
    let channel = endpoint(url, Duration::from_secs(5))?.connect().await?;
    Ok(HubClient::new(channel).max_decoding_message_size(64 * 1024 * 1024))
}
