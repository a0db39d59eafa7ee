//! What happens to each record drained from the kernel: decode, filter, enrich, then write
//! it locally and ship it to the hub.

use std::sync::Arc;

use tapper_common::{NofileWarning, SocketFailure};
use tapper_proto::v1::Warning;

use crate::{
    clock::WallClock,
    counters::UserCounters,
    enrich::{ProcessCache, read_limits},
    event,
    filter::Filter,
    identity::IdentityResolver,
    output::EventWriter,
    ship::HubShipper,
    warnings::{WarningCounts, build_nofile},
};

pub struct Pipeline {
    filter: Filter,
    clock: WallClock,
    processes: ProcessCache,
    identity: IdentityResolver,
    writer: EventWriter,
    pub hub: Option<HubShipper>,
    pub counters: UserCounters,
    warning_counts: Arc<WarningCounts>,
}

impl Pipeline {
    pub fn new(
        filter: Filter,
        identity: IdentityResolver,
        writer: EventWriter,
        hub: Option<HubShipper>,
        warning_counts: Arc<WarningCounts>,
    ) -> Self {
        Self {
            filter,
            clock: WallClock::sample(),
            processes: ProcessCache::new(),
            identity,
            writer,
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
        self.counters.events_received += 1;
        if !self.filter.matches(&raw) {
            return Ok(());
        }
        let process = self.processes.lookup(raw.tgid);
        let limits = read_limits(raw.tgid, raw.errno);
        let identity =
            self.identity
                .resolve(raw.cgroup_id, process.cgroup_v1.as_deref(), raw.errno);
        let event = event::build(&raw, &self.clock, process, limits, identity);
        self.writer.write(&event)?;
        if let Some(hub) = &self.hub {
            hub.ship(event);
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
        let warning = build_nofile(raw, eta_seconds, &self.clock, process, identity);
        self.warn(warning)
    }

    /// Writes a warning and ships it.
    pub fn warn(&mut self, warning: Warning) -> std::io::Result<()> {
        tracing::debug!(kind = warning.kind, pid = warning.pid, "warning");
        self.warning_counts.count(&warning.kind);
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
