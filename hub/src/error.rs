//! The hub's errors and how each maps to a precise gRPC status code.

use tonic::{Code, Status};

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
    /// The store failed; the request changed nothing.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The hub is shutting down.
    #[error("hub is shutting down")]
    ShuttingDown,
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
            Self::Store(StoreError::Busy(_)) | Self::ShuttingDown => Code::Unavailable,
            Self::Store(_) => Code::Internal,
        }
    }
}

impl From<HubError> for Status {
    fn from(e: HubError) -> Self {
        Status::new(e.code(), e.to_string())
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
}
