//! The one logging setup of the tapper, the hub and hub-client: logs to stderr, colour
//! only on a terminal, `-v` raises the level, and `RUST_LOG` overrides both; and the rule
//! for warnings that repeat ([`LogBudget`]).

mod log_budget;

use std::io::IsTerminal;

pub use log_budget::LogBudget;

use tracing_subscriber::EnvFilter;
/// The level type [`init`] takes.
pub use tracing_subscriber::filter::LevelFilter;

/// Installs the global subscriber. `quiet` is the level without `-v`; each `-v` (the count
/// in `verbose`) raises it one step, up to trace. A set `RUST_LOG` replaces the level.
pub fn init(quiet: LevelFilter, verbose: u8) {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new(level(quiet, verbose).to_string())),
        )
        .init();
}

/// `quiet` raised by `verbose` steps (error → warn → info → debug → trace).
fn level(quiet: LevelFilter, verbose: u8) -> LevelFilter {
    const STEPS: [LevelFilter; 5] = [
        LevelFilter::ERROR,
        LevelFilter::WARN,
        LevelFilter::INFO,
        LevelFilter::DEBUG,
        LevelFilter::TRACE,
    ];
    match STEPS.iter().position(|l| *l == quiet) {
        Some(at) => STEPS[(at + usize::from(verbose)).min(STEPS.len() - 1)],
        None => quiet,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_v_raises_one_step_up_to_trace() {
        assert_eq!(level(LevelFilter::INFO, 0), LevelFilter::INFO);
        assert_eq!(level(LevelFilter::INFO, 1), LevelFilter::DEBUG);
        assert_eq!(level(LevelFilter::INFO, 2), LevelFilter::TRACE);
        assert_eq!(level(LevelFilter::INFO, 9), LevelFilter::TRACE);
        assert_eq!(level(LevelFilter::WARN, 1), LevelFilter::INFO);
        assert_eq!(level(LevelFilter::OFF, 3), LevelFilter::OFF);
    }
}
