//! `tapper`: parses the flags (and a config file), sets up logging and runs the agent on a one-thread runtime.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli_config::parse_with_config_file::<tapper::Cli>();
    tapper_logging::init(tapper_logging::LevelFilter::INFO, cli.verbose);

    // One thread for the drain loop and the hub reporter: measured to cost about half the
    // CPU of a two-worker runtime at 1,000 events/s (no cross-thread wake-ups).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("tapper: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(tapper::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}
