//! The `Report` stream: Hello first, then events, counters and losses; each batch is
//! validated and queued for the next group commit while the stream's next batches are
//! read, within the hub's ingest budget; once committed it is published to subscribers and
//! then acknowledged, in order.

use std::{collections::VecDeque, sync::Arc};

use tapper_proto::v1::{
    Ack, Event, LossNotice, ReportRequest, ReportResponse, Warning, report_request::Msg,
    report_response,
};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tonic::{Status, Streaming};
use tracing::{debug, info, warn};

use crate::{
    api::state::HubState,
    error::HubError,
    ingest::{fanout::Fanout, group_commit::Pending, held, reject_log, validate},
    security::node_identity::PeerIdentity,
    store::{Committed, InstanceKey},
    util::clock::now_ns,
};

/// Batches of one stream queued for commit and not yet acknowledged, at most.
const MAX_PIPELINED: usize = 16;

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
    let (h, k, p) = (hello.clone(), key.clone(), peer.to_owned());
    let acked = state
        .writer
        .queue(
            move |s| {
                let now = now_ns();
                let acked = s.hello(&h, now)?;
                s.stream_started(&k, &p, now)?;
                Ok(acked)
            },
            |_, acked| acked,
        )?
        .await?;
    info!(node = %key.node, instance = %key.instance_id, %peer, acked, probe = %hello.probe_mode, "tapper connected");
    if tx.send(Ok(ack(acked))).await.is_err() {
        return Ok(());
    }
    let result = pipeline(state, inbound, &key, tx).await;
    let k = key.clone();
    if let Ok(ended) = state
        .writer
        .queue(move |s| s.stream_ended(&k, now_ns()), |_, ()| ())
    {
        let _ = ended.await;
    }
    info!(node = %key.node, instance = %key.instance_id, "tapper disconnected");
    result
}

/// Reads messages and queues their commits while earlier ones are still committing (at
/// most [`MAX_PIPELINED`] at once); acks go out in order, each after its commit.
async fn pipeline(
    state: &HubState,
    inbound: &mut Streaming<ReportRequest>,
    key: &InstanceKey,
    tx: &Tx,
) -> Result<(), Status> {
    let mut pending: VecDeque<Pending<Option<u64>>> = VecDeque::new();
    let ended = loop {
        tokio::select! {
            biased;
            done = async { pending.front_mut().expect("guarded by the condition").await },
                if !pending.is_empty() => {
                pending.pop_front();
                match done {
                    Ok(Some(acked)) if tx.send(Ok(ack(acked))).await.is_err() => return Ok(()),
                    Ok(_) => {}
                    Err(e) => {
                        reject_log::rejected(&key.node, &key.instance_id, &e);
                        return Err(e.into());
                    }
                }
            }
            msg = inbound.message(), if pending.len() < MAX_PIPELINED => match msg {
                Ok(Some(m)) => {
                    let permit = reserve(state, &m).await?;
                    match queue(state, key, m, permit) {
                        Ok(p) => pending.push_back(p),
                        Err(e) => {
                            reject_log::rejected(&key.node, &key.instance_id, &e);
                            break Err(e.into());
                        }
                    }
                }
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
            },
        }
    };
    // What was queued before the end is acked first, so that a rejection names the first
    // message the tapper has no ack for.
    while let Some(p) = pending.pop_front() {
        match p.await {
            Ok(Some(acked)) if tx.send(Ok(ack(acked))).await.is_err() => return ended,
            Ok(_) => {}
            Err(e) => {
                reject_log::rejected(&key.node, &key.instance_id, &e);
                return Err(e.into());
            }
        }
    }
    ended
}

/// Waits until what `msg` holds decoded fits in the hub's ingest budget (a message bigger
/// than the whole budget waits for all of it).
async fn reserve(state: &HubState, msg: &ReportRequest) -> Result<OwnedSemaphorePermit, Status> {
    let bytes = held::bytes(msg).clamp(1, state.settings.ingest_queue_bytes);
    let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
    let budget = state.ingest_budget.clone();
    budget
        .acquire_many_owned(bytes)
        .await
        .map_err(|_| HubError::ShuttingDown.into())
}

/// `finish`, holding `permit` until it has run or its commit failed.
fn holding<T, R>(
    permit: OwnedSemaphorePermit,
    finish: impl FnOnce(&Fanout, T) -> R + Send + 'static,
) -> impl FnOnce(&Fanout, T) -> R + Send + 'static {
    move |fanout: &Fanout, value: T| {
        let _permit = permit;
        finish(fanout, value)
    }
}

/// Validates one message and queues its commit, holding `permit` until then; the answer
/// is the ack to send, if any.
fn queue(
    state: &HubState,
    key: &InstanceKey,
    msg: ReportRequest,
    permit: OwnedSemaphorePermit,
) -> Result<Pending<Option<u64>>, HubError> {
    let key = key.clone();
    match msg.msg {
        None => Err(HubError::invalid("msg", "empty ReportRequest")),
        Some(Msg::Hello(_)) => Err(HubError::invalid("hello", "sent twice on one stream")),
        Some(Msg::Warning(warning)) => {
            validate::warning(&warning)?;
            let observer = state.observer();
            state.writer.queue(
                move |s| s.commit_warning(&key, warning, now_ns()),
                holding(permit, move |fanout, c: Committed<Warning>| {
                    for w in &c.new {
                        observer.warning_committed(w);
                        fanout.publish_warning(w);
                    }
                    Some(c.acked)
                }),
            )
        }
        Some(Msg::Events(batch)) => {
            validate::events(&batch.events)?;
            let observer = state.observer();
            state.writer.queue(
                move |s| s.commit_events(&key, batch.events, now_ns()),
                holding(permit, move |fanout, c: Committed<Event>| {
                    observer.events_committed(&c.new);
                    fanout.publish_events(c.new);
                    Some(c.acked)
                }),
            )
        }
        Some(Msg::Loss(loss)) => {
            validate::loss(&loss)?;
            let observer = state.observer();
            state.writer.queue(
                move |s| s.commit_loss(&key, loss, now_ns()),
                holding(permit, move |fanout, c: Committed<LossNotice>| {
                    for l in &c.new {
                        observer.loss_committed(l);
                        fanout.publish_loss(l);
                    }
                    Some(c.acked)
                }),
            )
        }
        Some(Msg::Counters(c)) => {
            validate::counters::check(&c)?;
            state.writer.queue(
                move |s| s.set_counters(&key, &c, now_ns()),
                holding(permit, |_, ()| None),
            )
        }
    }
}
