//! `GET api/v1/stats` and `GET api/v1/tappers`: GetStats and ListTappers from a query
//! string, answered in the JSON `hub-client --json` prints; `GET api/v1/alerts`: the alerts
//! firing, as Alertmanager gets them.

use std::sync::Arc;

use axum::{extract::State, http::request::Parts, response::Response};
use serde_json::json;
use tapper_proto::{
    json::{stats_json, tapper_json},
    v1::{GetStatsRequest, GroupBy, ListTappersRequest},
};

use crate::api::{
    http::{
        Ctx,
        query::Query,
        reply::{ApiError, json},
    },
    list_tappers, stats,
};

/// The stats window when the call gives neither `window` nor `from`.
const DEFAULT_WINDOW_SECS: i64 = 3600;
/// The `group_by` keys, as GetStats names them (`GROUP_BY_` + the key in capitals).
const GROUP_KEYS: &str = "node, errno, family, comm, cgroup, namespace, pod, container";

/// `GET api/v1/stats?group_by=node,errno&window=15m` (or `from`/`to`), `node` filters.
pub async fn stats(State(ctx): State<Arc<Ctx>>, parts: Parts) -> Result<Response, ApiError> {
    ctx.auth.authorize(&parts)?;
    let q = Query::parse(
        parts.uri.query(),
        &["group_by", "window", "from", "to", "node"],
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
    let answer = stats::get_stats(&ctx.state, req).await?;
    Ok(json(&stats_json(&answer)))
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
