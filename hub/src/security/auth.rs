//! The credentials check in front of a gRPC service (see [`crate::security::credentials`]): refused
//! calls never reach the service; a call that passes marks its connection as authorized
//! (`--auth-timeout`) and is ended if a reload revokes its credentials while it runs.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use tonic::{
    body::Body,
    codegen::{BoxFuture, Service, http},
    server::NamedService,
};

use crate::security::{
    credentials::{Credentials, Shown},
    listener::ConnInfo,
    revocable,
};

/// Wraps `inner` with the check of `credentials`.
pub fn guard<S>(inner: S, credentials: Arc<Credentials>) -> Guard<S> {
    Guard { inner, credentials }
}

/// A service that answers UNAUTHENTICATED or PERMISSION_DENIED itself when the call's
/// credentials do not allow it.
#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    credentials: Arc<Credentials>,
}

impl<S: NamedService> NamedService for Guard<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Guard<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let authorized = req
            .extensions()
            .get::<ConnInfo>()
            .map(|info| info.authorized.clone());
        if !self.credentials.required() {
            if let Some(authorized) = &authorized {
                authorized.mark();
            }
            return Box::pin(self.inner.call(req));
        }
        let shown = Shown::of(&req);
        // Watch reloads from before the check, so that none slips in between.
        let reloads = self.credentials.reloads();
        if let Err(status) = self.credentials.check(&shown) {
            return Box::pin(async move { Ok(status.into_http()) });
        }
        if let Some(authorized) = &authorized {
            authorized.mark();
        }
        let revoked = self.credentials.clone().revoked(shown, reloads);
        let (req, revocable) = revocable::watch_call(req, revoked);
        let response = self.inner.call(req);
        Box::pin(async move { Ok(revocable.response(response.await?)) })
    }
}
