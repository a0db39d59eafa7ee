//! The reporter a tapper uses: a background task that keeps a Report stream to one of its
//! hubs open (moving on to the next hub with back-off when one fails), sends what the
//! buffer holds, applies acks and turns what a hub rejects into loss records.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tapper_proto::v1::{
    Counters, Event, Hello, ReportRequest, ReportResponse, Warning, report_request::Msg,
    report_response,
};
use tokio::{
    sync::{Notify, mpsc, watch},
    task::JoinHandle,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, codec::Streaming, codegen::http::uri::PathAndQuery};
use tracing::{debug, error, info, warn};

use crate::{
    buffer::Buffer,
    config::ReporterConfig,
    connect::{self, HubChannel},
    error::{ClientError, error_chain},
    failover::Failover,
    pacing::{Backlog, Pacer, Step},
    wire::{Outgoing, ReportCodec},
};

/// A snapshot of what the reporter did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReporterStats {
    /// Highest seq assigned (events and loss records).
    pub last_seq: u64,
    /// Highest seq the hub acknowledged as stored.
    pub acked_seq: u64,
    /// Events waiting for an ack.
    pub buffered_events: usize,
    /// Encoded bytes of the events waiting for an ack.
    pub buffered_bytes: usize,
    /// Events dropped because the buffer was full (all reported as loss records).
    pub dropped_events: u64,
    /// Events in batches the hub rejected for good (all reported as loss records).
    pub rejected_events: u64,
    /// Failures reported through [`ReporterHandle::report_loss`].
    pub external_lost: u64,
    /// A Report stream is open now.
    pub connected: bool,
    /// Successful connections so far.
    pub connects: u64,
    /// Report messages (event batches, loss records, counters) sent so far.
    pub messages_sent: u64,
    /// The hub refused this reporter's token or certificate, and no hub accepted it
    /// since ([`ReporterHandle::refusal`] says why).
    pub refused: bool,
}

struct Inner {
    buf: Mutex<Buffer>,
    /// Events per full batch.
    batch: usize,
    wake: Notify,
    acked: watch::Sender<u64>,
    connected: AtomicBool,
    connects: AtomicU64,
    messages_sent: AtomicU64,
    /// Why the last hub tried refused our credentials, until a hub accepts them.
    refusal: watch::Sender<Option<String>>,
    /// The hub addresses, in the order they are tried.
    hubs: Vec<String>,
    /// The position in `hubs` of the hub in use (or being tried).
    hub_index: AtomicUsize,
    /// Set by shutdown: send what is left, half-close the stream, and do not reconnect.
    closing: AtomicBool,
    /// Woken by shutdown: a wait before the next attempt ends at once.
    closed: Notify,
}

