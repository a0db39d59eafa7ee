//! The Subscribe call on the wire, served ahead of the generated Hub server (which keeps
//! every other call): its codec writes each [`Reply`] as its encoded bytes.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use tapper_proto::{
    codec::{HubCodec, HubDecoder},
    v1::{SubscribeRequest, SubscribeResponse, hub_server::SERVICE_NAME},
};
use tonic::{
    Status,
    body::Body,
    codec::{BufferSettings, Codec, EncodeBuf, Encoder},
    codegen::{BoxFuture, GrpcMethod, Service, StdError, http},
    server::{Grpc, NamedService, ServerStreamingService},
};

use crate::api::{final_items::ClosingStream, state::HubState, subscribe, subscribe_reply::Reply};

/// Encodes replies, decodes requests as the generated server does.
#[derive(Debug, Clone, Copy, Default)]
struct SubscribeCodec;

impl Codec for SubscribeCodec {
    type Encode = Reply;
    type Decode = SubscribeRequest;
    type Encoder = ReplyEncoder;
    type Decoder = HubDecoder<SubscribeRequest>;

    fn encoder(&mut self) -> Self::Encoder {
        ReplyEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        HubCodec::<SubscribeResponse, SubscribeRequest>::default().decoder()
    }
}

#[derive(Debug)]
struct ReplyEncoder;

impl Encoder for ReplyEncoder {
    type Item = Reply;
    type Error = Status;

    fn encode(&mut self, item: Reply, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buf)
            .map_err(|e| Status::internal(format!("encoding a response: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// The Subscribe method over the hub's state.
struct Method(Arc<HubState>);

impl ServerStreamingService<SubscribeRequest> for Method {
    type Response = Reply;
    type ResponseStream = ClosingStream<Reply>;
    type Future = BoxFuture<tonic::Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: tonic::Request<SubscribeRequest>) -> Self::Future {
        let opened =
            subscribe::plan(request.get_ref()).and_then(|plan| subscribe::open(&self.0, plan));
        Box::pin(async move { Ok(tonic::Response::new(opened?)) })
    }
}

/// The Hub server `inner` with Subscribe served here.
#[derive(Clone)]
pub struct WithSubscribe<S> {
    inner: S,
    state: Arc<HubState>,
    max_message_bytes: usize,
}

/// Serves Subscribe over `state` (requests of at most `max_message_bytes`), and every
/// other call with `inner`.
pub fn with_subscribe<S>(
    inner: S,
    state: Arc<HubState>,
    max_message_bytes: usize,
) -> WithSubscribe<S> {
    WithSubscribe {
        inner,
        state,
        max_message_bytes,
    }
}

impl<S: NamedService> NamedService for WithSubscribe<S> {
    const NAME: &'static str = S::NAME;
}

/// Whether `path` is the Subscribe call's.
fn is_subscribe(path: &str) -> bool {
    path.strip_prefix('/')
        .and_then(|p| p.strip_prefix(SERVICE_NAME))
        == Some("/Subscribe")
}

impl<S, B> Service<http::Request<B>> for WithSubscribe<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if !is_subscribe(req.uri().path()) {
            return Box::pin(self.inner.call(req));
        }
        req.extensions_mut()
            .insert(GrpcMethod::new(SERVICE_NAME, "Subscribe"));
        let method = Method(self.state.clone());
        let mut grpc = Grpc::new(SubscribeCodec)
            .apply_max_message_size_config(Some(self.max_message_bytes), None);
        Box::pin(async move { Ok(grpc.server_streaming(method, req).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_subscribe_path_is_served_here() {
        assert!(is_subscribe("/tapper.v1.Hub/Subscribe"));
        assert!(!is_subscribe("/tapper.v1.Hub/Report"));
        assert!(!is_subscribe("/tapper.v1.Hub/SubscribeX"));
        assert!(!is_subscribe("/other.Hub/Subscribe"));
    }
}
