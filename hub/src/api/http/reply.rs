//! The API's answers: JSON bodies, and errors as `{"error": "..."}` with the HTTP status of
//! the gRPC code the same failure has on the gRPC side.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use tonic::{Code, Status};

use crate::error::HubError;

/// Seconds a client is told to wait after a 429 or a 503.
const RETRY_AFTER_SECS: u64 = 5;

/// A refused API call: its status and a one-line message saying what to do.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn not_found(path: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "nothing at {path:?}; the page is at the base path's /, the API under /api/v1/"
            ),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: message.into(),
        }
    }
}

impl From<Status> for ApiError {
    fn from(s: Status) -> Self {
        let status = match s.code() {
            Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
                StatusCode::BAD_REQUEST
            }
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match status {
            StatusCode::TOO_MANY_REQUESTS => {
                format!("{}; try again later or narrow the query", s.message())
            }
            _ => s.message().to_owned(),
        };
        Self { status, message }
    }
}

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        Status::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, json_body(&json!({ "error": self.message }))).into_response();
        if matches!(
            self.status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}

/// A `200 application/json` answer.
pub fn json(value: &Value) -> Response {
    json_body(value).into_response()
}

fn json_body(value: &Value) -> ([(header::HeaderName, &'static str); 1], String) {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
}
