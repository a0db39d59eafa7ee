//! Errors of the hub client library.

/// What talking to a hub can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The hub URL does not parse.
    #[error("invalid hub URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// A TLS file or the token cannot be used.
    #[error("{what}: {reason}")]
    Credentials { what: String, reason: String },
    /// A configuration value is out of range.
    #[error("invalid reporter config: {0}")]
    InvalidConfig(String),
    /// The connection could not be made or broke.
    #[error("cannot talk to the hub")]
    Transport(#[from] tonic::transport::Error),
    /// The hub answered with an error status.
    #[error("hub: {} ({:?})", .0.message(), .0.code())]
    Status(#[from] tonic::Status),
    /// The hub closed a stream unexpectedly or answered out of protocol.
    #[error("protocol: {0}")]
    Protocol(String),
}

/// An error and its sources on one line ("cannot talk to the hub: tcp connect error:
/// Connection refused (os error 111)"), skipping links that repeat the previous one.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}
