//! Builds gRPC channels to a hub from a URL (`http://host:port`, `https://host:port` for TLS,
//! or just `host:port` for plaintext), with the token on every call.

use std::time::Duration;

use tapper_proto::v1::hub_client::HubClient;
use tonic::{
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint},
};

use crate::{
    credentials::{Bearer, Credentials},
    error::ClientError,
};

/// The channel every client uses: TLS or not, with the token interceptor.
pub type HubChannel = InterceptedService<Channel, Bearer>;

/// Adds `http://` when the URL has no scheme.
pub fn normalize_url(url: &str) -> String {
    if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    }
}

/// An endpoint with the timeouts and keep-alives the client uses everywhere, and TLS for
/// `https://` (never a plaintext fallback).
pub fn endpoint(
    url: &str,
    connect_timeout: Duration,
    credentials: &Credentials,
) -> Result<Endpoint, ClientError> {
    let url = normalize_url(url);
    let invalid = |reason: String| ClientError::InvalidUrl {
        url: url.clone(),
        reason,
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid("use http:// or https://".into()));
    }
    let mut endpoint = Endpoint::from_shared(url.clone()).map_err(|e| invalid(e.to_string()))?;
    if let Some(tls) = credentials.tls_config(&url)? {
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| invalid(e.to_string()))?;
    }
    Ok(endpoint
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true))
}

/// Connects `url` and wraps the channel with the token interceptor.
pub(crate) async fn channel(
    url: &str,
    connect_timeout: Duration,
    credentials: &Credentials,
) -> Result<HubChannel, ClientError> {
    let bearer = credentials.bearer()?;
    let channel = endpoint(url, connect_timeout, credentials)?
        .connect()
        .await?;
    Ok(InterceptedService::new(channel, bearer))
}

/// How a query client connects; [`Default`] gives the values in the field docs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// TCP connect timeout. Default 5 s.
    pub connect_timeout: Duration,
    /// Largest response message decoded, in bytes; bigger is an `OUT_OF_RANGE` error.
    /// Default 64 MiB (a `GetStats` over many groups can be large).
    pub max_decoding_message_bytes: usize,
    /// TLS files and token. Default: none.
    pub credentials: Credentials,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            max_decoding_message_bytes: 64 * 1024 * 1024,
            credentials: Credentials::default(),
        }
    }
}

/// Connects a `HubClient` with [`ClientConfig::default`] (no retry; the reporter retries on
/// its own).
pub async fn connect(url: &str) -> Result<HubClient<HubChannel>, ClientError> {
    connect_with(url, &ClientConfig::default()).await
}

/// Connects a `HubClient` configured by `cfg` (no retry).
pub async fn connect_with(
    url: &str,
    cfg: &ClientConfig,
) -> Result<HubClient<HubChannel>, ClientError> {
    let channel = channel(url, cfg.connect_timeout, &cfg.credentials).await?;
    Ok(HubClient::new(channel).max_decoding_message_size(cfg.max_decoding_message_bytes))
}
