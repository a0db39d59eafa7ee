//! User stacks (`--stacks`): raw addresses from the kernel become `StackFrame`s, first
//! normalized against the process's memory map (module and file offset), then symbolized
//! from the mapped file itself, off the event path and within a time budget.

mod maps;
mod module_file;
mod normalize;
mod symbols;
mod worker;

use std::time::Duration;

use tapper_proto::{limits, v1::StackFrame};

use normalize::Normalizer;
use worker::SymbolWorker;

/// The longest an event waits for its stack's names; later, it goes without them.
const SYMBOLIZE_BUDGET: Duration = Duration::from_millis(500);

pub struct StackResolver {
    normalizer: Normalizer,
    symbols: SymbolWorker,
}

impl StackResolver {
    /// `cache_bytes` bounds the parsed files kept for symbolization (`--stacks-cache-bytes`).
    pub fn new(cache_bytes: u64) -> Self {
        Self {
            normalizer: Normalizer::new(),
            symbols: SymbolWorker::new(SYMBOLIZE_BUDGET, cache_bytes),
        }
    }

    /// The frames of `pid`'s stack `addrs` (innermost first), in the same order. An
    /// address outside any file mapping (or of a process whose map could not be read)
    /// keeps only its address; a frame whose name is unknown or came too late has none.
    pub fn resolve(&mut self, pid: u32, addrs: &[u64]) -> Vec<StackFrame> {
        let places = self.normalizer.normalize(pid, addrs);
        let mut lookups = Vec::new();
        let mut frames: Vec<StackFrame> = addrs
            .iter()
            .zip(places)
            .enumerate()
            .map(|(depth, (&address, place))| {
                let Some((mapping, offset)) = place else {
                    return StackFrame {
                        address,
                        ..Default::default()
                    };
                };
                // A return address points after its call; look up the call itself so a
                // call at the very end of a function names that function.
                let lookup = if depth == 0 {
                    offset
                } else {
                    offset.saturating_sub(1)
                };
                let mut module = mapping.path.to_string();
                limits::truncate(&mut module, limits::STACK_MODULE);
                lookups.push((depth, (mapping, lookup)));
                StackFrame {
                    address,
                    module: Some(module),
                    offset: Some(offset),
                    symbol: None,
                    build_id: None,
                }
            })
            .collect();
        if lookups.is_empty() {
            return frames;
        }
        let (depths, lookups): (Vec<usize>, Vec<_>) = lookups.into_iter().unzip();
        let Some(names) = self.symbols.names(pid, lookups) else {
            return frames;
        };
        for (depth, mut name) in depths.into_iter().zip(names) {
            if let Some(text) = &mut name {
                limits::truncate(text, limits::STACK_SYMBOL);
            }
            frames[depth].symbol = name;
        }
        frames
    }
}
