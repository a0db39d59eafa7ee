//! Uses up descriptors at a steady pace under a low `RLIMIT_NOFILE`: opens one socket per
//! step up to a number of descriptors, holds there (closing and reopening the top one each
//! step), then optionally goes on until the first EMFILE. Prints a JSON summary.

use std::{thread::sleep, time::Duration, time::Instant};

use anyhow::{Context, bail};
use clap::Parser;
use tapper_e2e::provoke::{close, socket_call};

#[derive(Parser)]
#[command(about = "Open sockets steadily under a low descriptor limit")]
struct Args {
    /// The soft RLIMIT_NOFILE to run under.
    #[arg(long, default_value_t = 256)]
    limit: u64,
    /// Milliseconds between two socket() calls.
    #[arg(long, default_value_t = 20)]
    step_ms: u64,
    /// Open sockets until this many descriptors are in use.
    #[arg(long)]
    fds: u64,
    /// Then hold there this many milliseconds, reopening the top socket each step.
    #[arg(long, default_value_t = 0)]
    hold_ms: u64,
    /// Then go on opening until the first EMFILE.
    #[arg(long)]
    until_emfile: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)?;
    nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_NOFILE,
        args.limit,
        hard,
    )
    .context("lowering RLIMIT_NOFILE")?;
    let step = Duration::from_millis(args.step_ms);
    let open = || socket_call(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
    let mut top = -1;
    let mut calls = 0u64;
    // Descriptors are handed out lowest first: `top + 1` are in use.
    while ((top + 1) as u64) < args.fds {
        top = open().map_err(|errno| anyhow::anyhow!("socket() failed early: {errno}"))?;
        calls += 1;
        sleep(step);
    }
    let hold_until = Instant::now() + Duration::from_millis(args.hold_ms);
    while Instant::now() < hold_until {
        close(top);
        top = open().map_err(|errno| anyhow::anyhow!("socket() failed in the hold: {errno}"))?;
        calls += 1;
        sleep(step);
    }
    let mut emfile = false;
    if args.until_emfile {
        loop {
            calls += 1;
            match open() {
                Ok(fd) => top = fd,
                Err(libc::EMFILE) => {
                    emfile = true;
                    break;
                }
                Err(errno) => bail!("socket() failed with errno {errno}, not EMFILE"),
            }
            sleep(step);
        }
    }
    println!(
        "{}",
        serde_json::json!({ "pid": std::process::id(), "top_fd": top, "calls": calls, "emfile": emfile })
    );
    Ok(())
}
