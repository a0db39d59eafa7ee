//! The page: the files of `hub/web/`, embedded in the binary at build time, served with
//! their content type and a Content-Security-Policy that allows nothing from elsewhere.

use axum::{
    extract::Path,
    http::{HeaderName, header},
    response::{IntoResponse, Response},
};

use rust_embed::{EmbeddedFile, RustEmbed};

use crate::api::http::reply::ApiError;

/// Every file under `hub/web/`, compiled into the hub (debug builds included).
#[derive(RustEmbed)]
#[folder = "web/"]
struct WebFiles;

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
    if WebFiles::get(&nested).is_some() {
        serve(&nested)
    } else {
        serve(&name)
    }
}

fn serve(name: &str) -> Response {
    let Some(EmbeddedFile { data, metadata }) = WebFiles::get(name) else {
        return ApiError::not_found(name).into_response();
    };
    let headers: [(HeaderName, &str); 3] = [
        (header::CONTENT_TYPE, metadata.mimetype()),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (headers, data.into_owned()).into_response()
}
