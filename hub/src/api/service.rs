//! The `tapper.v1.Hub` gRPC service: thin glue from each RPC to the module that serves it
//! (Subscribe has its own route, [`crate::api::subscribe_route`]).

use std::{pin::Pin, sync::Arc};

use tapper_proto::v1::{
    GetStatsRequest, GetStatsResponse, ListTappersRequest, ListTappersResponse, ReportRequest,
    ReportResponse, SubscribeRequest, SubscribeResponse, hub_server::Hub,
};
use tokio::sync::mpsc;
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    api::list_tappers,
    api::{report, state::HubState, stats},
    security::listener::ConnInfo,
};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The Hub service over shared state.
pub struct HubService {
    state: Arc<HubState>,
}

impl HubService {
    pub fn new(state: Arc<HubState>) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl Hub for HubService {
    type ReportStream = BoxStream<ReportResponse>;
    type SubscribeStream = BoxStream<SubscribeResponse>;

    async fn report(
        &self,
        request: Request<Streaming<ReportRequest>>,
    ) -> Result<Response<Self::ReportStream>, Status> {
        let peer = match request.extensions().get::<ConnInfo>() {
            Some(info) => report::Peer {
                addr: info.remote_addr.to_string(),
                identity: info.client.as_ref().and_then(|c| c.identity.clone()),
            },
            None => report::Peer {
                addr: String::new(),
                identity: None,
            },
        };
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(report::serve(
            self.state.clone(),
            request.into_inner(),
            peer,
            tx,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    /// Not reached: [`crate::api::subscribe_route`] serves Subscribe ahead of the generated server,
    /// so that items encoded once go out as they are.
    async fn subscribe(
        &self,
        _request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        Err(Status::internal(
            "Subscribe reached the generated server instead of the hub's own route",
        ))
    }

    async fn get_stats(
        &self,
        request: Request<GetStatsRequest>,
    ) -> Result<Response<GetStatsResponse>, Status> {
        Ok(Response::new(
            stats::get_stats(&self.state, request.into_inner()).await?,
        ))
    }

    async fn list_tappers(
        &self,
        request: Request<ListTappersRequest>,
    ) -> Result<Response<ListTappersResponse>, Status> {
        Ok(Response::new(
            list_tappers::list_tappers(&self.state, request.into_inner()).await?,
        ))
    }
}
