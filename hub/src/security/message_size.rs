//! The Hub service with its own request-size limit: tonic refuses an oversized message from its
//! length prefix (before buffering it), and its OUT_OF_RANGE becomes INVALID_ARGUMENT naming it.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
};

use http_body::Frame;
use http_body_util::BodyExt;
use prost::Message;
use tapper_proto::{
    FILE_DESCRIPTOR_SET,
    v1::hub_server::{Hub, HubServer},
};
use tonic::{
    Code, Status,
    body::Body,
    codegen::{BoxFuture, Service, http},
    server::NamedService,
};

/// Default largest request message: the wire's limit.
pub use tapper_proto::limits::DEFAULT_MAX_MESSAGE_BYTES;

/// Builds the Hub server that decodes requests of at most `max_message_bytes`, with the
/// routes `route` puts ahead of it (which apply the same limit).
pub fn hub_server<T: Hub, S>(
    service: T,
    max_message_bytes: usize,
    route: impl FnOnce(HubServer<T>) -> S,
) -> SizeLimited<S> {
    SizeLimited {
        inner: route(HubServer::new(service).max_decoding_message_size(max_message_bytes)),
        limit: max_message_bytes,
    }
}

/// A gRPC service whose "message too large" errors are INVALID_ARGUMENT naming the message.
#[derive(Debug, Clone)]
pub struct SizeLimited<S> {
    inner: S,
    limit: usize,
}

impl<S: NamedService> NamedService for SizeLimited<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for SizeLimited<S>
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
        let rewrite = Rewrite {
            message: request_message(req.uri().path()),
            limit: self.limit,
        };
        let response = self.inner.call(req);
        Box::pin(async move {
            let (mut parts, body) = response.await?.into_parts();
            // A unary call fails in the headers (trailers-only); a stream in its trailers.
            rewrite.apply(&mut parts.headers);
            let body = body.map_frame(move |frame| match frame.into_trailers() {
                Ok(mut trailers) => {
                    rewrite.apply(&mut trailers);
                    Frame::trailers(trailers)
                }
                Err(frame) => frame,
            });
            Ok(http::Response::from_parts(parts, Body::new(body)))
        })
    }
}

/// Rewrites tonic's size error for one call.
#[derive(Clone)]
struct Rewrite {
    message: Arc<str>,
    limit: usize,
}

impl Rewrite {
    fn apply(&self, headers: &mut http::HeaderMap) {
        let Some(status) = Status::from_header_map(headers) else {
            return;
        };
        // tonic: "Error, decoded message length too large: found N bytes, the limit is: L bytes"
        if status.code() != Code::OutOfRange || !status.message().contains("length too large") {
            return;
        }
        let size = status
            .message()
            .split("found ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .map(|n| format!(" of {n} bytes"))
            .unwrap_or_default();
        let invalid = Status::invalid_argument(format!(
            "{}: message{size} exceeds the limit of {} bytes",
            self.message, self.limit
        ));
        headers.remove(Status::GRPC_STATUS_DETAILS);
        // The new message is plain ASCII, so writing it cannot fail.
        let _ = invalid.add_header(headers);
    }
}

/// The request message type of a gRPC path ("/tapper.v1.Hub/Report" -> "ReportRequest"), from
/// the descriptor set; "request" for a path it does not know.
fn request_message(path: &str) -> Arc<str> {
    static BY_PATH: OnceLock<HashMap<String, Arc<str>>> = OnceLock::new();
    let by_path = BY_PATH.get_or_init(|| {
        let fds = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET)
            .expect("the built-in descriptor set decodes");
        let mut map = HashMap::new();
        for file in &fds.file {
            for service in &file.service {
                for method in &service.method {
                    let input = method.input_type();
                    let name = input.rsplit('.').next().unwrap_or(input);
                    map.insert(
                        format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                        Arc::from(name),
                    );
                }
            }
        }
        map
    });
    by_path
        .get(path)
        .cloned()
        .unwrap_or_else(|| Arc::from("request"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_messages_come_from_the_descriptor_set() {
        assert_eq!(&*request_message("/tapper.v1.Hub/Report"), "ReportRequest");
        assert_eq!(
            &*request_message("/tapper.v1.Hub/GetStats"),
            "GetStatsRequest"
        );
        assert_eq!(&*request_message("/other.Svc/X"), "request");
    }

    #[test]
    fn only_tonics_size_error_is_rewritten() {
        let rewrite = Rewrite {
            message: Arc::from("ReportRequest"),
            limit: 100,
        };
        let status_of = |s: Status| {
            let mut h = http::HeaderMap::new();
            s.add_header(&mut h).unwrap();
            rewrite.apply(&mut h);
            Status::from_header_map(&h).unwrap()
        };
        let s = status_of(Status::out_of_range(
            "Error, decoded message length too large: found 250 bytes, the limit is: 100 bytes",
        ));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(
            s.message(),
            "ReportRequest: message of 250 bytes exceeds the limit of 100 bytes"
        );
        let other = status_of(Status::out_of_range("seq beyond the end"));
        assert_eq!(other.code(), Code::OutOfRange);
        assert_eq!(other.message(), "seq beyond the end");
    }
}
