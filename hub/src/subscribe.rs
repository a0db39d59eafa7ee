//! The `Subscribe` stream: optional replay from the store, then live items from the
//! fan-out, without gaps or duplicates at the seam; lagged notices pass through.

use std::sync::Arc;

use tapper_proto::v1::{
    Lagged, SubscribeRequest, SubscribeResponse, subscribe_request::Since, subscribe_response,
};
use tokio::sync::mpsc;
use tonic::Status;

use crate::{
    error::HubError,
    fanout::{Item, Next, Subscription},
    filter::Filter,
    state::HubState,
    store::Stored,
    validate,
};

type Tx = mpsc::Sender<Result<SubscribeResponse, Status>>;

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

fn event_response(item: Item) -> SubscribeResponse {
    use subscribe_response::Item as R;
    let item = match item {
        Item::Event(e) => R::Event((*e).clone()),
        Item::Loss(l) => R::Loss((*l).clone()),
        Item::Lagged(skipped) => R::Lagged(Lagged { skipped }),
    };
    SubscribeResponse { item: Some(item) }
}

fn stored_response(s: Stored) -> SubscribeResponse {
    use subscribe_response::Item as R;
    SubscribeResponse {
        item: Some(match s {
            Stored::Event(e) => R::Event(e),
            Stored::Loss(l) => R::Loss(l),
        }),
    }
}

/// Streams the plan into `tx` until the client goes away or the hub shuts down.
pub async fn serve(state: Arc<HubState>, plan: Plan, tx: Tx) {
    tokio::select! {
        r = run(&state, plan, &tx) => {
            if let Err(e) = r {
                let _ = tx.send(Err(e.into())).await;
            }
        }
        _ = state.shutting_down() => {
            let _ = tx.send(Err(Status::unavailable("hub is shutting down"))).await;
        }
    }
}

async fn run(state: &Arc<HubState>, plan: Plan, tx: &Tx) -> Result<(), HubError> {
    // Register for live items and note the seam under the store lock: everything up to
    // `seam` comes from the store, everything after it from the fan-out.
    let (seam, live) = {
        let filter = plan.filter.clone();
        let follow = plan.follow;
        let queue = state.settings.subscriber_queue;
        let st = state.clone();
        state
            .with_store(move |s, _| {
                let live = follow.then(|| st.fanout.subscribe((*filter).clone(), queue));
                Ok((s.last_hub_seq(), live))
            })
            .await?
    };
    if let Some(from) = plan.replay {
        replay(state, &plan.filter, from, seam, tx).await?;
    }
    if let Some(live) = live {
        forward(live, tx).await;
    }
    Ok(())
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
        From::Time(t) => (0, Some(t)),
    };
    while cursor <= seam {
        let page = state
            .with_store(move |s, _| s.replay_page(cursor, seam, since_ns, PAGE))
            .await?;
        let Some(last) = page.last().map(Stored::hub_seq) else {
            break;
        };
        for item in page {
            let pass = match &item {
                Stored::Event(e) => filter.matches_event(e),
                Stored::Loss(l) => filter.matches_loss(l),
            };
            if pass && tx.send(Ok(stored_response(item))).await.is_err() {
                return Ok(());
            }
        }
        cursor = last + 1;
    }
    Ok(())
}

async fn forward(mut live: Subscription, tx: &Tx) {
    loop {
        match live.next().await {
            Next::Item(item) => {
                if tx.send(Ok(event_response(item))).await.is_err() {
                    return;
                }
            }
            Next::Closed => return,
        }
    }
}
