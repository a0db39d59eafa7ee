//! A workload process: threads that make a planned mix of failing and successful
//! `socket()` calls, then a manifest of exactly what each thread did.

use std::{collections::BTreeMap, fs, sync::Barrier};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::{
    provoke::{self, Failure},
    seccomp,
    uring::SocketRing,
};

/// What each thread does. EMFILE runs in a second phase, once the process has used up
/// its descriptor limit, so that it cannot turn the first phase's successes into failures.
#[derive(Clone, Debug)]
pub struct Plan {
    pub threads: usize,
    /// Failures per thread, by kind.
    pub failures: BTreeMap<Failure, u32>,
    /// Successful calls per thread.
    pub successes: u32,
    /// With a seed, each thread draws its counts from 0..=planned and shuffles its calls.
    pub seed: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ThreadReport {
    pub tid: u32,
    pub comm: String,
    pub failures: BTreeMap<Failure, u32>,
    pub successes: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub pid: u32,
    pub threads: Vec<ThreadReport>,
}

impl Manifest {
    pub fn failures(&self) -> BTreeMap<Failure, u32> {
        let mut total = BTreeMap::new();
        for thread in &self.threads {
            for (failure, n) in &thread.failures {
                *total.entry(*failure).or_default() += n;
            }
        }
        total
    }

    /// Calls that entered `socket()`: successes and failures the kernel's socket code saw
    /// through the system call (not seccomp-denied, not io_uring).
    pub fn entered_calls(&self) -> u64 {
        self.threads
            .iter()
            .map(|t| {
                let failures = t.failures.iter().filter(|(f, _)| f.enters_socket());
                t.successes as u64 + failures.map(|(_, &n)| n as u64).sum::<u64>()
            })
            .sum()
    }

    pub fn calls(&self) -> u64 {
        self.threads
            .iter()
            .map(|t| t.successes as u64 + t.failures.values().map(|&n| n as u64).sum::<u64>())
            .sum()
    }
}

pub fn run(plan: &Plan) -> anyhow::Result<Manifest> {
    let mut threads = run_phase(plan, |f| f != Failure::Emfile, plan.successes)?;
    if plan.failures.get(&Failure::Emfile).is_some_and(|&n| n > 0) {
        let exhausted = ExhaustedFds::new()?;
        threads.extend(run_phase(plan, |f| f == Failure::Emfile, 0)?);
        drop(exhausted);
    }
    Ok(Manifest {
        pid: std::process::id(),
        threads,
    })
}

fn run_phase(
    plan: &Plan,
    include: impl Fn(Failure) -> bool + Sync,
    successes: u32,
) -> anyhow::Result<Vec<ThreadReport>> {
    let start = Barrier::new(plan.threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..plan.threads)
            .map(|index| {
                let (start, include) = (&start, &include);
                scope.spawn(move || {
                    let mut rng = plan
                        .seed
                        .map(|seed| fastrand::Rng::with_seed(seed ^ index as u64));
                    let mut calls = Vec::new();
                    let mut report = ThreadReport::default();
                    for (&failure, &planned) in plan.failures.iter().filter(|(f, _)| include(**f)) {
                        let n = rng.as_mut().map_or(planned, |r| r.u32(0..=planned));
                        calls.extend(std::iter::repeat_n(Some(failure), n as usize));
                        report.failures.insert(failure, n);
                    }
                    let n = rng.as_mut().map_or(successes, |r| r.u32(0..=successes));
                    calls.extend(std::iter::repeat_n(None, n as usize));
                    report.successes = n;
                    if let Some(rng) = rng.as_mut() {
                        rng.shuffle(&mut calls);
                    }
                    start.wait();
                    thread_body(&calls, report)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("workload thread panicked"))
            .collect()
    })
}

fn thread_body(
    calls: &[Option<Failure>],
    mut report: ThreadReport,
) -> anyhow::Result<ThreadReport> {
    report.tid = nix::unistd::gettid().as_raw() as u32;
    // prctl, not /proc: in the EMFILE phase no descriptor is left to open a file with.
    report.comm = nix::sys::prctl::get_name()?.to_string_lossy().into_owned();
    let planned = |f: Failure| report.failures.get(&f).is_some_and(|&n| n > 0);
    if planned(Failure::Eperm) {
        provoke::drop_net_raw_in_this_thread()?;
    }
    if planned(Failure::Seccomp) {
        seccomp::deny_inet6_sockets_in_this_thread()?;
    }
    let mut ring = if planned(Failure::UringEafnosupport) || planned(Failure::UringEinval) {
        Some(SocketRing::new()?)
    } else {
        None
    };
    for call in calls {
        match call {
            Some(failure) => provoke::provoke(*failure, ring.as_mut())?,
            None => provoke::succeed()?,
        }
    }
    Ok(report)
}

/// Lowers the soft `RLIMIT_NOFILE` and fills it with `/dev/null` descriptors (not sockets,
/// so filling provokes no socket failure); dropping it restores everything.
struct ExhaustedFds {
    fds: Vec<i32>,
    soft: u64,
    hard: u64,
}

impl ExhaustedFds {
    fn new() -> anyhow::Result<Self> {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
        let open = fs::read_dir("/proc/self/fd")?.count() as u64;
        setrlimit(Resource::RLIMIT_NOFILE, open + 32, hard).context("lowering RLIMIT_NOFILE")?;
        let mut fds = Vec::new();
        loop {
            // SAFETY: opens a path with a NUL-terminated literal.
            let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
            if fd >= 0 {
                fds.push(fd);
                continue;
            }
            let errno = std::io::Error::last_os_error().raw_os_error();
            if errno != Some(libc::EMFILE) {
                bail!("filling the descriptor table stopped with {errno:?}, not EMFILE");
            }
            break;
        }
        Ok(Self { fds, soft, hard })
    }
}

impl Drop for ExhaustedFds {
    fn drop(&mut self) {
        self.fds.iter().for_each(|&fd| provoke::close(fd));
        let _ = nix::sys::resource::setrlimit(
            nix::sys::resource::Resource::RLIMIT_NOFILE,
            self.soft,
            self.hard,
        );
    }
}
