//! The hub's API: the `tapper.v1.Hub` gRPC service, one file per RPC, and the page and
//! HTTP/JSON API (`http/`) on the same listener, over the shared state the bootstrap builds;
//! the only layer that sees that state.

pub mod final_items;
pub mod http;
pub mod list_tappers;
pub mod report;
pub mod service;
pub mod state;
pub mod stats;
pub mod subscribe;
pub mod subscribe_reply;
pub mod subscribe_route;
