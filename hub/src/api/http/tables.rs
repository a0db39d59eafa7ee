//! `GET api/v1/stats` and `GET api/v1/tappers`: GetStats and ListTappers from a query
//! string, answered in the JSON `hub-client --json` prints; `GET api/v1/alerts`: the alerts
//! firing, as Alertmanager gets them.

use std::sync::Arc;

use axum::{extract::State, http::request::Parts, response::Response};
use serde_json::json;
use tapper_proto::{
    Timestamp,
    flag_text::parse_duration,
    json::{stats_json, tapper_json},
    v1::{GetStatsRequest, GroupBy, ListTappersRequest},
};

use crate::{
    api::{
        http::{
            Ctx,
            query::Query,
            reply::{ApiError, json},
        },
        list_tappers, stats,
    },
    util::clock::now_ns,
};

const NANOS: i64 = 1_000_000_000;

/// The stats window when the call gives neither `window` nor `from`.
const DEFAULT_WINDOW_SECS: i64 = 3600;
/// The `group_by` keys, as GetStats names them (`GROUP_BY_` + the key in capitals).
const GROUP_KEYS: &str = "node, errno, family, comm, cgroup, namespace, pod, container";

/// `GET api/v1/stats?group_by=node,errno&window=15m` (or `from`/`to`), `node` filters;
/// with `bucket=AUTO|DURATION`, one answer per time bucket of the window.
pub async fn stats(State(ctx): State<Arc<Ctx>>, parts: Parts) -> Result<Response, ApiError> {
    ctx.auth.authorize(&parts)?;
    let q = Query::parse(
        parts.uri.query(),
        &["group_by", "window", "from", "to", "node", "bucket"],
    )?;
    let mut req = GetStatsRequest {
        node: q.values("node"),
        since: q.time("from")?,
        until: q.time("to")?,
        ..Default::default()
    };
    for key in q.values("group_by") {
        let group = GroupBy::from_str_name(&format!("GROUP_BY_{}", key.to_ascii_uppercase()))
            .filter(|g| *g != GroupBy::Unspecified)
            .ok_or_else(|| {
                ApiError::bad_request(format!("group_by: unknown key {key:?}; use {GROUP_KEYS}"))
            })?;
        req.group_by.push(group as i32);
    }
    match (q.duration("window")?, &req.since) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("give window or from, not both"));
        }
        (Some(w), None) if w.as_secs() == 0 => {
            return Err(ApiError::bad_request("window: at least 1s"));
        }
        (Some(w), None) => req.last_seconds = i64::try_from(w.as_secs()).unwrap_or(i64::MAX),
        (None, None) => req.last_seconds = DEFAULT_WINDOW_SECS,
        (None, Some(_)) => {}
    }
    match q.one("bucket")? {
        None => Ok(json(&stats_json(&stats::get_stats(&ctx.state, req).await?))),
        Some(bucket) => buckets(&ctx, req, &bucket).await,
    }
}

/// Bucket sizes `bucket=AUTO` picks from: the smallest that cuts the window into at most
/// [`AUTO_BUCKETS`].
const BUCKET_SIZES: &[u64] = &[
    1,
    5,
    10,
    30,
    60,
    300,
    900,
    1800,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86_400,
];
const AUTO_BUCKETS: u64 = 60;
/// Buckets one call may ask for at most (each is one GetStats).
const MAX_BUCKETS: u64 = 500;

/// The window cut into buckets aligned to their size, each counted by GetStats:
/// `{"bucket_seconds": S, "buckets": [GetStats answer, ...]}` in time order.
async fn buckets(ctx: &Ctx, req: GetStatsRequest, bucket: &str) -> Result<Response, ApiError> {
    // Whole seconds, the current one included.
    let now = now_ns() / NANOS + 1;
    let until = req.until.as_ref().map_or(now, |t| t.seconds).min(now);
    let since = match &req.since {
        Some(t) => t.seconds,
        None => now - req.last_seconds,
    };
    let span = u64::try_from(until - since).unwrap_or(0).max(1);
    let size = if bucket.eq_ignore_ascii_case("auto") {
        BUCKET_SIZES
            .iter()
            .copied()
            .find(|s| span.div_ceil(*s) <= AUTO_BUCKETS)
            .unwrap_or(86_400)
    } else {
        parse_duration(bucket)
            .map_err(|e| ApiError::bad_request(format!("bucket: {e}, or AUTO")))?
            .as_secs()
    };
    if size == 0 || span.div_ceil(size) + 1 > MAX_BUCKETS {
        return Err(ApiError::bad_request(format!(
            "bucket: {bucket} cuts the window into more than {MAX_BUCKETS} buckets; give a \
             longer bucket or AUTO"
        )));
    }
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    let mut out = Vec::new();
    let mut start = since.div_euclid(size) * size;
    while start < until {
        let one = GetStatsRequest {
            since: Some(Timestamp {
                seconds: start,
                nanos: 0,
            }),
            until: Some(Timestamp {
                seconds: (start + size).min(until),
                nanos: 0,
            }),
            last_seconds: 0,
            ..req.clone()
        };
        out.push(stats_json(&stats::get_stats(&ctx.state, one).await?));
        start += size;
    }
    Ok(json(&json!({ "bucket_seconds": size, "buckets": out })))
}

/// `GET api/v1/tappers?node=...&connected=true`, a page at a time (`page_token`).
pub async fn tappers(State(ctx): State<Arc<Ctx>>, parts: Parts) -> Result<Response, ApiError> {
    ctx.auth.authorize(&parts)?;
    let q = Query::parse(
        parts.uri.query(),
        &["node", "connected", "page_size", "page_token"],
    )?;
    let req = ListTappersRequest {
        node: q.values("node"),
        connected_only: q.flag("connected")?,
        page_size: q.parsed("page_size", "a count")?.unwrap_or(0),
        page_token: q.one("page_token")?.unwrap_or_default(),
    };
    let answer = list_tappers::list_tappers(&ctx.state, req).await?;
    let tappers: Vec<_> = answer.tappers.iter().map(tapper_json).collect();
    Ok(json(&json!({
        "tappers": tappers,
        "next_page_token": answer.next_page_token,
    })))
}

/// `GET api/v1/alerts`: `{"alerts": [...]}`, empty without `--alert-rules`.
pub async fn alerts(State(ctx): State<Arc<Ctx>>, parts: Parts) -> Result<Response, ApiError> {
    ctx.auth.authorize(&parts)?;
    Query::parse(parts.uri.query(), &[])?;
    let alerts = ctx
        .alerts
        .as_ref()
        .map(|a| a.firing_json())
        .unwrap_or_default();
    Ok(json(&json!({ "alerts": alerts })))
}
