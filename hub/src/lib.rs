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

mod alerts;
mod auth;
mod auth_deadline;
mod clock;
mod closing;
mod config;
mod config_file;
mod credentials;
mod db_tail;
mod error;
mod fanout;
mod filter;
mod group_commit;
mod limits;
mod listener;
mod metrics;
mod node_identity;
mod peer_limits;
mod reject_log;
mod reload;
mod report;
mod retention;
mod revocable;
mod server;
mod service;
mod state;
mod stats;
mod store;
mod subscribe;
mod tappers;
mod tls;
mod tokens;
mod validate;

pub use alerts::RulesError;
pub use config::{Config, ConfigError, DEFAULT_SUBSCRIBER_QUEUE_BYTES};
pub use limits::DEFAULT_MAX_MESSAGE_BYTES;
pub use node_identity::NodeIdentity;
pub use retention::{Retention, parse_duration};
pub use server::{Hub, StartError};
pub use store::QueryBudget;
pub use tls::{TlsError, TlsFiles};
pub use tokens::TokensError;
