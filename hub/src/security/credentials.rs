//! What a call must show to pass: under mTLS a client certificate that the client CA in
//! force trusts and that names a node, and with `--tokens` a token whose role allows the
//! call. Checked when a call starts, and again on every reload of those files.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tapper_logging::LogBudget;
use tokio::sync::watch;
use tonic::{Status, codegen::http};
use tracing::info;

use crate::security::{
    listener::ConnInfo,
    node_identity::{ClientCert, NodeIdentity},
    reload::Reloadable,
    tls::ServerTls,
    tokens::Tokens,
};

/// At most one line per this interval about calls ended by a revocation.
const REVOKED_LINE_EVERY: Duration = Duration::from_secs(10);

/// The credentials in force.
pub struct Credentials {
    tokens: Option<Arc<Reloadable<Tokens>>>,
    tls: Option<Arc<Reloadable<ServerTls>>>,
    node_identity: NodeIdentity,
    revoked_lines: Mutex<LogBudget>,
}

/// What one call showed.
pub struct Shown {
    path: String,
    authorization: Option<http::HeaderValue>,
    client: Option<Arc<ClientCert>>,
}

impl Shown {
    pub fn of<B>(req: &http::Request<B>) -> Self {
        Self::of_parts(req.uri(), req.headers(), req.extensions())
    }

    /// What a request showed, from its parts (an HTTP API call).
    pub fn of_parts(
        uri: &http::Uri,
        headers: &http::HeaderMap,
        extensions: &http::Extensions,
    ) -> Self {
        Self {
            path: uri.path().to_owned(),
            authorization: headers.get(http::header::AUTHORIZATION).cloned(),
            client: extensions
                .get::<ConnInfo>()
                .and_then(|info| info.client.clone()),
        }
    }

    /// The same call showing `authorization` instead (a login session's token).
    pub fn with_authorization(self, authorization: http::HeaderValue) -> Self {
        Self {
            authorization: Some(authorization),
            ..self
        }
    }

    /// Whether the call showed an `Authorization` header.
    pub fn has_authorization(&self) -> bool {
        self.authorization.is_some()
    }
}

/// Wakes after a reload of the tokens or the TLS files.
pub struct Reloads {
    tokens: Option<watch::Receiver<u64>>,
    tls: Option<watch::Receiver<u64>>,
}

impl Reloads {
    /// Resolves after the next reload; never when nothing can be reloaded.
    pub async fn next(&mut self) {
        async fn changed(rx: Option<&mut watch::Receiver<u64>>) -> bool {
            match rx {
                Some(rx) => rx.changed().await.is_ok(),
                None => false,
            }
        }
        tokio::select! {
            true = changed(self.tokens.as_mut()) => {}
            true = changed(self.tls.as_mut()) => {}
            else => std::future::pending().await,
        }
    }
}

impl Credentials {
    pub fn new(
        tokens: Option<Arc<Reloadable<Tokens>>>,
        tls: Option<Arc<Reloadable<ServerTls>>>,
        node_identity: NodeIdentity,
    ) -> Arc<Self> {
        Arc::new(Self {
            tokens,
            tls,
            node_identity,
            revoked_lines: Mutex::new(LogBudget::one_per(REVOKED_LINE_EVERY)),
        })
    }

    /// Whether any call can be refused (tokens, or client certificates).
    pub fn required(&self) -> bool {
        self.tokens.is_some()
            || self
                .tls
                .as_ref()
                .is_some_and(|tls| tls.get().client_verifier.is_some())
    }

    /// Reloads from now on.
    pub fn reloads(&self) -> Reloads {
        Reloads {
            tokens: self.tokens.as_ref().map(|t| t.changes()),
            tls: self.tls.as_ref().map(|t| t.changes()),
        }
    }

    /// Whether `shown` passes with the credentials in force; else the refusal.
    pub fn check(&self, shown: &Shown) -> Result<(), Status> {
        if let Some(verifier) = self
            .tls
            .as_ref()
            .and_then(|t| t.get().client_verifier.clone())
        {
            let Some(client) = &shown.client else {
                return Err(Status::unauthenticated(
                    "this hub requires a client certificate",
                ));
            };
            client.verify(verifier.as_ref()).map_err(|err| {
                Status::unauthenticated(format!(
                    "the client certificate is not trusted by the hub's client CA in force \
                     ({err}); connect again with a certificate it trusts"
                ))
            })?;
            if client.identity.is_none() {
                return Err(Status::unauthenticated(format!(
                    "the client certificate names no node; the hub reads the node from {}",
                    self.node_identity
                )));
            }
        }
        if let Some(tokens) = &self.tokens {
            let header = shown.authorization.as_ref().map(|v| v.as_bytes());
            tokens.get().authorize(&shown.path, header)?;
        }
        Ok(())
    }

    /// Resolves with the refusal once a reload (seen by `reloads`, taken before the call's
    /// first check) takes the credentials of `shown` away.
    pub async fn revoked(self: Arc<Self>, shown: Shown, mut reloads: Reloads) -> Status {
        loop {
            reloads.next().await;
            if let Err(status) = self.check(&shown) {
                let due = self
                    .revoked_lines
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .due();
                if let Some(unlogged) = due {
                    info!(call = %shown.path, reason = %status.message(), unlogged,
                          "ending a call whose credentials a reload revoked");
                }
                return status;
            }
        }
    }
}
