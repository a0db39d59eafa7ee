//! Addresses to (module, file offset) with blazesym's normalizer, one per process with its
//! memory map cached for a short while: later stacks of the same process resolve even
//! after it exited, and a map is read at most once per period.

use std::{rc::Rc, sync::Arc, time::Duration};

use blazesym::normalize::{Normalizer, UserMeta};

use crate::ttl_cache::TtlCache;

/// How long a process's memory map is trusted (bounds staleness after `dlopen`, `execve`
/// or pid reuse).
const MAP_TTL: Duration = Duration::from_secs(2);
/// Above this many processes, expired entries are swept on insert.
const SWEEP_ABOVE: usize = 1024;

pub struct Normalizers {
    per_pid: TtlCache<u32, Rc<Normalizer>>,
}

impl Normalizers {
    pub fn new() -> Self {
        Self {
            per_pid: TtlCache::new(MAP_TTL, SWEEP_ABOVE),
        }
    }

    /// For each address, its module path and file offset, or `None` when it lies in no
    /// file mapping or the process's map cannot be read.
    pub fn normalize(&mut self, pid: u32, addrs: &[u64]) -> Vec<Option<(Arc<str>, u64)>> {
        let normalizer = self.per_pid.get_or_read(pid, |_| {
            Rc::new(
                Normalizer::builder()
                    .enable_vma_caching(true)
                    .enable_build_ids(false)
                    .build(),
            )
        });
        let output = match normalizer.normalize_user_addrs(pid.into(), addrs) {
            Ok(output) => output,
            Err(err) => {
                tracing::debug!(pid, "cannot normalize a user stack: {err}");
                return vec![None; addrs.len()];
            }
        };
        let modules: Vec<Option<Arc<str>>> = output
            .meta
            .iter()
            .map(|meta| match meta {
                UserMeta::Elf(elf) => Some(Arc::from(elf.path.to_string_lossy().as_ref())),
                _ => None,
            })
            .collect();
        output
            .outputs
            .iter()
            .map(|&(offset, meta)| Some((modules.get(meta)?.clone()?, offset)))
            .collect()
    }
}
