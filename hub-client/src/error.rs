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

impl ClientError {
    /// The hub refused these credentials (an unknown token, a token of a role that may
    /// not make this call, a certificate naming another node): trying again with the same
    /// ones cannot help.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Status(s) if is_refusal(s.code()))
    }
}

/// Whether a status `code` is a refusal of the caller's credentials (see
/// [`ClientError::is_refusal`]).
pub fn is_refusal(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
    )
}

/// An error and its sources on one line ("cannot talk to the hub: tcp connect error:
/// Connection refused (os error 111)"), skipping links that repeat the previous one, with
/// what to do first when [`connection_hint`] recognizes it.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        // A status's own text repeats its code and message, with its source's Debug form:
        // the links around it say the same readably.
        if cause.downcast_ref::<tonic::Status>().is_none() {
            let text = cause.to_string();
            if parts.last() != Some(&text) {
                parts.push(text);
            }
        }
        source = cause.source();
    }
    let chain = parts.join(": ");
    match connection_hint(&chain) {
        Some(hint) => format!("{hint} ({chain})"),
        None => chain,
    }
}

/// What to do about a connection error, recognized from its text: TLS spoken to a
/// plaintext hub or the reverse, or a certificate one side refuses. `None` otherwise.
pub fn connection_hint(error_text: &str) -> Option<&'static str> {
    const TLS_HUB: &str = "the hub speaks TLS: use an https:// URL (with --tls-ca if a private \
                           CA signed its certificate)";
    const UNTRUSTED_HUB: &str = "the hub's certificate is not signed by a CA this client \
                                 trusts: give --tls-ca with the CA that signed it";
    const REFUSED_CLIENT: &str = "the hub refuses this client certificate: use one signed by \
                                  the hub's --tls-client-ca";
    const MAYBE_TLS: &str =
        "the hub closed the connection at once; if it speaks TLS, use an https:// URL";
    const MAYBE_MTLS: &str = "the hub closed the connection; if it asks for a client \
                              certificate, give --tls-cert and --tls-key";
    // Each entry: every mark must be in the text.
    const HINTS: &[(&[&str], &str)] = &[
        // The hub's own answer to plaintext on its TLS port (an HTTP/2 GOAWAY's text).
        (&["this hub speaks TLS"], TLS_HUB),
        (&["frame with invalid size"], TLS_HUB),
        (&["FRAME_SIZE_ERROR"], TLS_HUB),
        // A TLS hub may answer plaintext HTTP/2 by closing at once (seen by the client as
        // a closed connection or a broken pipe): say what it may be.
        (&["http://", "connection closed"], MAYBE_TLS),
        (&["http://", "broken pipe"], MAYBE_TLS),
        (&["http://", "connection was not ready"], MAYBE_TLS),
        (
            &["InvalidContentType"],
            "the hub speaks plaintext: use an http:// URL",
        ),
        (
            &["CertificateRequired"],
            "the hub asks for a client certificate: give --tls-cert and --tls-key",
        ),
        // An mTLS hub's refusal may arrive after the client's first write: a broken pipe
        // or a closed connection.
        (&["https://", "broken pipe"], MAYBE_MTLS),
        (&["https://", "connection closed"], MAYBE_MTLS),
        (&["https://", "connection was not ready"], MAYBE_MTLS),
        (&["UnknownIssuer"], UNTRUSTED_HUB),
        (&["BadSignature"], UNTRUSTED_HUB),
        (
            &["NotValidForName"],
            "the hub's certificate does not name this address: connect by a name its \
             certificate lists",
        ),
        (&["alert: UnknownCA"], REFUSED_CLIENT),
        (&["alert: BadCertificate"], REFUSED_CLIENT),
    ];
    HINTS
        .iter()
        .find(|(marks, _)| marks.iter().all(|m| error_text.contains(m)))
        .map(|(_, hint)| *hint)
}

#[cfg(test)]
mod tests {
    use super::{ClientError, connection_hint};

    #[test]
    fn only_refused_credentials_are_refusals() {
        let status = |code| ClientError::Status(tonic::Status::new(code, "x"));
        assert!(status(tonic::Code::Unauthenticated).is_refusal());
        assert!(status(tonic::Code::PermissionDenied).is_refusal());
        assert!(!status(tonic::Code::Unavailable).is_refusal());
        assert!(!ClientError::Protocol("closed".into()).is_refusal());
    }

    #[test]
    fn tls_mismatches_and_refused_certificates_get_a_hint() {
        let hint = |text| connection_hint(text).unwrap_or("");
        assert!(
            hint(
                "connection error received: unspecific protocol error detected \
                  (b\"this hub speaks TLS: use https://127.0.0.1:1\")"
            )
            .starts_with("the hub speaks TLS: use an https:// URL")
        );
        assert!(hint("connection error detected: frame with invalid size").contains("https://"));
        assert!(hint("received corrupt message of type InvalidContentType").contains("http://"));
        assert!(hint("hub http://h:1: Cancelled: connection closed").contains("if it speaks TLS"));
        assert!(
            hint("hub http://h:1: Cancelled: transport error: connection was not ready")
                .contains("if it speaks TLS")
        );
        assert!(hint("received fatal alert: CertificateRequired").contains("--tls-cert"));
        assert!(hint("invalid peer certificate: UnknownIssuer").contains("--tls-ca"));
        assert!(hint("hub https://h:1: connection closed").contains("client certificate"));
        assert_eq!(
            connection_hint("tcp connect error: Connection refused"),
            None
        );
    }
}
