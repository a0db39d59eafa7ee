//! Symbolization off the event path: a thread of its own opens and parses files and looks
//! names up, and the caller waits for a stack's names at most a fixed time. A stack whose
//! names come late goes without them; while the thread is still busy with it, later stacks
//! do not wait at all.

use std::{
    sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError},
    thread,
    time::Duration,
};

use super::{module_file::ModuleFile, symbols::Symbols};

/// One stack's look-ups: (file, file offset) per frame to name.
pub type Lookups = Vec<(ModuleFile, u64)>;

pub struct SymbolWorker {
    /// How long a stack may wait for its names.
    budget: Duration,
    cache_bytes: u64,
    /// Started at the first stack, and again after the thread died.
    thread: Option<Running>,
}

struct Running {
    jobs: SyncSender<Lookups>,
    names: Receiver<Vec<Option<String>>>,
    /// A stack's names missed their deadline and have not come since.
    late: bool,
}

impl SymbolWorker {
    pub fn new(budget: Duration, cache_bytes: u64) -> Self {
        Self {
            budget,
            cache_bytes,
            thread: None,
        }
    }

    /// The names for `lookups`, in order, or `None` when they did not come in time (or
    /// the thread is still busy with a stack that did not).
    pub fn names(&mut self, lookups: Lookups) -> Option<Vec<Option<String>>> {
        if self.thread.is_none() {
            self.thread = Running::start(self.cache_bytes)
                .inspect_err(|err| tracing::warn!("cannot start the stack symbolizer: {err}"))
                .ok();
        }
        let running = self.thread.as_mut()?;
        let answer = running.ask(lookups, self.budget);
        if let Err(Gone) = answer {
            tracing::warn!("the stack symbolizer stopped; starting it again");
            self.thread = None;
        }
        answer.ok().flatten()
    }
}

/// The thread is gone (it panicked).
struct Gone;

impl Running {
    fn start(cache_bytes: u64) -> std::io::Result<Self> {
        // One stack at a time: the caller waits for each.
        let (jobs, job_rx) = mpsc::sync_channel::<Lookups>(1);
        let (names_tx, names) = mpsc::sync_channel(1);
        thread::Builder::new()
            .name("stack-symbols".into())
            .spawn(move || {
                let mut symbols = Symbols::new(cache_bytes);
                for lookups in job_rx {
                    let found = lookups
                        .iter()
                        .map(|(file, offset)| symbols.name(file, *offset))
                        .collect();
                    if names_tx.send(found).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Self {
            jobs,
            names,
            late: false,
        })
    }

    fn ask(
        &mut self,
        lookups: Lookups,
        budget: Duration,
    ) -> Result<Option<Vec<Option<String>>>, Gone> {
        if self.late {
            match self.names.try_recv() {
                Ok(_stale) => self.late = false,
                Err(TryRecvError::Empty) => return Ok(None),
                Err(TryRecvError::Disconnected) => return Err(Gone),
            }
        }
        match self.jobs.try_send(lookups) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Ok(None),
            Err(TrySendError::Disconnected(_)) => return Err(Gone),
        }
        match self.names.recv_timeout(budget) {
            Ok(names) => Ok(Some(names)),
            Err(RecvTimeoutError::Timeout) => {
                self.late = true;
                Ok(None)
            }
            Err(RecvTimeoutError::Disconnected) => Err(Gone),
        }
    }
}
