//! Function names for (mapped file, file offset) from the file's ELF symbols, with
//! blazesym. Parsed files (private copies) are kept, with their answers, in a cache
//! bounded in bytes and in number (each holds one descriptor); the least recently used go
//! first.

use std::{collections::HashMap, os::fd::AsRawFd, path::PathBuf};

use blazesym::symbolize::{
    Input, Symbolized, Symbolizer,
    source::{Elf, Source},
};
use hashlink::LruCache;

use super::{
    maps::FileId,
    module_file::{self, ModuleFile},
};

/// At most this many parsed files are kept, each with one open descriptor.
pub const MAX_MODULES: usize = 128;
/// Answers cached per file; past that they start over.
const MAX_ANSWERS: usize = 4096;
/// What a cached answer costs on top of its name's bytes.
const ANSWER_COST: u64 = 64;
/// The least a kept file costs (a file without readable symbols included).
const MIN_MODULE_COST: u64 = 4096;

pub struct Symbols {
    modules: LruCache<FileId, Module>,
    /// The most the kept files may cost together.
    budget: u64,
    /// What they cost now.
    used: u64,
}

impl Symbols {
    /// A cache whose files cost at most `budget` bytes together: a file costs its size
    /// (its copy in memory) plus its cached answers.
    pub fn new(budget: u64) -> Self {
        Self {
            modules: LruCache::new_unbounded(),
            budget,
            used: 0,
        }
    }

    /// The (demangled) name of the function at `offset` in `file`. A file not parsed yet
    /// is opened from its origin (through its process, or by path once that is gone).
    pub fn name(&mut self, file: &ModuleFile, offset: u64) -> Option<String> {
        if !self.modules.contains_key(&file.file) {
            let module = Module::load(file, self.budget)?;
            self.used += module.cost();
            self.modules.insert(file.file, module);
        }
        let module = self.modules.get_mut(&file.file)?;
        let before = module.cost();
        let name = module.name(offset);
        self.used = self.used - before + module.cost();
        self.trim();
        name
    }

    /// Drops the least recently used files until the rest fit; the latest always stays.
    fn trim(&mut self) {
        let mut evicted_any = false;
        while self.modules.len() > 1
            && (self.used > self.budget || self.modules.len() > MAX_MODULES)
        {
            let Some((_, evicted)) = self.modules.remove_lru() else {
                break;
            };
            self.used -= evicted.cost();
            evicted_any = true;
        }
        if evicted_any {
            release_freed_memory();
        }
    }

    #[cfg(test)]
    fn kept(&self) -> (usize, u64) {
        (self.modules.len(), self.used)
    }
}