impl Inner {
    fn buf(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buf.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Spawns reporters.
pub struct Reporter;

impl Reporter {
    /// Validates `config` and starts the background task on the current tokio runtime.
    /// The task connects (and reconnects) on its own; nothing here waits for the hub.
    pub fn spawn(config: ReporterConfig) -> Result<ReporterHandle, ClientError> {
        let (hubs, limits) = config.validate()?;
        let inner = Arc::new(Inner {
            buf: Mutex::new(Buffer::new(limits)),
            batch: limits.batch_events,
            wake: Notify::new(),
            acked: watch::channel(0).0,
            connected: AtomicBool::new(false),
            connects: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
            refusal: watch::channel(None).0,
            hubs,
            hub_index: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            closed: Notify::new(),
        });
        let task = tokio::spawn(run(inner.clone(), config.clone()));
        Ok(ReporterHandle {
            inner,
            task: Arc::new(Mutex::new(Some(task))),
            node: config.node,
            instance_id: config.instance_id,
        })
    }
}

/// The caller's side of a reporter. Cheap to clone; every method but
/// [`flush`](Self::flush) and [`shutdown`](Self::shutdown) returns at once.
#[derive(Clone)]
pub struct ReporterHandle {
    inner: Arc<Inner>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
    node: String,
    instance_id: String,
}

impl ReporterHandle {
    /// Queues one event and returns the seq it got (any `seq` set by the caller is
    /// replaced; hub-side fields are ignored). Never blocks: when the buffer is full the
    /// event is dropped and counted into a loss record instead.
    pub fn send_event(&self, event: Event) -> u64 {
        self.send_event_with(event, &[])
    }

    /// As [`send_event`](Self::send_event), for an event sent as its encoding followed by
    /// `tail`, more of its fields already encoded (see [`Buffer::push_event`]).
    pub fn send_event_with(&self, event: Event, tail: &[u8]) -> u64 {
        let (seq, unsent) = {
            let mut b = self.inner.buf();
            (b.push_event(event, tail), b.unsent_items())
        };
        // The writer lingers on a timer in between: it needs a wake only for a first item
        // or a full batch.
        if unsent == 1 || unsent.is_multiple_of(self.inner.batch) {
            self.inner.wake.notify_one();
        }
        seq
    }

    /// Queues one warning and returns the seq it got, from the same sequence as events; it
    /// is buffered, acknowledged and dropped (into a loss record) like an event.
    pub fn send_warning(&self, warning: Warning) -> u64 {
        let seq = self.inner.buf().push_warning(warning);
        self.inner.wake.notify_one();
        seq
    }

    /// Queues the tapper's latest cumulative counters (only the newest is kept).
    pub fn send_counters(&self, counters: Counters) {
        self.inner.buf().set_counters(counters);
        self.inner.wake.notify_one();
    }

    /// Reports `count` failures lost before they became events (e.g. `"kernel ring buffer
    /// full"`). Returns the seq of the loss record, or `None` when `count` is 0.
    pub fn report_loss(&self, count: u64, reason: impl Into<String>) -> Option<u64> {
        let seq = self.inner.buf().push_loss(count, reason.into());
        self.inner.wake.notify_one();
        seq
    }

    /// Node name this reporter announces.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Instance id this reporter announces.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The hub addresses, in the order they are tried (with their schemes).
    pub fn hubs(&self) -> &[String] {
        &self.inner.hubs
    }

    /// The hub in use: the one the stream is open to while
    /// [`ReporterStats::connected`], otherwise the one tried next.
    pub fn hub(&self) -> &str {
        &self.inner.hubs[self.inner.hub_index.load(Ordering::Relaxed)]
    }

    /// Counts so far.
    pub fn stats(&self) -> ReporterStats {
        let b = self.inner.buf();
        ReporterStats {
            last_seq: b.last_seq(),
            acked_seq: b.acked(),
            buffered_events: b.buffered_events(),
            buffered_bytes: b.buffered_bytes(),
            dropped_events: b.dropped(),
            rejected_events: b.rejected(),
            external_lost: b.external_lost(),
            connected: self.inner.connected.load(Ordering::Relaxed),
            connects: self.inner.connects.load(Ordering::Relaxed),
            messages_sent: self.inner.messages_sent.load(Ordering::Relaxed),
            refused: self.inner.refusal.borrow().is_some(),
        }
    }

    /// Why the hub refused this reporter's token or certificate (the hub's words and what
    /// to do), while no hub accepts them.
    pub fn refusal(&self) -> Option<String> {
        self.inner.refusal.borrow().clone()
    }

    /// Waits until the hub acknowledged everything queued before this call, or `timeout`,
    /// or the hub refused this reporter's credentials. Returns whether it was acknowledged.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let target = self.inner.buf().last_seq();
        let mut acked = self.inner.acked.subscribe();
        let mut refusal = self.inner.refusal.subscribe();
        let acked_or_refused = async {
            tokio::select! {
                biased;
                r = acked.wait_for(|a| *a >= target) => r.is_ok(),
                _ = refusal.wait_for(Option::is_some) => false,
            }
        };
        tokio::time::timeout(timeout, acked_or_refused)
            .await
            .unwrap_or(false)
    }

    /// Flushes (up to `timeout`), then closes the stream gracefully: the latest counters
    /// are sent, the stream is half-closed, and the hub ends it once it has handled
    /// everything. A hub that does not answer within `timeout` has the stream cut.
    /// Returns the final counts; `acked_seq < last_seq` means the hub did not get it all.
    pub async fn shutdown(self, timeout: Duration) -> ReporterStats {
        self.flush(timeout).await;
        self.inner.closing.store(true, Ordering::Relaxed);
        self.inner.wake.notify_one();
        self.inner.closed.notify_one();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut task) = task
            && tokio::time::timeout(timeout, &mut task).await.is_err()
        {
            warn!("the hub did not close the report stream in time; cutting it");
            task.abort();
            let _ = task.await;
        }
        self.inner.connected.store(false, Ordering::Relaxed);
        self.stats()
    }
}

