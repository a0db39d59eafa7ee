//! The tapper: a node agent that catches every failed `socket()` call with eBPF. The
//! `tapper` binary parses [`Cli`] and hands it to [`run`].

mod cli;
mod clock;
mod counters;
mod diagnose;
mod enrich;
mod event;
mod filter;
mod flag_values;
mod identity;
mod metrics;
mod output;
mod pipeline;
mod probe;
mod rate_limit;
mod run;
mod ship;
mod stacks;
mod timers;
mod ttl_cache;
mod warnings;

pub use cli::Cli;
pub use run::run;
