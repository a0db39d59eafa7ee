//! An error storm: threads provoking one failure in a tight loop for a while, counting
//! every call, reported as a workload manifest.

use std::{
    sync::Barrier,
    time::{Duration, Instant},
};

use crate::{
    provoke::{self, Failure},
    workload::{Manifest, ThreadReport},
};

/// `threads` threads provoke `failure` back to back for `length`.
pub fn run(threads: usize, failure: Failure, length: Duration) -> anyhow::Result<Manifest> {
    let start = Barrier::new(threads);
    let reports = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    storm_thread(failure, length)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("storm thread panicked"))
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    Ok(Manifest {
        pid: std::process::id(),
        threads: reports,
    })
}

fn storm_thread(failure: Failure, length: Duration) -> anyhow::Result<ThreadReport> {
    let until = Instant::now() + length;
    let mut calls = 0u32;
    while Instant::now() < until {
        provoke::provoke(failure, None)?;
        calls += 1;
    }
    Ok(ThreadReport {
        tid: nix::unistd::gettid().as_raw() as u32,
        comm: nix::sys::prctl::get_name()?.to_string_lossy().into_owned(),
        failures: [(failure, calls)].into(),
        successes: 0,
    })
}
