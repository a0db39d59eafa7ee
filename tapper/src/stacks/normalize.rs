//! Addresses to (mapping, file offset), with each process's memory map cached for a short
//! while: later stacks of the same process resolve even after it exited, and a map is
//! read at most once per period.

use std::{rc::Rc, time::Duration};

use super::maps::{self, Mapping};
use crate::ttl_cache::TtlCache;

/// How long a process's memory map is trusted (bounds staleness after `dlopen`, `execve`
/// or pid reuse).
const MAP_TTL: Duration = Duration::from_secs(2);
/// Above this many processes, expired entries are swept on insert.
const SWEEP_ABOVE: usize = 1024;

pub struct Normalizer {
    per_pid: TtlCache<u32, Option<Rc<[Mapping]>>>,
}

impl Normalizer {
    pub fn new() -> Self {
        Self {
            per_pid: TtlCache::new(MAP_TTL, SWEEP_ABOVE),
        }
    }

    /// For each address, the file mapping that holds it and its file offset, or `None`
    /// when it lies in no file mapping or the process's map cannot be read.
    pub fn normalize(&mut self, pid: u32, addrs: &[u64]) -> Vec<Option<(Mapping, u64)>> {
        let mappings = self.per_pid.get_or_read(pid, |&pid| match maps::read(pid) {
            Ok(mappings) => Some(Rc::from(mappings)),
            Err(err) => {
                tracing::debug!(pid, "cannot read the memory map for a user stack: {err}");
                None
            }
        });
        addrs
            .iter()
            .map(|&address| {
                let mapping = maps::find(mappings.as_deref()?, address)?;
                Some((mapping.clone(), mapping.offset_of(address)))
            })
            .collect()
    }
}
