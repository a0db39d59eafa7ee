//! `GET api/v1/events` and `GET api/v1/warnings`: a page of stored items as JSON, or with
//! `follow=true` the Subscribe stream (replay, then live) as Server-Sent Events. Both run
//! the Subscribe code: its filter compiler, its replay, its subscriber slots and queues.

use std::{borrow::Cow, convert::Infallible, sync::Arc, time::Duration};

use axum::{
    extract::State,
    http::request::Parts,
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
};
use serde_json::{Value, json};
use tapper_proto::{
    json::{loss_json, warning_json},
    v1::{SubscribeRequest, subscribe_request::Since, subscribe_response::Item},
};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::Status;

use crate::{
    api::{
        final_items::ClosingStream,
        http::{
            Ctx,
            auth::Grant,
            query::{FILTERS, Query},
            reply::{ApiError, json},
        },
        subscribe,
        subscribe_reply::{self, Reply},
    },
    ingest::fanout::{self, Encoded},
};

/// Items per page when the call gives no `limit`.
const DEFAULT_LIMIT: usize = 1000;
/// A comment line this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The warning kinds `api/v1/warnings` takes.
const WARNING_KINDS: &[&str] = &["warning", "nofile", "file-max"];

/// `GET api/v1/events`.
pub async fn events(State(ctx): State<Arc<Ctx>>, parts: Parts) -> Result<Response, ApiError> {
    serve(&ctx, &parts, false).await
}

/// `GET api/v1/warnings`: the same, warnings only.
pub async fn warnings(State(ctx): State<Arc<Ctx>>, parts: Parts) -> Result<Response, ApiError> {
    serve(&ctx, &parts, true).await
}

async fn serve(ctx: &Arc<Ctx>, parts: &Parts, warnings_only: bool) -> Result<Response, ApiError> {
    let grant = ctx.auth.authorize(parts)?;
    let allowed = [FILTERS, &["since_hub_seq", "since", "limit", "follow"]].concat();
    let q = Query::parse(parts.uri.query(), &allowed)?;
    let mut req = SubscribeRequest::default();
    q.filters(&mut req)?;
    if warnings_only {
        if let Some(k) = req
            .kind
            .iter()
            .find(|k| !WARNING_KINDS.contains(&k.as_str()))
        {
            return Err(ApiError::bad_request(format!(
                "kind: {k:?} is not a warning kind; use {}",
                WARNING_KINDS.join(", ")
            )));
        }
        if req.kind.is_empty() {
            req.kind = vec!["warning".into()];
        }
    }
    let since_hub_seq = q.parsed::<u64>("since_hub_seq", "a hub_seq number")?;
    let since = q.time("since")?;
    req.since = match (since_hub_seq, since) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give since_hub_seq or since, not both",
            ));
        }
        (Some(n), None) => Some(Since::SinceHubSeq(n)),
        (None, Some(ts)) => Some(Since::SinceTime(ts)),
        (None, None) => None,
    };
    if q.flag("follow")? {
        if q.one("limit")?.is_some() {
            return Err(ApiError::bad_request(
                "limit applies to a page (without follow); a stream has no end",
            ));
        }
        if let Some(last) = last_event_id(parts)? {
            req.since = Some(Since::SinceHubSeq(last.saturating_add(1)));
        }
        req.follow = true;
        let plan = subscribe::plan(&req)?;
        let stream = subscribe::open(&ctx.state, plan)?;
        return Ok(sse(stream, grant));
    }
    let limit = match q.parsed::<usize>("limit", "a count")? {
        None => DEFAULT_LIMIT.min(ctx.max_items),
        Some(0) => return Err(ApiError::bad_request("limit: must be at least 1")),
        Some(n) if n > ctx.max_items => {
            return Err(ApiError::bad_request(format!(
                "limit: at most {} (the hub's --query-max-rows); page with since_hub_seq",
                ctx.max_items
            )));
        }
        Some(n) => n,
    };
    let plan = subscribe::plan(&req)?;
    let page = subscribe::stored_page(&ctx.state, &plan, limit).await?;
    let items: Vec<Value> = page
        .items
        .into_iter()
        .filter_map(|reply| match reply {
            Reply::Own(r) => r.item.map(|item| item_json(&item).2),
            // A page is read from the store alone.
            Reply::Live(_) => None,
        })
        .collect();
    Ok(json(&json!({
        "items": items,
        "next_hub_seq": page.next_hub_seq,
        "more": page.more,
    })))
}

