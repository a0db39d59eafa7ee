//! The hub's HTTP side, on the gRPC listener: the page and the JSON API under `/api/v1`,
//! mounted under `--web-base-path` next to the gRPC routes, with the one fallback.

mod auth;
mod base_path;
mod events;
mod page;
mod query;
mod reply;
mod session;
mod tables;

use std::sync::Arc;

use axum::{
    Router,
    extract::Request,
    http::{HeaderValue, Uri, header},
    middleware::map_response,
    response::{IntoResponse, Redirect, Response},
    routing::get,
};

pub use base_path::BasePath;

use crate::{api::state::HubState, ops::alerts::Alerting, security::credentials::Credentials};

/// What the HTTP side is built from.
pub struct Web {
    pub state: Arc<HubState>,
    pub credentials: Arc<Credentials>,
    pub base: BasePath,
    /// Whether the listener serves TLS (session cookies are then `Secure`).
    pub tls: bool,
    /// Most items one `GET /api/v1/events` page may ask for (`--query-max-rows`).
    pub max_items: usize,
    /// The alert rules, with `--alert-rules`.
    pub alerts: Option<Arc<Alerting>>,
}

/// What every handler shares.
struct Ctx {
    state: Arc<HubState>,
    auth: auth::WebAuth,
    max_items: usize,
    alerts: Option<Arc<Alerting>>,
}

/// The gRPC routes with the page and the API added, and the one fallback: a gRPC call to an
/// unknown path gets UNIMPLEMENTED, anything else a JSON 404.
pub fn with_web(grpc: Router, web: Web) -> Router {
    let Web {
        state,
        credentials,
        base,
        tls,
        max_items,
        alerts,
    } = web;
    let ctx = Arc::new(Ctx {
        state,
        auth: auth::WebAuth::new(credentials, base.cookie_path().to_owned(), tls),
        max_items,
        alerts,
    });
    let mut routes = Router::new()
        .route(&base.join("/"), get(page::index))
        .route(&base.join("/index.html"), get(page::index))
        .route(&base.join("/assets/{*name}"), get(page::asset))
        .route(&base.join("/api/v1/events"), get(events::events))
        .route(&base.join("/api/v1/warnings"), get(events::warnings))
        .route(&base.join("/api/v1/stats"), get(tables::stats))
        .route(&base.join("/api/v1/tappers"), get(tables::tappers))
        .route(&base.join("/api/v1/alerts"), get(tables::alerts))
        .route(
            &base.join("/api/v1/session"),
            get(session::status)
                .post(session::login)
                .delete(session::logout),
        );
    if !base.is_root() {
        routes = routes.route(base.as_str(), get(to_trailing_slash));
    }
    let web = routes.with_state(ctx).layer(map_response(nosniff));
    grpc.merge(web).fallback(fallback)
}

/// `B` redirects to `B/`, keeping the query (the page's filters).
async fn to_trailing_slash(uri: Uri) -> Redirect {
    let target = match uri.query() {
        Some(q) => format!("{}/?{q}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    Redirect::permanent(&target)
}

/// Every web response says `X-Content-Type-Options: nosniff`.
async fn nosniff(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The one fallback of the listener: gRPC calls keep gRPC's answer, never HTML or JSON.
async fn fallback(req: Request) -> Response {
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if grpc {
        return tonic::Status::unimplemented("")
            .into_http::<axum::body::Body>()
            .into_response();
    }
    nosniff(reply::ApiError::not_found(req.uri().path()).into_response()).await
}