/// Hands the pages freed with evicted files back to the system. glibc's allocator keeps
/// them otherwise: the large tables of big files fragment its arenas, and the process
/// would keep growing although the cache is bounded.
#[cfg(target_env = "gnu")]
fn release_freed_memory() {
    // SAFETY: malloc_trim only returns free memory of the allocator's arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(target_env = "gnu"))]
fn release_freed_memory() {}

struct Module {
    /// `None` for a file without readable ELF symbols (or too large).
    symbolizer: Option<(Symbolizer, Source<'static>)>,
    answers: HashMap<u64, Option<String>>,
    file_cost: u64,
    answers_cost: u64,
}

impl Module {
    /// `module`'s file, parsed from a private copy; a file larger than `max_size` is kept
    /// without symbols. `None` when it cannot be opened (its process is gone, or the file
    /// is not the one expected).
    fn load(module: &ModuleFile, max_size: u64) -> Option<Self> {
        let origin = &module.origin;
        let (file, meta) = module_file::open(module)
            .inspect_err(|err| tracing::debug!(?origin, "cannot symbolize: {err}"))
            .ok()?;
        let size = meta.len();
        if size > max_size {
            tracing::debug!(?origin, size, "too large to symbolize");
            return Some(Self::without_symbols());
        }
        let copy = match module_file::private_copy(file, size) {
            Ok(copy) => copy,
            Err(err) => {
                tracing::debug!(?origin, "cannot copy to symbolize: {err}");
                return None;
            }
        };
        // blazesym opens a path: this one names exactly the copy made above. It keeps a
        // descriptor of its own and, without auto reload, never looks at the path again
        // once the first look-up below has mapped the file; so `copy` can close after it.
        // No debug symbols: those would be looked for by path in the tapper's namespace.
        let mut elf = Elf::new(PathBuf::from(format!("/proc/self/fd/{}", copy.as_raw_fd())));
        elf.debug_syms = false;
        let source = Source::from(elf);
        let symbolizer = Symbolizer::builder()
            .enable_auto_reload(false)
            .enable_code_info(false)
            .enable_inlined_fns(false)
            .build();
        let mapped = symbolizer
            .symbolize_single(&source, Input::FileOffset(0))
            .map(drop);
        drop(copy);
        if let Err(err) = mapped {
            tracing::debug!(?origin, "no ELF symbols: {err}");
            return Some(Self::without_symbols());
        }
        Some(Self {
            symbolizer: Some((symbolizer, source)),
            answers: HashMap::new(),
            file_cost: size.max(MIN_MODULE_COST),
            answers_cost: 0,
        })
    }

    /// A file kept only so that it is not opened again: its frames go without names.
    fn without_symbols() -> Self {
        Self {
            symbolizer: None,
            answers: HashMap::new(),
            file_cost: MIN_MODULE_COST,
            answers_cost: 0,
        }
    }

    fn cost(&self) -> u64 {
        self.file_cost + self.answers_cost
    }

    fn name(&mut self, offset: u64) -> Option<String> {
        if let Some(name) = self.answers.get(&offset) {
            return name.clone();
        }
        let name = self.look_up(offset);
        if self.answers.len() >= MAX_ANSWERS {
            self.answers.clear();
            self.answers_cost = 0;
        }
        self.answers_cost += ANSWER_COST + name.as_ref().map_or(0, |n| n.len() as u64);
        self.answers.insert(offset, name.clone());
        name
    }

    fn look_up(&self, offset: u64) -> Option<String> {
        let (symbolizer, source) = self.symbolizer.as_ref()?;
        match symbolizer.symbolize_single(source, Input::FileOffset(offset)) {
            Ok(Symbolized::Sym(sym)) => Some(sym.name.into_owned()),
            Ok(Symbolized::Unknown(_)) => None,
            Err(err) => {
                tracing::debug!(offset, "cannot symbolize: {err}");
                None
            }
        }
    }
}

/// These open this process's own files through `/proc/self/map_files`: run as root.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::stacks::maps::{self, Mapping};

    /// This test process's own mappings of regular files, one per distinct file.
    fn own_files() -> Vec<Mapping> {
        let mut seen = std::collections::HashSet::new();
        maps::read(std::process::id())
            .unwrap()
            .into_iter()
            .filter(|m| std::fs::metadata(&*m.path).is_ok_and(|meta| meta.is_file()))
            .filter(|m| seen.insert(m.file))
            .collect()
    }

    #[test]
    fn the_least_recently_used_files_go_beyond_the_budget() {
        let files = own_files();
        assert!(files.len() >= 3, "{files:?}");
        let pid = std::process::id();
        // Room for about one file: each new one evicts the one before.
        let mut symbols = Symbols::new(MIN_MODULE_COST);
        for mapping in &files {
            symbols.name(&ModuleFile::mapped(pid, mapping), 0);
            let (kept, _) = symbols.kept();
            assert_eq!(kept, 1);
            assert!(symbols.modules.contains_key(&mapping.file));
        }
        // With room for all, all stay and the total is their sum.
        let mut symbols = Symbols::new(u64::MAX);
        for mapping in &files {
            symbols.name(&ModuleFile::mapped(pid, mapping), 0);
        }
        let (kept, used) = symbols.kept();
        assert_eq!(kept, files.len().min(MAX_MODULES));
        let sum: u64 = symbols.modules.iter().map(|(_, m)| m.cost()).sum();
        assert_eq!(used, sum);
    }

    #[test]
    fn a_mapping_whose_file_is_another_is_refused() {
        let mut mapping = own_files().remove(0);
        mapping.file.inode += 1;
        let mut symbols = Symbols::new(u64::MAX);
        assert_eq!(
            symbols.name(&ModuleFile::mapped(std::process::id(), &mapping), 0),
            None
        );
        assert_eq!(symbols.kept().0, 0);
    }
}
