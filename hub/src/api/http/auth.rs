//! Who may call the HTTP API. gRPC's guard does not cover these routes, so each call is
//! checked here against the same credentials: a read or admin token as a bearer header, or
//! the page's session cookie standing for one (checked again on every call, so a reload
//! that revokes the token ends the session too).

use std::{future::Future, pin::Pin, sync::Arc};

use axum::http::{HeaderMap, HeaderValue, header, request::Parts};
use tonic::Status;

use crate::{
    api::http::{reply::ApiError, session::Sessions},
    security::{
        credentials::{Credentials, Reloads, Shown},
        listener::ConnInfo,
    },
};

/// The name of the page's session cookie.
pub const SESSION_COOKIE: &str = "tapper_session";

/// The credentials in force and the page's login sessions.
pub struct WebAuth {
    credentials: Arc<Credentials>,
    pub sessions: Sessions,
    /// The cookie's `Path`.
    pub cookie_path: String,
    /// Whether the cookie is `Secure` (the listener serves TLS).
    pub secure: bool,
}

/// A call that passed: what ends a stream it opened when a reload revokes its credentials.
pub struct Grant {
    watched: Option<(Arc<Credentials>, Shown, Reloads)>,
}

impl Grant {
    /// Resolves with the refusal once the credentials of the call are revoked; never
    /// without credentials to check.
    pub fn revoked(self) -> Pin<Box<dyn Future<Output = Status> + Send>> {
        match self.watched {
            Some((credentials, shown, reloads)) => Box::pin(credentials.revoked(shown, reloads)),
            None => Box::pin(std::future::pending()),
        }
    }
}

impl WebAuth {
    pub fn new(credentials: Arc<Credentials>, cookie_path: String, secure: bool) -> Self {
        Self {
            credentials,
            sessions: Sessions::default(),
            cookie_path,
            secure,
        }
    }

    /// Whether calls need credentials (`--tokens`, or client certificates).
    pub fn required(&self) -> bool {
        self.credentials.required()
    }

    /// Checks one call; a call that passes lifts its connection's `--auth-timeout`.
    pub fn authorize(&self, parts: &Parts) -> Result<Grant, ApiError> {
        if !self.required() {
            mark_authorized(parts);
            return Ok(Grant { watched: None });
        }
        let mut shown = Shown::of_parts(&parts.uri, &parts.headers, &parts.extensions);
        let session = session_id(&parts.headers);
        if !shown.has_authorization() {
            let Some(id) = &session else {
                return Err(ApiError::unauthorized(
                    "this hub requires a token: send Authorization: Bearer <read token>, or log \
                     in with POST api/v1/session",
                ));
            };
            let Some(authorization) = self.sessions.authorization(id) else {
                return Err(ApiError::unauthorized(
                    "the session expired or was logged out; log in again",
                ));
            };
            shown = shown.with_authorization(authorization);
        }
        self.check(parts, shown).inspect_err(|_| {
            if let Some(id) = &session {
                self.sessions.remove(id);
            }
        })
    }

    /// Checks the token of a login (`Bearer TOKEN` as the header would carry it).
    pub fn check_login(&self, parts: &Parts, authorization: HeaderValue) -> Result<(), ApiError> {
        let shown = Shown::of_parts(&parts.uri, &parts.headers, &parts.extensions)
            .with_authorization(authorization);
        self.check(parts, shown).map(drop)
    }

    fn check(&self, parts: &Parts, shown: Shown) -> Result<Grant, ApiError> {
        // Watch reloads from before the check, so that none slips in between.
        let reloads = self.credentials.reloads();
        self.credentials.check(&shown)?;
        mark_authorized(parts);
        Ok(Grant {
            watched: Some((self.credentials.clone(), shown, reloads)),
        })
    }
}

/// The session id in the request's cookies, if any.
pub fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

fn mark_authorized(parts: &Parts) {
    if let Some(info) = parts.extensions.get::<ConnInfo>() {
        info.authorized.mark();
    }
}