/// Keeps a session open to one hub after the other: a failed connect or a broken stream
/// moves on to the next hub of the list, after the back-off.
async fn run(inner: Arc<Inner>, cfg: ReporterConfig) {
    let mut hubs = Failover::new(inner.hubs.clone(), cfg.backoff_initial, cfg.backoff_max);
    loop {
        let hub = hubs.current().to_owned();
        inner.hub_index.store(hubs.index(), Ordering::Relaxed);
        let result = session(&inner, &cfg, &hub, &mut hubs).await;
        inner.connected.store(false, Ordering::Relaxed);
        if inner.closing.load(Ordering::Relaxed) {
            return;
        }
        let retry = hubs.failed();
        let (next, mut delay) = (hubs.current(), retry.delay);
        match result {
            Ok(()) => {
                info!(%hub, %next, ?delay, "hub closed the report stream; connecting to the next hub")
            }
            Err(e) if e.is_refusal() => {
                if retry.round_failed {
                    delay = delay.max(cfg.refused_retry);
                }
                refused(&inner, &hub, &error_chain(&e), delay);
            }
            Err(e) => {
                warn!(%hub, error = %error_chain(&e), %next, ?delay,
                      "report stream failed; connecting to the next hub")
            }
        }
        if retry.round_failed && hubs.hubs().len() > 1 {
            warn!(hubs = ?hubs.hubs(), ?delay, "no hub of the list answered; starting over");
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = inner.closed.notified() => return,
        }
    }
}

/// What to do when a hub refuses the reporter's credentials.
pub const REFUSAL_FIX: &str = "this will not fix itself: give a token of the report role \
                               (--token-file) and a client certificate naming this node \
                               (--tls-cert), which are read again before each retry";

/// Records that `hub` refused the credentials: one ERROR per new reason (a retry with the
/// same token or certificate cannot succeed), the rest at debug.
fn refused(inner: &Inner, hub: &str, reason: &str, delay: Duration) {
    let new = inner.refusal.send_if_modified(|old| {
        let new = old.as_deref() != Some(reason);
        *old = Some(reason.to_owned());
        new
    });
    if new {
        error!(%hub, retry_in = ?delay, "the hub refused this reporter: {reason}; {REFUSAL_FIX}; \
               events are kept in the local output and, up to the buffer's bounds, for the \
               hub meanwhile");
    } else {
        debug!(%hub, retry_in = ?delay, %reason, "the hub still refuses this reporter");
    }
}

