//! What happens to each record drained from the kernel: decode, filter, enrich, then write
//! it locally and ship it to the hub.

use tapper_common::SocketFailure;

use crate::{
    clock::WallClock,
    counters::UserCounters,
    enrich::{ProcessCache, read_limits},
    event,
    filter::Filter,
    identity::IdentityResolver,
    output::EventWriter,
    ship::HubShipper,
};

pub struct Pipeline {
    filter: Filter,
    clock: WallClock,
    processes: ProcessCache,
    identity: IdentityResolver,
    writer: EventWriter,
    pub hub: Option<HubShipper>,
    pub counters: UserCounters,
}

impl Pipeline {
    pub fn new(
        filter: Filter,
        identity: IdentityResolver,
        writer: EventWriter,
        hub: Option<HubShipper>,
    ) -> Self {
        Self {
            filter,
            clock: WallClock::sample(),
            processes: ProcessCache::new(),
            identity,
            writer,
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

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}
