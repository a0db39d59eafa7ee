//! The page's login: `POST api/v1/session` checks a read or admin token and sets the
//! `tapper_session` cookie, a random id kept in memory (a bounded map, 12 h at most);
//! `DELETE` logs out; `GET` says whether a login is needed and whether this one holds.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderValue, header, request::Parts},
    response::{IntoResponse, Response},
};
use rand::RngCore;
use serde_json::{Value, json};

use crate::api::http::{
    Ctx,
    auth::{SESSION_COOKIE, session_id},
    reply::{ApiError, json},
};

/// Sessions kept at most; the oldest goes first.
const MAX_SESSIONS: usize = 1024;
/// A session ends this long after its login at the latest.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The login sessions: id -> the token it stands for.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

struct Session {
    authorization: HeaderValue,
    created: Instant,
}

impl Sessions {
    /// A new session for `authorization`; returns its id.
    pub fn create(&self, authorization: HeaderValue) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.created.elapsed() < SESSION_LIFETIME);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(id, _)| id.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            id.clone(),
            Session {
                authorization,
                created: Instant::now(),
            },
        );
        id
    }

    /// The token a live session stands for.
    pub fn authorization(&self, id: &str) -> Option<HeaderValue> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(id) {
            Some(s) if s.created.elapsed() < SESSION_LIFETIME => Some(s.authorization.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, id: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

fn status_json(auth_required: bool, logged_in: bool) -> Value {
    json!({ "auth_required": auth_required, "logged_in": logged_in })
}

/// `GET api/v1/session`, answered without a token.
pub async fn status(State(ctx): State<Arc<Ctx>>, parts: Parts) -> Response {
    let required = ctx.auth.required();
    let logged_in = !required || ctx.auth.authorize(&parts).is_ok();
    json(&status_json(required, logged_in))
}

/// `POST api/v1/session` with `{"token": "..."}`.
pub async fn login(
    State(ctx): State<Arc<Ctx>>,
    parts: Parts,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !ctx.auth.required() {
        return Ok(json(&status_json(false, true)));
    }
    let bad = || ApiError::bad_request(r#"send JSON {"token": "<read or admin token>"}"#);
    let body: Value = serde_json::from_slice(&body).map_err(|_| bad())?;
    let token = body.get("token").and_then(Value::as_str).ok_or_else(bad)?;
    let authorization = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| ApiError::unauthorized("the token is not valid"))?;
    ctx.auth.check_login(&parts, authorization.clone())?;
    let id = ctx.auth.sessions.create(authorization);
    let cookie = cookie(&ctx, &id, SESSION_LIFETIME.as_secs());
    Ok((
        [(header::SET_COOKIE, cookie)],
        json(&status_json(true, true)),
    )
        .into_response())
}

/// `DELETE api/v1/session`: forgets the session and clears the cookie.
pub async fn logout(State(ctx): State<Arc<Ctx>>, parts: Parts) -> Response {
    if let Some(id) = session_id(&parts.headers) {
        ctx.auth.sessions.remove(&id);
    }
    let cookie = cookie(&ctx, "", 0);
    let required = ctx.auth.required();
    (
        [(header::SET_COOKIE, cookie)],
        json(&status_json(required, !required)),
    )
        .into_response()
}

fn cookie(ctx: &Ctx, value: &str, max_age: u64) -> String {
    let secure = if ctx.auth.secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path={}; Max-Age={max_age}{secure}",
        ctx.auth.cookie_path
    )
}
