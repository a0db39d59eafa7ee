//! Client library for the tapper hub (`tapper.v1.Hub`).
//!
//! # Reporting (what a tapper uses)
//!
//! ```no_run
//! # async fn demo() -> Result<(), hub_client::ClientError> {
//! use std::time::Duration;
//! use hub_client::{Reporter, ReporterConfig, proto::v1::{Counters, Event}};
//!
//! let mut cfg = ReporterConfig::new("http://hub.example:50051", "node-a");
//! cfg.kernel_release = "6.18.0".into();
//! cfg.probe_mode = "tracepoint".into();
//! cfg.buffer_capacity = 100_000;
//! let reporter = Reporter::spawn(cfg)?; // needs a tokio runtime; returns at once
//!
//! // From the event loop: never blocks, returns the event's seq.
//! let seq = reporter.send_event(Event { errno: 24, errno_name: "EMFILE".into(), ..Default::default() });
//! // Kernel ring-buffer drops, as a loss record with its own seq:
//! reporter.report_loss(3, "kernel ring buffer full");
//! // Cumulative counters, e.g. on the stats interval:
//! reporter.send_counters(Counters { calls: 10, failures: 4, ..Default::default() });
//!
//! // At exit: wait (bounded) until the hub acked everything, then stop.
//! let stats = reporter.shutdown(Duration::from_secs(5)).await;
//! assert!(stats.acked_seq <= stats.last_seq);
//! # let _ = seq; Ok(()) }
//! ```
//!
//! - The reporter assigns seq numbers 1, 2, 3, … per instance; every number is an event or
//!   part of exactly one loss record, so the hub and its subscribers can account for gaps.
//! - Un-acked events stay in a buffer bounded in events and encoded bytes
//!   ([`ReporterConfig::buffer_capacity`], [`ReporterConfig::buffer_bytes`]) and are re-sent
//!   after a reconnect (the hub deduplicates). When the buffer is full, new events are
//!   dropped and reported in-band as a `"reporter buffer full"` loss record covering exactly
//!   their seq numbers.
//! - Batches stay within [`ReporterConfig::max_batch`] events and
//!   [`ReporterConfig::max_batch_bytes`] encoded bytes; a bigger single event goes alone.
//!   The first event after a quiet spell goes at once; under load a message goes at most
//!   [`ReporterConfig::max_sends_per_second`] times a second, so batches grow with the
//!   event rate, and no event waits longer than [`ReporterConfig::linger`]. At most
//!   [`ReporterConfig::max_in_flight`] messages are un-acked, so a busy node sends few
//!   large batches paced by the hub's acks.
//! - A message the hub refuses for good (`INVALID_ARGUMENT`, `OUT_OF_RANGE`,
//!   `RESOURCE_EXHAUSTED`) is never re-sent: its events become one loss record whose reason
//!   starts with `"rejected by the hub: "` and quotes the hub's status; the reporter
//!   reconnects and goes on. Other errors re-send after a reconnect.
//! - An ack above the highest seq this reporter sent is clamped to it and logged.
//! - Reconnects use exponential back-off with jitter ([`ReporterConfig::backoff_initial`],
//!   [`ReporterConfig::backoff_max`]).
//!
//! # Several hubs (failover)
//! [`ReporterConfig::hubs`] may list several addresses, e.g.
//! `ReporterConfig::new("http://a:50051,http://b:50051", "node-a")`. The reporter connects to the first; when a connect fails or a stream breaks it moves on
//! to the next, wrapping around ([`Failover`]). The back-off grows once per round in
//! which every hub failed. Acked events have left the buffer and are never re-sent; the
//! un-acked ones go to the next hub after its Hello ack, which says how much of this
//! instance it already holds. Dedup and acks stay exact across hubs that share one
//! database (replicas); a hub with a database of its own sees only what it was sent, and
//! lacking what another hub acked it acks nothing newer (the reporter warns).
//!
//! # Security
//! An `https://` URL means TLS: the hub's certificate is checked against
//! [`Credentials::tls_ca`] (or the system roots), a client certificate is presented with
//! [`Credentials::tls_cert`]/[`Credentials::tls_key`] (mTLS), and never is there a
//! plaintext fallback. A token ([`Credentials::token`]) goes on every call as
//! `authorization: Bearer TOKEN`; the reporter re-reads a token file on each reconnect.
//!
//! # Querying
//! [`connect`] gives a [`proto::v1::hub_client::HubClient`] for `Subscribe`, `GetStats`
//! and `ListTappers`; [`connect_with`] takes a [`ClientConfig`] (timeout, message-size limit).

mod backoff;
mod buffer;
mod config;
mod connect;
mod credentials;
mod error;
mod failover;
mod hubs;
mod pacing;
mod reporter;
mod wire;

pub use buffer::{REASON_BUFFER_FULL, REASON_REJECTED};
pub use config::{ReporterConfig, random_instance_id};
pub use connect::{ClientConfig, HubChannel, connect, connect_with, normalize_url};
pub use credentials::{Bearer, Credentials, TOKEN_ENV, TokenSource};
pub use error::{ClientError, connection_hint, is_refusal};
pub use failover::{Failover, Retry};
pub use hubs::{parse_hub_address, parse_hub_list};
pub use reporter::{REFUSAL_FIX, Reporter, ReporterHandle, ReporterStats};
/// The generated wire types (`tapper-proto`).
pub use tapper_proto as proto;
