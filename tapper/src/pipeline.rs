//! What happens to each record drained from the kernel (or made by the rate limit's
//! sweep): decode, filter, enrich, diagnose, then write it locally and ship it to the hub.

use std::sync::Arc;

use tapper_common::{NofileWarning, SocketFailure};
use tapper_proto::v1::Warning;

use crate::{
    clock::WallClock,
    counters::UserCounters,
    diagnose::{diagnose, diagnose_warning},
    enrich::{ProcessCache, needs_proc_limits, read_limits},
    event::{self, ProcessParts},
    filter::Filter,
    identity::IdentityResolver,
    output::EventWriter,
    probe::is_self_test,
    rate_limit::Sweep,
    ship::HubShipper,
    stacks::{self, RawStack, StackResolver},
    warnings::{WarningCounts, build_nofile},
};

pub struct Pipeline {
    filter: Filter,
    clock: WallClock,
    processes: ProcessCache,
    identity: IdentityResolver,
    parts: ProcessParts,
    stacks: StackResolver,
    writer: EventWriter,
    /// Present while the kernel's rate limit is on.
    sweep: Option<Sweep>,
    pub hub: Option<HubShipper>,
    pub counters: UserCounters,
    warning_counts: Arc<WarningCounts>,
}

impl Pipeline {
    pub fn new(
        filter: Filter,
        identity: IdentityResolver,
        writer: EventWriter,
        sweep: Option<Sweep>,
        hub: Option<HubShipper>,
        warning_counts: Arc<WarningCounts>,
        stack_cache_bytes: u64,
    ) -> Self {
        Self {
            filter,
            clock: WallClock::sample(),
            processes: ProcessCache::new(),
            identity,
            parts: ProcessParts::default(),
            stacks: StackResolver::new(stack_cache_bytes),
            writer,
            sweep,
            hub,
            counters: UserCounters::default(),
            warning_counts,
        }
    }

    /// Handles one ring-buffer record.
    pub fn handle(&mut self, record: &[u8]) -> std::io::Result<()> {
        if record.len() < size_of::<SocketFailure>() {
            self.counters.malformed += 1;
            return Ok(());
        }
        // SAFETY: the length is checked above and every bit pattern is a valid SocketFailure.
        let raw = unsafe { record.as_ptr().cast::<SocketFailure>().read_unaligned() };
        if is_self_test(&raw) {
            self.counters.self_tests += 1;
            return Ok(());
        }
        self.counters.events_received += 1;
        if let Some(sweep) = self.sweep.as_mut() {
            sweep.remember(&raw);
        }
        self.emit(&raw, stacks::decode(record))
    }

    /// Sweeps the rate limit's quiet keys at `now_ns` (CLOCK_MONOTONIC) and handles a
    /// record for each that had failures pending. Returns whether keys are left to sweep
    /// later. Call it after draining the ring buffer.
    pub fn sweep_suppressed(&mut self, now_ns: u64) -> anyhow::Result<bool> {
        let Some(sweep) = self.sweep.as_mut() else {
            return Ok(false);
        };
        let (records, left) = sweep.sweep(now_ns)?;
        for raw in &records {
            self.counters.sweep_records += 1;
            self.emit(raw, None)?;
        }
        self.flush()?;
        Ok(left)
    }

    /// Filters, enriches, writes and ships one failure; `stack` holds its user stack when
    /// the kernel captured it.
    fn emit(&mut self, raw: &SocketFailure, stack: Option<RawStack>) -> std::io::Result<()> {
        if !self.filter.matches(raw) {
            return Ok(());
        }
        // Read first, while the process most likely still runs.
        let user_stack = match stack {
            Some(stack) => self.stacks.resolve(raw.tgid, raw.uid, &stack),
            None => Vec::new(),
        };
        let process = self.processes.lookup(raw.tgid);
        let limits = needs_proc_limits(&raw.context)
            .then(|| read_limits(raw.tgid, raw.errno))
            .flatten();
        let identity =
            self.identity
                .resolve(raw.cgroup_id, process.cgroup_v1.as_deref(), raw.errno);
        let mut event = event::build(raw, &self.clock, &process, limits, identity.quota);
        event.user_stack = user_stack;
        // Diagnosis reads none of the process part's fields.
        event.diagnosis = Some(diagnose(&event));
        let part = self.parts.get(raw.tgid, &raw.comm, &process, &identity);
        // Local output shows the whole event; the hub gets the two parts as they are.
        let shows = self.writer.shows_events();
        match &self.hub {
            Some(hub) => {
                if shows {
                    self.writer.write(&event::merged(event.clone(), &part))?;
                }
                hub.ship(event, &part);
            }
            None if shows => self.writer.write(&event::merged(event, &part))?,
            None => {}
        }
        self.counters.events_shown += 1;
        Ok(())
    }

    /// Writes and ships a nofile warning once its trend is known, if the process filters
    /// let it through.
    pub fn handle_nofile(
        &mut self,
        raw: &NofileWarning,
        eta_seconds: Option<f64>,
    ) -> std::io::Result<()> {
        if !self.filter.matches_process(raw.tgid, &raw.comm) {
            return Ok(());
        }
        let process = self.processes.lookup(raw.tgid);
        let identity = self
            .identity
            .resolve(raw.cgroup_id, process.cgroup_v1.as_deref(), 0);
        let warning = build_nofile(raw, eta_seconds, &self.clock, &process, &identity);
        self.warn(warning)
    }

    /// Diagnoses a warning, writes it and ships it.
    pub fn warn(&mut self, mut warning: Warning) -> std::io::Result<()> {
        warning.diagnosis = Some(diagnose_warning(&warning));
        tracing::debug!(kind = warning.kind, pid = warning.pid, "warning");
        // The tapper builds every warning with a known kind.
        if let Ok(kind) = warning.kind.parse() {
            self.warning_counts.count(kind);
        }
        self.writer.write_warning(&warning)?;
        self.writer.flush()?;
        if let Some(hub) = &self.hub {
            hub.ship_warning(warning);
        }
        Ok(())
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}