/// One connection to `hub`: Hello, then send and read acks until something breaks.
async fn session(
    inner: &Arc<Inner>,
    cfg: &ReporterConfig,
    hub: &str,
    hubs: &mut Failover,
) -> Result<(), ClientError> {
    // Credentials are read on each connect: a rotated token or certificate takes effect.
    let channel = connect::channel(hub, cfg.connect_timeout, &cfg.credentials).await?;
    let (tx, rx) = mpsc::channel::<Outgoing>(8);
    let hello = Hello {
        node: cfg.node.clone(),
        instance_id: cfg.instance_id.clone(),
        kernel_release: cfg.kernel_release.clone(),
        probe_mode: cfg.probe_mode.clone(),
        agent_version: cfg.agent_version.clone(),
    };
    tx.send(Outgoing::Request(Box::new(ReportRequest {
        msg: Some(Msg::Hello(hello)),
    })))
    .await
    .map_err(|_| ClientError::Protocol("stream closed before hello".into()))?;
    let mut acks = report(channel, rx).await?;
    let first = acks
        .message()
        .await?
        .ok_or_else(|| ClientError::Protocol("hub closed the stream after hello".into()))?;
    let Some(report_response::Msg::Ack(ack)) = first.msg else {
        return Err(ClientError::Protocol("hub did not ack the hello".into()));
    };
    let (acked, resending) = {
        let mut b = inner.buf();
        if ack.acked_seq < b.acked() {
            warn!(%hub, instance = %cfg.instance_id, hub_acked = ack.acked_seq, acked = b.acked(),
                  "this hub lacks events acknowledged before (a hub with another database, or \
                   one that lost its own), so it cannot acknowledge anything newer; list only \
                   hubs that share one database");
        }
        if let Some(sent) = b.ack(ack.acked_seq) {
            warn!(instance = %cfg.instance_id, hub_acked = ack.acked_seq, sent,
                  "hub claims more of this instance than we sent (instance id reused, or not the \
                   hub we think?); counting only what we sent");
        }
        b.rewind();
        (b.acked(), b.buffered_events())
    };
    inner.acked.send_replace(acked);
    if inner.refusal.send_replace(None).is_some() {
        info!(%hub, "the hub accepts this reporter's credentials again");
    }
    inner.connected.store(true, Ordering::Relaxed);
    inner.connects.fetch_add(1, Ordering::Relaxed);
    hubs.connected();
    info!(%hub, node = %cfg.node, hub_acked = ack.acked_seq, acked, resending,
          "connected to hub; sending what it has not acknowledged");
    inner.wake.notify_one();

    let writer = async move {
        let mut pacer = Pacer::new(
            cfg.linger,
            cfg.send_interval(),
            inner.batch,
            cfg.max_in_flight,
        );
        loop {
            let backlog = {
                let b = inner.buf();
                Backlog {
                    unsent: b.unsent_items(),
                    in_flight: b.in_flight(),
                    counters: b.counters_unsent(),
                }
            };
            let closing = inner.closing.load(Ordering::Relaxed);
            match pacer.decide(backlog, closing, Instant::now()) {
                Step::Send => {
                    let room = cfg.max_in_flight.saturating_sub(backlog.in_flight);
                    let msgs = inner.buf().take_unsent(room.max(1));
                    pacer.sent(Instant::now());
                    inner
                        .messages_sent
                        .fetch_add(msgs.len() as u64, Ordering::Relaxed);
                    for m in msgs {
                        if tx.send(m).await.is_err() {
                            return Err(ClientError::Protocol("report stream closed".into()));
                        }
                    }
                }
                Step::Close => {
                    drop(tx); // half-close: the hub ends the stream after handling it all
                    return Ok(());
                }
                Step::Wait => inner.wake.notified().await,
                Step::WaitUntil(deadline) => {
                    let _ = tokio::time::timeout_at(deadline.into(), inner.wake.notified()).await;
                }
            }
        }
    };
    let reader = async {
        let mut clamp_logged = false;
        while let Some(resp) = acks.message().await? {
            if let Some(report_response::Msg::Ack(a)) = resp.msg {
                debug!(acked = a.acked_seq, "ack");
                let mut b = inner.buf();
                if let Some(sent) = b.ack(a.acked_seq)
                    && !std::mem::replace(&mut clamp_logged, true)
                {
                    warn!(%hub, hub_acked = a.acked_seq, sent,
                          "hub acked more than we sent; counting only what we sent");
                }
                inner.acked.send_replace(b.acked());
                // The writer needs this ack only for what waited behind it; an ack with
                // nothing waiting costs no wake-up.
                let waiting = b.unsent_items() > 0 || b.counters_unsent();
                drop(b);
                if waiting {
                    inner.wake.notify_one();
                }
            }
        }
        Ok::<(), ClientError>(())
    };
    tokio::pin!(writer, reader);
    let result = tokio::select! {
        r = &mut reader => r,
        w = &mut writer => match w {
            // The last acks, until the hub ends the stream.
            Ok(()) => reader.await,
            // The stream broke under the writer: the hub's status, if it sent one, says why.
            Err(e) => match tokio::time::timeout(cfg.connect_timeout, reader).await {
                Ok(Err(status)) => Err(status),
                _ => Err(e),
            },
        },
    };
    if let Err(ClientError::Status(status)) = &result
        && is_rejection(status.code())
        && let Some(r) = inner.buf().reject(status.message())
    {
        warn!(%hub, first_seq = r.first_seq, last_seq = r.last_seq, events = r.events,
              reason = %status.message(), "hub rejected a message for good; reporting it as a loss");
    }
    result
}

/// Opens the Report stream (`Hub.Report`, as the generated client calls it) with requests
/// written by [`ReportCodec`], so that events go as they were encoded when buffered.
async fn report(
    channel: HubChannel,
    requests: mpsc::Receiver<Outgoing>,
) -> Result<Streaming<ReportResponse>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unknown(format!("Service was not ready: {e}")))?;
    let mut req = tonic::Request::new(ReceiverStream::new(requests));
    req.extensions_mut()
        .insert(tonic::GrpcMethod::new("tapper.v1.Hub", "Report"));
    let path = PathAndQuery::from_static("/tapper.v1.Hub/Report");
    Ok(grpc.streaming(req, path, ReportCodec).await?.into_inner())
}

/// Codes with which the hub refuses a message it will never take (malformed, a field over
/// its limit, too large); any other ending is worth a resend.
fn is_rejection(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument | Code::OutOfRange | Code::ResourceExhausted
    )
}
