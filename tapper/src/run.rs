//! The agent's main loop: attach, drain the ring buffer as it fills, print counters on an
//! interval, and on SIGINT/SIGTERM detach, drain what is left and print final counters.

use std::{io::IsTerminal, time::Duration};

use anyhow::Context;
use aya::maps::{MapData, RingBuf};
use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{SignalKind, signal},
};

use crate::{
    cli::Cli,
    counters::{KernelCounters, UserCounters},
    filter::Filter,
    output::{EventWriter, Format},
    pipeline::Pipeline,
    probe::{self, Capture},
};

/// After detaching, programs already running on other CPUs may still finish; wait this
/// long before the final drain so the final counters include them.
const DETACH_GRACE: Duration = Duration::from_millis(50);

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let format = cli.output.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Json
    });
    let filter = Filter {
        pids: cli.pids,
        comms: cli.comms,
        errnos: cli.errnos,
    };
    // Before attaching: from the "attached" log line on, a signal must mean a clean stop.
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let Capture {
        probes,
        mode,
        events,
        counters,
    } = probe::attach(cli.probe, cli.ring_buffer_size)?;
    let mut pipeline = Pipeline::new(filter, EventWriter::new(format));
    // SAFETY: the ring buffer owns its map fd, which stays open and unchanged for as long
    // as the AsyncFd owns the ring buffer.
    let mut ring = unsafe { AsyncFd::register_with_interest(events, Interest::READABLE) }
        .map_err(|err| anyhow::anyhow!("polling the ring buffer: {err}"))?;

    let mut stats_tick = cli.stats_interval.map(tokio::time::interval);
    if let Some(tick) = stats_tick.as_mut() {
        tick.tick().await; // the first tick is immediate
    }

    let signal_name = loop {
        tokio::select! {
            readable = ring.readable_mut() => {
                let mut guard = readable.context("waiting on the ring buffer")?;
                drain(guard.get_inner_mut(), &mut pipeline)?;
                guard.clear_ready();
            }
            _ = sigint.recv() => break "SIGINT",
            _ = sigterm.recv() => break "SIGTERM",
            _ = async { stats_tick.as_mut().unwrap().tick().await }, if stats_tick.is_some() => {
                print_counters(&counters, pipeline.counters, format, "interval")?;
            }
        }
    };

    tracing::info!("{signal_name} received; detaching {} probes", mode.as_str());
    drop(probes);
    tokio::time::sleep(DETACH_GRACE).await;
    drain(ring.get_mut(), &mut pipeline)?;
    print_counters(&counters, pipeline.counters, format, "final")
}

fn drain(ring: &mut RingBuf<MapData>, pipeline: &mut Pipeline) -> anyhow::Result<()> {
    while let Some(record) = ring.next() {
        pipeline
            .handle(&record)
            .context("writing an event to stdout")?;
    }
    pipeline.flush().context("flushing stdout")
}

/// Counters go to stderr, so stdout carries only events: as one JSON object in JSON mode,
/// as a readable block otherwise.
fn print_counters(
    kernel: &KernelCounters,
    user: UserCounters,
    format: Format,
    label: &str,
) -> anyhow::Result<()> {
    let snapshot = kernel
        .snapshot(user)
        .context("reading the kernel counters")?;
    if format == Format::Json {
        let line = serde_json::json!({ "counters": label, "stats": snapshot });
        eprintln!("{line}");
    } else {
        eprintln!("{}", snapshot.to_text(label));
    }
    Ok(())
}
