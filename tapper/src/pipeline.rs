//! What happens to each record drained from the kernel (or made by the rate limit's
//! sweep): decode, filter, enrich, then write it locally and ship it to the hub.

use tapper_common::SocketFailure;

use crate::{
    clock::WallClock,
    counters::UserCounters,
    enrich::{ProcessCache, read_limits},
    event,
    filter::Filter,
    identity::IdentityResolver,
    output::EventWriter,
    rate_limit::Sweep,
    ship::HubShipper,
};

pub struct Pipeline {
    filter: Filter,
    clock: WallClock,
    processes: ProcessCache,
    identity: IdentityResolver,
    writer: EventWriter,
    /// Present while the kernel's rate limit is on.
    sweep: Option<Sweep>,
    pub hub: Option<HubShipper>,
    pub counters: UserCounters,
}

impl Pipeline {
    pub fn new(
        filter: Filter,
        identity: IdentityResolver,
        writer: EventWriter,
        sweep: Option<Sweep>,
        hub: Option<HubShipper>,
    ) -> Self {
        Self {
            filter,
            clock: WallClock::sample(),
            processes: ProcessCache::new(),
            identity,
            writer,
            sweep,
            hub,
            counters: UserCounters::default(),
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
        self.counters.events_received += 1;
        if let Some(sweep) = self.sweep.as_mut() {
            sweep.remember(&raw);
        }
        self.emit(&raw)
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
            self.emit(raw)?;
        }
        self.flush()?;
        Ok(left)
    }

    fn emit(&mut self, raw: &SocketFailure) -> std::io::Result<()> {
        if !self.filter.matches(raw) {
            return Ok(());
        }
        let process = self.processes.lookup(raw.tgid);
        let limits = read_limits(raw.tgid, raw.errno);
        let identity =
            self.identity
                .resolve(raw.cgroup_id, process.cgroup_v1.as_deref(), raw.errno);
        let event = event::build(raw, &self.clock, process, limits, identity);
        self.writer.write(&event)?;
        if let Some(hub) = &self.hub {
            hub.ship(event);
        }
        self.counters.events_shown += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}
