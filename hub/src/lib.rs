//! The hub: the central service tappers report failed socket() calls to over gRPC, and
//! operators subscribe to, aggregate across nodes and list tappers from.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hub::StartError> {
//! let hub = hub::Hub::bind(hub::Config::new("127.0.0.1:0".parse().unwrap(), ":memory:")).await?;
//! let addr = hub.local_addr();
//! hub.serve_until(async { /* resolve to shut down */ }).await?;
//! # let _ = addr; Ok(()) }
//! ```

mod api;
mod app;
mod error;
mod ingest;
mod ops;
mod security;
mod store;
mod util;

pub use app::{
    config::{Config, ConfigError, DEFAULT_SUBSCRIBER_QUEUE_BYTES, options::Options},
    hub::{Hub, StartError},
};
pub use ops::{alerts::RulesError, retention::Retention};
pub use security::{
    message_size::DEFAULT_MAX_MESSAGE_BYTES,
    node_identity::NodeIdentity,
    tls::{TlsError, TlsFiles},
    tokens::TokensError,
};
pub use store::{QueryBudget, with_causes};
pub use tapper_proto::flag_text::parse_duration;
