//! A call that ends when its credentials are revoked while it runs: the response ends after
//! what was already sent with the refusal's status, and the request body fails with it, so
//! the service stops reading the call too (a Report stream commits nothing more).

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::Frame;
use tokio::sync::watch;
use tokio_stream::{Stream, wrappers::WatchStream};
use tonic::{Status, body::Body, codegen::http};

/// The refusal, once there is one.
type Revocation = watch::Receiver<Option<Status>>;

/// Watches `revoked` while the call runs (until both of its bodies are dropped) and makes
/// both bodies end with the status it resolves to.
pub fn watch_call(
    req: http::Request<Body>,
    revoked: impl Future<Output = Status> + Send + 'static,
) -> (http::Request<Body>, Revocable) {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        tokio::select! {
            status = revoked => { let _ = tx.send(Some(status)); }
            () = tx.closed() => {}
        }
    });
    let request = req.map(|body| Body::new(RevocableBody::new(body, rx.clone(), Side::Request)));
    (request, Revocable(rx))
}

/// The response half of a watched call.
pub struct Revocable(Revocation);

impl Revocable {
    pub fn response(self, response: http::Response<Body>) -> http::Response<Body> {
        response.map(|body| Body::new(RevocableBody::new(body, self.0, Side::Response)))
    }
}

#[derive(Clone, Copy)]
enum Side {
    /// Fails with the status.
    Request,
    /// Ends with the status in its trailers.
    Response,
}

struct RevocableBody {
    /// `None` once revoked.
    inner: Option<Body>,
    /// `None` once revoked, or when nothing can revoke the call any more.
    revocation: Option<WatchStream<Option<Status>>>,
    side: Side,
}

impl RevocableBody {
    fn new(inner: Body, revocation: Revocation, side: Side) -> Self {
        Self {
            inner: Some(inner),
            revocation: Some(WatchStream::new(revocation)),
            side,
        }
    }

    /// The refusal, if the call was revoked now.
    fn poll_revoked(&mut self, cx: &mut Context<'_>) -> Option<Status> {
        let revocation = self.revocation.as_mut()?;
        loop {
            match Pin::new(&mut *revocation).poll_next(cx) {
                Poll::Ready(Some(Some(status))) => {
                    self.revocation = None;
                    return Some(status);
                }
                // The first value (nothing yet): wait for the next.
                Poll::Ready(Some(None)) => continue,
                Poll::Ready(None) => {
                    self.revocation = None;
                    return None;
                }
                Poll::Pending => return None,
            }
        }
    }
}

impl http_body::Body for RevocableBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if this.inner.is_some()
            && let Some(status) = this.poll_revoked(cx)
        {
            this.inner = None;
            return Poll::Ready(Some(match this.side {
                Side::Request => Err(status),
                Side::Response => {
                    let mut trailers = http::HeaderMap::new();
                    // A status the hub wrote itself: plain ASCII, so this cannot fail.
                    let _ = status.add_header(&mut trailers);
                    Ok(Frame::trailers(trailers))
                }
            }));
        }
        match this.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| http_body::SizeHint::with_exact(0), |b| b.size_hint())
    }
}
