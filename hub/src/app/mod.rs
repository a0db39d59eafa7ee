//! Bootstrap: the options, and [`Hub`] that opens the store, wires every part together, owns
//! the shared state and serves until shutdown.

pub mod config;
pub mod hub;