/// A reconnecting EventSource's `Last-Event-ID`: the last hub_seq it got.
fn last_event_id(parts: &Parts) -> Result<Option<u64>, ApiError> {
    let Some(value) = parts.headers.get("last-event-id") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| ApiError::bad_request("Last-Event-ID: not a hub_seq number"))
}

/// One item as `hub-client watch --json` prints it: its SSE event type, its hub_seq (for
/// the SSE id; none for a lagged notice) and its JSON.
fn item_json(item: &Item) -> (&'static str, Option<u64>, Value) {
    let seq = Some(subscribe_reply::hub_seq(item));
    match item {
        Item::Event(e) => ("event", seq, serde_json::to_value(e).unwrap_or_default()),
        Item::Warning(w) => ("warning", seq, warning_json(w)),
        Item::Loss(l) => ("loss", seq, loss_json(l)),
        Item::Lagged(l) => ("lagged", None, json!({ "lagged": l.skipped })),
    }
}

/// A reply's SSE event type, hub_seq (the SSE id) and JSON text; a fan-out item's JSON is
/// rendered once for all the streams it goes to.
fn reply_json(reply: &Reply) -> (&'static str, Option<u64>, Cow<'_, str>) {
    fn shared<'a>(kind: &'static str, e: &'a Encoded) -> (&'static str, Option<u64>, Cow<'a, str>) {
        let text = e.json(|e| {
            e.decoded()
                .map(|item| item_json(&item).2.to_string())
                .unwrap_or_default()
        });
        (kind, Some(e.hub_seq), Cow::Borrowed(text))
    }
    match reply {
        Reply::Live(fanout::Item::Event(e)) => shared("event", e),
        Reply::Live(fanout::Item::Loss(e)) => shared("loss", e),
        Reply::Live(fanout::Item::Warning(e)) => shared("warning", e),
        Reply::Live(fanout::Item::Lagged(skipped)) => (
            "lagged",
            None,
            Cow::Owned(json!({ "lagged": skipped }).to_string()),
        ),
        Reply::Own(r) => match &r.item {
            Some(item) => {
                let (kind, seq, value) = item_json(item);
                (kind, seq, Cow::Owned(value.to_string()))
            }
            None => ("", None, Cow::Borrowed("")),
        },
    }
}

fn sse_event(response: Result<Reply, Status>) -> Option<SseEvent> {
    let reply = match response {
        Ok(reply) => reply,
        Err(status) => {
            return Some(
                SseEvent::default()
                    .event("error")
                    .data(json!({ "error": status.message() }).to_string()),
            );
        }
    };
    if matches!(&reply, Reply::Own(r) if r.item.is_none()) {
        return None;
    }
    let (kind, seq, text) = reply_json(&reply);
    let event = SseEvent::default().event(kind).data(text);
    Some(match seq {
        Some(seq) => event.id(seq.to_string()),
        None => event,
    })
}

/// The stream as Server-Sent Events, until the client goes away, the stream ends (its
/// last error as an `error` event) or a reload revokes the call's credentials.
fn sse(mut stream: ClosingStream<Reply>, grant: Grant) -> Response {
    let (tx, rx) = mpsc::channel(1);
    let revoked = grant.revoked();
    tokio::spawn(async move {
        tokio::pin!(revoked);
        loop {
            let next = tokio::select! {
                next = stream.next() => next,
                status = &mut revoked => Some(Err(status)),
                // The browser went away: drop the subscription even if nothing matches.
                () = tx.closed() => return,
            };
            let Some(next) = next else { return };
            let end = next.is_err();
            if let Some(event) = sse_event(next)
                && tx.send(event).await.is_err()
            {
                return;
            }
            if end {
                return;
            }
        }
    });
    // A first comment line makes the response go out at once: a quiet stream must not hold
    // the browser's connection waiting for its headers.
    let opened = tokio_stream::once(SseEvent::default().comment("open"));
    Sse::new(
        opened
            .chain(ReceiverStream::new(rx))
            .map(Ok::<_, Infallible>),
    )
    .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
    .into_response()
}
