//! The `Report` stream: Hello first, then events, counters and losses; each batch is
//! validated, committed, published to subscribers and then acknowledged.

mod counters;

use std::{sync::Arc, time::Instant};

use tapper_proto::v1::{Ack, ReportRequest, ReportResponse, report_request::Msg, report_response};
use tokio::sync::mpsc;
use tonic::{Status, Streaming};
use tracing::{debug, info, warn};

use crate::{
    clock::now_ns, error::HubError, reject_log, state::HubState, store::InstanceKey,
    tls::PeerIdentity, validate,
};

type Tx = mpsc::Sender<Result<ReportResponse, Status>>;

fn ack(acked_seq: u64) -> ReportResponse {
    ReportResponse {
        msg: Some(report_response::Msg::Ack(Ack { acked_seq })),
    }
}

/// Who is on the other end of a Report stream.
pub struct Peer {
    /// Its address, for logs and ListTappers.
    pub addr: String,
    /// Its verified client certificate's identity (mTLS): it may report only as that node.
    pub identity: Option<Arc<PeerIdentity>>,
}

/// Serves one Report stream until the tapper goes away, sends something invalid, or the hub
/// shuts down. The outcome goes to `tx`.
pub async fn serve(
    state: Arc<HubState>,
    mut inbound: Streaming<ReportRequest>,
    peer: Peer,
    tx: Tx,
) {
    let result = tokio::select! {
        r = run(&state, &mut inbound, &peer, &tx) => r,
        _ = state.shutting_down() => Err(Status::unavailable("hub is shutting down")),
    };
    if let Err(status) = result {
        let _ = tx.send(Err(status)).await;
    }
}

async fn run(
    state: &Arc<HubState>,
    inbound: &mut Streaming<ReportRequest>,
    peer: &Peer,
    tx: &Tx,
) -> Result<(), Status> {
    let hello = match inbound.message().await? {
        Some(ReportRequest {
            msg: Some(Msg::Hello(h)),
        }) => h,
        Some(_) => {
            return Err(HubError::invalid(
                "hello",
                "the first message of a Report stream must be a Hello",
            )
            .into());
        }
        None => return Ok(()),
    };
    validate::hello(&hello)?;
    if let Some(identity) = &peer.identity
        && !identity.allows(&hello.node)
    {
        warn!(node = %hello.node, certificate = %identity.describe(), peer = %peer.addr,
              "refusing a Report for another node than the client certificate's");
        return Err(HubError::PermissionDenied(format!(
            "this client certificate is for {}; it may not report as node {:?}",
            identity.describe(),
            hello.node
        ))
        .into());
    }
    let peer = peer.addr.as_str();
    let key = InstanceKey {
        node: hello.node.clone(),
        instance_id: hello.instance_id.clone(),
    };
    // Claimed before the Hello touches the store: a second stream of a live instance
    // changes nothing and cannot acknowledge or cover its seq numbers.
    let Some(_guard) = state.connected.claim(key.clone(), peer.to_owned()) else {
        warn!(node = %key.node, instance = %key.instance_id, %peer, "refusing a second stream of a live instance");
        return Err(HubError::FailedPrecondition(
            "this instance already has a live Report stream; a second one cannot take it over"
                .into(),
        )
        .into());
    };
    let h = hello.clone();
    let acked = state.with_writer(move |s, _| s.hello(&h, now_ns())).await?;
    info!(node = %key.node, instance = %key.instance_id, %peer, acked, probe = %hello.probe_mode, "tapper connected");
    if tx.send(Ok(ack(acked))).await.is_err() {
        return Ok(());
    }
    let result = loop {
        let msg = match inbound.message().await {
            Ok(Some(m)) => m,
            Ok(None) => break Ok(()),
            // The codec refused a message (oversized or malformed): a rejection too.
            Err(status) if status.code() == tonic::Code::InvalidArgument => {
                reject_log::rejected(&key.node, &key.instance_id, &status.message());
                break Err(status);
            }
            Err(status) => {
                debug!(node = %key.node, %status, "report stream ended");
                break Err(status);
            }
        };
        let acked = match handle(state, &key, msg).await {
            Ok(a) => a,
            Err(e) => {
                reject_log::rejected(&key.node, &key.instance_id, &e);
                break Err(e.into());
            }
        };
        if let Some(acked) = acked
            && tx.send(Ok(ack(acked))).await.is_err()
        {
            break Ok(());
        }
    };
    let k = key.clone();
    let _ = state
        .with_writer(move |s, _| s.stream_ended(&k, now_ns()))
        .await;
    info!(node = %key.node, instance = %key.instance_id, "tapper disconnected");
    result
}

/// Handles one message; returns the ack to send, if any.
async fn handle(
    state: &Arc<HubState>,
    key: &InstanceKey,
    msg: ReportRequest,
) -> Result<Option<u64>, HubError> {
    let key = key.clone();
    match msg.msg {
        None => Err(HubError::invalid("msg", "empty ReportRequest")),
        Some(Msg::Hello(_)) => Err(HubError::invalid("hello", "sent twice on one stream")),
        Some(Msg::Events(batch)) => {
            validate::events(&batch.events)?;
            let observer = state.clone();
            let c = state
                .with_writer(move |s, fanout| {
                    let started = Instant::now();
                    let c = s.commit_events(&key, batch.events, now_ns())?;
                    observer.events_committed(&c.new, started.elapsed());
                    fanout.publish_events(&c.new);
                    Ok(c.acked)
                })
                .await?;
            Ok(Some(c))
        }
        Some(Msg::Loss(loss)) => {
            validate::loss(&loss)?;
            let observer = state.clone();
            let acked = state
                .with_writer(move |s, fanout| {
                    let started = Instant::now();
                    let c = s.commit_loss(&key, loss, now_ns())?;
                    for l in &c.new {
                        observer.loss_committed(l, started.elapsed());
                        fanout.publish_loss(l);
                    }
                    Ok(c.acked)
                })
                .await?;
            Ok(Some(acked))
        }
        Some(Msg::Counters(c)) => {
            counters::check(&c)?;
            state
                .with_writer(move |s, _| s.set_counters(&key, &c, now_ns()))
                .await?;
            Ok(None)
        }
    }
}
