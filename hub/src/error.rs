//! The hub's errors and how each maps to a precise gRPC status code. Statuses stay short
//! and never carry store internals: those go to the log under a reference the status names.

use std::sync::atomic::{AtomicU64, Ordering};

use tapper_proto::limits::MAX_STATUS_MESSAGE;
use tonic::{Code, Status};
use tracing::error;

use crate::store::StoreError;

/// Everything a hub request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The request is malformed; `field` names the offending field (e.g. `errno[1]`).
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// A name the request refers to does not exist (e.g. an unknown node).
    #[error("{what} {name:?} not found")]
    NotFound { what: &'static str, name: String },
    /// A limit was reached (a query budget, a page, a count of streams).
    #[error("{0}")]
    ResourceExhausted(String),
    /// The caller is authenticated but may not do this (e.g. report as another node).
    #[error("{0}")]
    PermissionDenied(String),
    /// The request conflicts with the hub's state (e.g. an instance already streaming).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The store failed; the request changed nothing.
    #[error("store: {0}")]
    Store(StoreError),
    /// The hub is shutting down.
    #[error("hub is shutting down")]
    ShuttingDown,
}

impl From<StoreError> for HubError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected { field, reason } => Self::invalid(field, reason),
            StoreError::OverBudget(what) => Self::ResourceExhausted(what),
            e => Self::Store(e),
        }
    }
}

impl HubError {
    /// Shorthand for [`HubError::InvalidArgument`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    fn code(&self) -> Code {
        match self {
            Self::InvalidArgument { .. } => Code::InvalidArgument,
            Self::NotFound { .. } => Code::NotFound,
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::Store(StoreError::Busy(_)) | Self::ShuttingDown => Code::Unavailable,
            Self::Store(_) => Code::Internal,
        }
    }

    /// The status text: store failures are logged in full and named by a reference only.
    fn message(&self) -> String {
        static REFS: AtomicU64 = AtomicU64::new(1);
        match self {
            Self::Store(StoreError::Busy(_)) => "store busy; retry".into(),
            Self::Store(e) => {
                let r = REFS.fetch_add(1, Ordering::Relaxed);
                error!(reference = r, error = %e, "internal store error");
                format!("internal store error (ref {r}, see the hub log)")
            }
            e => e.to_string(),
        }
    }
}

/// Cuts `text` to [`MAX_STATUS_MESSAGE`] bytes at a character boundary, marking the cut.
fn cap(mut text: String) -> String {
    if text.len() > MAX_STATUS_MESSAGE {
        let mut end = MAX_STATUS_MESSAGE - '…'.len_utf8();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

impl From<HubError> for Status {
    fn from(e: HubError) -> Self {
        Status::new(e.code(), cap(e.message()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_names_the_field() {
        let s = Status::from(HubError::invalid("errno[0]", "unknown errno name \"EFOO\""));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().starts_with("errno[0]: "), "{}", s.message());
    }

    #[test]
    fn not_found_names_the_node() {
        let s = Status::from(HubError::NotFound {
            what: "node",
            name: "x".into(),
        });
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(s.message(), "node \"x\" not found");
    }

    #[test]
    fn store_internals_stay_out_of_statuses() {
        let sql = format!(
            "SELECT * FROM events WHERE node IN ({})",
            "?, ".repeat(40_000)
        );
        let s = Status::from(HubError::from(StoreError::Engine {
            engine: "sqlite",
            source: sql.into(),
        }));
        assert_eq!(s.code(), Code::Internal);
        assert!(
            s.message().starts_with("internal store error (ref "),
            "{}",
            s.message()
        );
        assert!(!s.message().contains("SELECT"));
    }

    #[test]
    fn long_messages_are_cut() {
        let s = Status::from(HubError::invalid("comm", "é".repeat(10_000)));
        assert!(
            s.message().len() <= MAX_STATUS_MESSAGE,
            "{}",
            s.message().len()
        );
        assert!(s.message().ends_with('…'));
    }

    #[test]
    fn store_rejections_and_budgets_keep_their_codes() {
        let s = Status::from(HubError::from(StoreError::Rejected {
            field: "loss.first_seq",
            reason: "overlaps".into(),
        }));
        assert_eq!(
            (s.code(), s.message()),
            (Code::InvalidArgument, "loss.first_seq: overlaps")
        );
        let s = Status::from(HubError::from(StoreError::OverBudget("too long".into())));
        assert_eq!(s.code(), Code::ResourceExhausted);
    }
}
