//! The `Subscribe` stream: optional replay from the store, then live items from the
//! fan-out, without gaps or duplicates at the seam; lagged notices pass through.

use std::{sync::Arc, time::Duration};

use tapper_proto::v1::{
    SubscribeRequest, SubscribeResponse, subscribe_request::Since, subscribe_response,
};
use tokio::sync::mpsc;
use tonic::Status;

use crate::{
    api::{
        final_items::{self, Closer, ClosingStream},
        state::HubState,
        subscribe_reply::Reply,
    },
    error::HubError,
    ingest::{
        fanout::{Next, Subscription},
        filter::Filter,
        validate,
    },
    store::Stored,
};

type Tx = mpsc::Sender<Result<Reply, Status>>;

/// Items read from the store per page during a replay.
const PAGE: usize = 512;

/// Where a replay starts.
#[derive(Debug, Clone, Copy)]
enum From {
    HubSeq(u64),
    Time(i64),
}

/// A validated subscription, ready to stream.
pub struct Plan {
    filter: Arc<Filter>,
    replay: Option<From>,
    follow: bool,
}

/// Validates the request.
pub fn plan(req: &SubscribeRequest) -> Result<Plan, HubError> {
    let filter = Arc::new(Filter::from_request(req)?);
    let replay = match &req.since {
        None => None,
        Some(Since::SinceHubSeq(n)) => Some(From::HubSeq(*n)),
        Some(Since::SinceTime(ts)) => Some(From::Time(validate::timestamp("since_time", ts)?)),
    };
    Ok(Plan {
        filter,
        follow: req.follow || replay.is_none(),
        replay,
    })
}

fn stored_response(s: Stored) -> Reply {
    use subscribe_response::Item as R;
    Reply::Own(Box::new(SubscribeResponse {
        item: Some(match s {
            Stored::Event(e) => R::Event(e),
            Stored::Loss(l) => R::Loss(l),
            Stored::Warning(w) => R::Warning(w),
        }),
    }))
}

/// Opens a stream for the plan within `--max-subscribers` (else RESOURCE_EXHAUSTED): the
/// items come as [`serve`] sends them, the last ones out of band.
pub fn open(state: &Arc<HubState>, plan: Plan) -> Result<ClosingStream<Reply>, HubError> {
    let slot = state
        .subscriber_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            HubError::ResourceExhausted(format!(
                "too many subscribers (limit {}, see the hub's --max-subscribers)",
                state.settings.max_subscribers
            ))
        })?;
    let (tx, closer, stream) = final_items::channel(16);
    let state = state.clone();
    tokio::spawn(async move {
        serve(state, plan, tx, closer).await;
        drop(slot);
    });
    Ok(stream)
}

/// One page of stored items, without the live part.
pub struct StoredPage {
    pub items: Vec<Reply>,
    /// Where the next page starts (`since_hub_seq`).
    pub next_hub_seq: u64,
    /// Whether the page is full, so that more may follow.
    pub more: bool,
}

/// Reads at most `limit` stored items of the plan's replay (from hub_seq 0 without one),
/// up to what is committed now, the same way a Subscribe replay does.
pub async fn stored_page(
    state: &Arc<HubState>,
    plan: &Plan,
    limit: usize,
) -> Result<StoredPage, HubError> {
    let (seam, _) = state.subscribe_live((*plan.filter).clone(), false).await?;
    let from = plan.replay.unwrap_or(From::HubSeq(0));
    let (tx, mut rx) = mpsc::channel(PAGE);
    let read = async move {
        let r = replay(state, &plan.filter, from, seam, &tx).await;
        drop(tx);
        r
    };
    let collect = async move {
        let mut items = Vec::new();
        while items.len() < limit {
            match rx.recv().await {
                Some(Ok(item)) => items.push(item),
                _ => break,
            }
        }
        // Dropping the receiver here ends the replay at a full page.
        items
    };
    let (read, items) = tokio::join!(read, collect);
    read?;
    let more = items.len() == limit;
    let next_hub_seq = match items.last() {
        Some(item) if more => item.hub_seq() + 1,
        _ => match from {
            From::HubSeq(n) => n.max(seam + 1),
            From::Time(_) => seam + 1,
        },
    };
    Ok(StoredPage {
        items,
        next_hub_seq,
        more,
    })
}

