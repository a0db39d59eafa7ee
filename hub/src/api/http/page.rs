//! The page: the files of `hub/web/`, embedded at build time (see `build.rs`), served with
//! their content type and a Content-Security-Policy that allows nothing from elsewhere.

use axum::{
    extract::Path,
    http::{HeaderName, header},
    response::{IntoResponse, Response},
};

use crate::api::http::reply::ApiError;

include!(concat!(env!("OUT_DIR"), "/web_files.rs"));

/// The page runs only its own scripts and styles, talks only to its hub, is never framed.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                   script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'";

/// `GET B/` and `GET B/index.html`.
pub async fn index() -> Response {
    serve("index.html")
}

/// `GET B/assets/NAME`: `hub/web/assets/NAME`, or `hub/web/NAME`.
pub async fn asset(Path(name): Path<String>) -> Response {
    let nested = format!("assets/{name}");
    if find(&nested).is_some() {
        serve(&nested)
    } else {
        serve(&name)
    }
}

fn find(name: &str) -> Option<&'static [u8]> {
    WEB_FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}

fn serve(name: &str) -> Response {
    let Some(bytes) = find(name) else {
        return ApiError::not_found(name).into_response();
    };
    let headers: [(HeaderName, &str); 3] = [
        (header::CONTENT_TYPE, content_type(name)),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (headers, bytes).into_response()
}

/// The content type of a file of the page, by its extension.
fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
