//! Each process's memory map and its files' build ids, cached for a short while: later
//! stacks of the same process resolve even after it exited, and a map is read at most once
//! per period.

use std::{collections::HashMap, rc::Rc, time::Duration};

use super::{
    build_id::BuildId,
    index::BuildIdIndex,
    maps::{self, FileId, Mapping},
};
use crate::ttl_cache::TtlCache;

/// How long a process's memory map is trusted (bounds staleness after `dlopen`, `execve`
/// or pid reuse).
const MAP_TTL: Duration = Duration::from_secs(2);
/// Above this many processes, expired entries are swept on insert.
const SWEEP_ABOVE: usize = 1024;

/// A process's file mappings, sorted by address, and the build ids of those files.
pub struct ProcessFiles {
    mappings: Vec<Mapping>,
    build_ids: HashMap<FileId, BuildId>,
}

impl ProcessFiles {
    /// The mapping that holds `address` and the address's file offset.
    pub fn place_of(&self, address: u64) -> Option<(&Mapping, u64)> {
        let mapping = maps::find(&self.mappings, address)?;
        Some((mapping, mapping.offset_of(address)))
    }

    /// A mapping of the file whose build id is `id`.
    pub fn mapping_of(&self, id: &BuildId) -> Option<&Mapping> {
        self.mappings
            .iter()
            .find(|m| self.build_ids.get(&m.file) == Some(id))
    }
}

pub struct Normalizer {
    per_pid: TtlCache<u32, Option<Rc<ProcessFiles>>>,
}

impl Normalizer {
    pub fn new() -> Self {
        Self {
            per_pid: TtlCache::new(MAP_TTL, SWEEP_ABOVE),
        }
    }

    /// `pid`'s files, read (and their build ids indexed) at most once per period; `None`
    /// when its map cannot be read (it is gone).
    pub fn files(&mut self, pid: u32, index: &mut BuildIdIndex) -> Option<Rc<ProcessFiles>> {
        self.per_pid.get_or_read(pid, |&pid| match maps::read(pid) {
            Ok(mappings) => {
                let build_ids = index.learn_mappings(pid, &mappings);
                Some(Rc::new(ProcessFiles {
                    mappings,
                    build_ids,
                }))
            }
            Err(err) => {
                tracing::debug!(pid, "cannot read the memory map for a user stack: {err}");
                None
            }
        })
    }
}
