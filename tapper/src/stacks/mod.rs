//! User stacks (`--stacks`): raw addresses from the kernel become `StackFrame`s, first
//! normalized against the process's memory map (module and file offset), then symbolized
//! from the module file, so a process that exited after its map was read still resolves.

mod normalize;
mod symbols;

use tapper_proto::{limits, v1::StackFrame};

use normalize::Normalizers;
use symbols::Symbols;

pub struct StackResolver {
    normalizers: Normalizers,
    symbols: Symbols,
}

impl StackResolver {
    pub fn new() -> Self {
        Self {
            normalizers: Normalizers::new(),
            symbols: Symbols::new(),
        }
    }

    /// The frames of `pid`'s stack `addrs` (innermost first), in the same order. An
    /// address outside any file mapping (or of a process whose map could not be read)
    /// keeps only its address.
    pub fn resolve(&mut self, pid: u32, addrs: &[u64]) -> Vec<StackFrame> {
        let places = self.normalizers.normalize(pid, addrs);
        addrs
            .iter()
            .zip(places)
            .enumerate()
            .map(|(depth, (&address, place))| {
                let Some((module, offset)) = place else {
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
                let symbol = self.symbols.name(&module, lookup);
                let mut frame = StackFrame {
                    address,
                    module: Some(module.to_string()),
                    offset: Some(offset),
                    symbol,
                };
                if let Some(text) = &mut frame.module {
                    limits::truncate(text, limits::STACK_MODULE);
                }
                if let Some(text) = &mut frame.symbol {
                    limits::truncate(text, limits::STACK_SYMBOL);
                }
                frame
            })
            .collect()
    }
}
