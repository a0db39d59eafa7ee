//! The token check in front of a gRPC service: each call's `authorization` header against
//! the tokens in force (see [`crate::tokens`]); refused calls never reach the service.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use tonic::{
    body::Body,
    codegen::{BoxFuture, Service, http},
    server::NamedService,
};

use crate::{reload::Reloadable, tokens::Tokens};

/// Wraps `inner`; with `tokens` `None` every call passes.
pub fn guard<S>(inner: S, tokens: Option<Arc<Reloadable<Tokens>>>) -> Guard<S> {
    Guard { inner, tokens }
}

/// A service that answers UNAUTHENTICATED or PERMISSION_DENIED itself when the token does
/// not allow the call.
#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    tokens: Option<Arc<Reloadable<Tokens>>>,
}

impl<S: NamedService> NamedService for Guard<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for Guard<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if let Some(tokens) = &self.tokens {
            let header = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|v| v.as_bytes());
            if let Err(status) = tokens.get().authorize(req.uri().path(), header) {
                return Box::pin(async move { Ok(status.into_http()) });
            }
        }
        Box::pin(self.inner.call(req))
    }
}
