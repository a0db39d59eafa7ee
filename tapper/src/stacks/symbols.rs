//! Function names for (module, file offset) from the module's ELF symbols or DWARF, with
//! blazesym's symbolizer (which keeps each parsed module) and a bounded cache of answers,
//! so a stack seen before costs a few hash lookups.

use std::{collections::HashMap, path::Path, sync::Arc};

use blazesym::symbolize::{
    Input, Symbolized, Symbolizer,
    source::{Elf, Source},
};

/// Above this many cached answers, the cache starts over.
const MAX_CACHED: usize = 65_536;

pub struct Symbols {
    symbolizer: Symbolizer,
    cache: HashMap<(Arc<str>, u64), Option<String>>,
}

impl Symbols {
    pub fn new() -> Self {
        Self {
            symbolizer: Symbolizer::builder()
                .enable_code_info(false)
                .enable_inlined_fns(false)
                .build(),
            cache: HashMap::new(),
        }
    }

    /// The (demangled) name of the function at `offset` in `module`, if the module has it.
    pub fn name(&mut self, module: &Arc<str>, offset: u64) -> Option<String> {
        let key = (module.clone(), offset);
        if let Some(name) = self.cache.get(&key) {
            return name.clone();
        }
        let name = self.look_up(module, offset);
        if self.cache.len() >= MAX_CACHED {
            self.cache.clear();
        }
        self.cache.insert(key, name.clone());
        name
    }

    fn look_up(&self, module: &str, offset: u64) -> Option<String> {
        let source = Source::Elf(Elf::new(Path::new(module)));
        match self
            .symbolizer
            .symbolize_single(&source, Input::FileOffset(offset))
        {
            Ok(Symbolized::Sym(sym)) => Some(sym.name.into_owned()),
            Ok(Symbolized::Unknown(_)) => None,
            Err(err) => {
                tracing::debug!(module, offset, "cannot symbolize: {err}");
                None
            }
        }
    }
}