/// The items that end a stream, after everything queued.
type FinalItems = Vec<Result<Reply, Status>>;

/// Streams the plan into `tx` until the client goes away, the hub shuts down or the
/// subscriber is dropped for being too slow; the final items go through `closer`.
pub async fn serve(state: Arc<HubState>, plan: Plan, tx: Tx, closer: Closer<Reply>) {
    let final_items = tokio::select! {
        r = run(&state, plan, &tx) => r.unwrap_or_else(|e| vec![Err(e.into())]),
        _ = state.shutting_down() => vec![Err(Status::unavailable("hub is shutting down"))],
    };
    closer.close_with(final_items);
}

async fn run(state: &Arc<HubState>, plan: Plan, tx: &Tx) -> Result<FinalItems, HubError> {
    // Register for live items and note the seam: everything up to `seam` comes from the
    // store, everything after it from the fan-out.
    let (seam, live) = state
        .subscribe_live((*plan.filter).clone(), plan.follow)
        .await?;
    if let Some(from) = plan.replay {
        replay(state, &plan.filter, from, seam, tx).await?;
    }
    Ok(match live {
        Some(live) => forward(live, state.settings.subscriber_stall_timeout, tx).await,
        None => Vec::new(),
    })
}

async fn replay(
    state: &Arc<HubState>,
    filter: &Arc<Filter>,
    from: From,
    seam: u64,
    tx: &Tx,
) -> Result<(), HubError> {
    let (mut cursor, since_ns) = match from {
        From::HubSeq(n) => (n, None),
        From::Time(t) => {
            // Start at the first record received since `t` instead of scanning from 0;
            // pages still filter by receive time in case the hub's clock stepped back.
            let Some(first) = state
                .with_reader(move |s| s.first_received_since(t))
                .await?
            else {
                return Ok(());
            };
            (first, Some(t))
        }
    };
    while cursor <= seam {
        let page = state
            .with_reader(move |s| s.replay_page(cursor, seam, since_ns, PAGE))
            .await?;
        let Some(last) = page.last().map(Stored::hub_seq) else {
            break;
        };
        for item in page {
            let pass = match &item {
                Stored::Event(e) => filter.matches_event(e),
                Stored::Loss(l) => filter.matches_loss(l),
                Stored::Warning(w) => filter.matches_warning(w),
            };
            if pass && tx.send(Ok(stored_response(item))).await.is_err() {
                return Ok(());
            }
        }
        cursor = last + 1;
    }
    Ok(())
}

/// Forwards live items until the client goes away or the subscriber is evicted; returns
/// the final items.
async fn forward(mut live: Subscription, stall_timeout: Duration, tx: &Tx) -> FinalItems {
    loop {
        let next = tokio::select! {
            next = live.next() => next,
            // The client went away: free the subscription even if nothing ever matched.
            () = tx.closed() => return Vec::new(),
        };
        let item = match next {
            Next::Item(item) => item,
            Next::Evicted { skipped } => return evicted(skipped, stall_timeout),
            Next::Closed => return Vec::new(),
        };
        tokio::select! {
            sent = tx.send(Ok(Reply::Live(item))) => if sent.is_err() { return Vec::new() },
            () = live.evicted() => {
                // The item in flight is lost with the rest of the queue.
                let skipped = 1 + live.drain_undelivered();
                return evicted(skipped, stall_timeout);
            }
        }
    }
}

/// How an evicted subscription ends: a final lagged notice, then RESOURCE_EXHAUSTED.
fn evicted(skipped: u64, stall_timeout: Duration) -> FinalItems {
    let notice = Reply::lagged(skipped);
    let status = Status::resource_exhausted(format!(
        "subscriber dropped: its queue stayed full for more than {stall_timeout:?}; \
         resubscribe with since_hub_seq to resume"
    ));
    vec![Ok(notice), Err(status)]
}
