//! The `tapper.v1.Hub` gRPC service: thin glue from each RPC to the module that serves it.

use std::{pin::Pin, sync::Arc};

use tapper_proto::v1::{
    GetStatsRequest, GetStatsResponse, ListTappersRequest, ListTappersResponse, ReportRequest,
    ReportResponse, SubscribeRequest, SubscribeResponse, hub_server::Hub,
};
use tokio::sync::mpsc;
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    error::HubError, report, state::HubState, stats, store::InstanceKey, subscribe, validate,
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
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(report::serve(
            self.state.clone(),
            request.into_inner(),
            peer,
            tx,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let plan = subscribe::plan(request.get_ref())?;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(subscribe::serve(self.state.clone(), plan, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
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
        let req = request.into_inner();
        let mut tappers = self.state.with_store(|s, _| s.tappers()).await?;
        validate::node_names(&req.node)?;
        for n in &req.node {
            if !tappers.iter().any(|t| &t.node == n) {
                return Err(HubError::NotFound {
                    what: "node",
                    name: n.clone(),
                }
                .into());
            }
        }
        for t in &mut tappers {
            let key = InstanceKey {
                node: t.node.clone(),
                instance_id: t.instance_id.clone(),
            };
            if let Some(peer) = self.state.connected.peer(&key) {
                t.connected = true;
                t.peer = peer;
            }
        }
        tappers.retain(|t| {
            (req.node.is_empty() || req.node.contains(&t.node))
                && (!req.connected_only || t.connected)
        });
        Ok(Response::new(ListTappersResponse { tappers }))
    }
}
