//! User stacks (`--stacks`): the kernel's frames (build id and file offset, or a raw
//! address) become `StackFrame`s. Each is placed in a file, through the process's memory
//! map while it runs, else through the index of files known by build id; then named from
//! that file itself, off the event path and within a time budget.

mod build_id;
mod index;
mod maps;
mod module_file;
mod normalize;
mod raw;
mod symbols;
mod worker;

use std::time::Duration;

use tapper_proto::{limits, v1::StackFrame};

use index::BuildIdIndex;
use module_file::ModuleFile;
use normalize::{Normalizer, ProcessFiles};
use raw::RawFrame;
pub use raw::{RawStack, decode};
use worker::SymbolWorker;

/// The longest an event waits for its stack's names; later, it goes without them.
const SYMBOLIZE_BUDGET: Duration = Duration::from_millis(500);

pub struct StackResolver {
    normalizer: Normalizer,
    index: BuildIdIndex,
    symbols: SymbolWorker,
}

/// Where a frame lies: the file to name it from, the module path to show, the offset.
struct Place {
    file: ModuleFile,
    module: String,
    offset: u64,
}

impl StackResolver {
    /// `cache_bytes` bounds the parsed files kept for symbolization (`--stacks-cache-bytes`).
    pub fn new(cache_bytes: u64) -> Self {
        Self {
            normalizer: Normalizer::new(),
            index: BuildIdIndex::new(),
            symbols: SymbolWorker::new(SYMBOLIZE_BUDGET, cache_bytes),
        }
    }

    /// The frames of the stack of process `pid` (of user `uid`), in the same order. A frame
    /// whose file is not found keeps its address (and build id); a frame whose name is
    /// unknown or came too late has none.
    pub fn resolve(&mut self, pid: u32, uid: u32, stack: &RawStack) -> Vec<StackFrame> {
        let process = self.normalizer.files(pid, &mut self.index);
        // A relative path names a file in the process's working directory, gone with it.
        if process.is_none()
            && let Some(path) = stack.exec_path.as_ref().filter(|p| p.starts_with('/'))
        {
            self.index.learn_path(path);
        }
        let mut lookups = Vec::new();
        let mut frames: Vec<StackFrame> = stack
            .frames
            .iter()
            .enumerate()
            .map(|(depth, frame)| {
                let mut out = StackFrame::default();
                let place = match *frame {
                    RawFrame::Address(address) => {
                        out.address = address;
                        process
                            .as_deref()
                            .and_then(|p| place_of_address(pid, p, address))
                    }
                    RawFrame::File { build_id, offset } => {
                        // No address from the kernel: the file offset stands in for it.
                        out.address = offset;
                        out.build_id = Some(build_id.hex());
                        self.place_of_file(pid, uid, process.as_deref(), &build_id, offset)
                    }
                };
                if let Some(Place {
                    file,
                    mut module,
                    offset,
                }) = place
                {
                    // A return address points after its call; look up the call itself so
                    // a call at the very end of a function names that function.
                    let lookup = if depth == 0 {
                        offset
                    } else {
                        offset.saturating_sub(1)
                    };
                    limits::truncate(&mut module, limits::STACK_MODULE);
                    out.module = Some(module);
                    out.offset = Some(offset);
                    lookups.push((depth, (file, lookup)));
                }
                out
            })
            .collect();
        if lookups.is_empty() {
            return frames;
        }
        let (depths, lookups): (Vec<usize>, Vec<_>) = lookups.into_iter().unzip();
        let Some(names) = self.symbols.names(lookups) else {
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

    /// The file with `build_id`: the one the process maps while it runs, else one the
    /// index knows (opened by path; shown with its build id's file as seen then).
    fn place_of_file(
        &mut self,
        pid: u32,
        uid: u32,
        process: Option<&ProcessFiles>,
        build_id: &build_id::BuildId,
        offset: u64,
    ) -> Option<Place> {
        if let Some(mapping) = process.and_then(|p| p.mapping_of(build_id)) {
            return Some(Place {
                file: ModuleFile::mapped(pid, mapping),
                module: mapping.path.to_string(),
                offset,
            });
        }
        let known = self.index.find(build_id, uid)?;
        Some(Place {
            file: known.module.clone(),
            module: known.path.to_string(),
            offset,
        })
    }
}

/// The mapping of the running process that holds `address`.
fn place_of_address(pid: u32, process: &ProcessFiles, address: u64) -> Option<Place> {
    let (mapping, offset) = process.place_of(address)?;
    Some(Place {
        file: ModuleFile::mapped(pid, mapping),
        module: mapping.path.to_string(),
        offset,
    })
}
