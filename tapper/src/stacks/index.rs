//! From build id to file: the build ids of the files mapped by the processes whose stacks
//! the tapper read, and of the executables that failing processes were started by, so a
//! frame of a process that is gone still finds its file while that file is on disk. Each
//! file's build id is read once per (device, inode, mtime).

use std::{collections::HashMap, os::unix::fs::MetadataExt, sync::Arc};

use hashlink::LruCache;

use super::{
    build_id::{self, BuildId},
    maps::{FileId, Mapping},
    module_file::{self, ModuleFile, Origin},
};

/// Files whose build id is kept (one small entry each), and build ids indexed.
const MAX_FILES: usize = 8192;
const MAX_BUILD_IDS: usize = 8192;

/// A file known by its build id, opened again by path.
#[derive(Clone, Debug)]
pub struct Known {
    pub module: ModuleFile,
    /// The path it was seen at, for display.
    pub path: Arc<str>,
    owner: u32,
    world_readable: bool,
}

impl Known {
    /// Whether its names may be shown in a stack of a process of `uid`: a file of that
    /// user's own, or a world-readable file of root's. Another user's file might carry a
    /// forged build id.
    fn lends_to(&self, uid: u32) -> bool {
        self.owner == uid || (self.owner == 0 && self.world_readable)
    }
}

pub struct BuildIdIndex {
    /// Build id (or none) per file version.
    of_file: LruCache<(FileId, i64, i64), Option<BuildId>>,
    by_id: LruCache<BuildId, Known>,
}

impl BuildIdIndex {
    pub fn new() -> Self {
        Self {
            of_file: LruCache::new(MAX_FILES),
            by_id: LruCache::new(MAX_BUILD_IDS),
        }
    }

    /// Reads (once per file version) the build ids of the files `pid` maps and indexes
    /// them; returns each mapped file's build id.
    pub fn learn_mappings(&mut self, pid: u32, mappings: &[Mapping]) -> HashMap<FileId, BuildId> {
        let mut ids = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for mapping in mappings {
            if !seen.insert(mapping.file) {
                continue;
            }
            let module = ModuleFile::mapped(pid, mapping);
            if let Some(id) = self.learn(&module, &mapping.path) {
                ids.insert(mapping.file, id);
            }
        }
        ids
    }

    /// Indexes the executable a process was started by, at `path` in the tapper's own
    /// namespace.
    pub fn learn_path(&mut self, path: &str) {
        let Ok((_, meta)) = module_file::open_path(path)
            .inspect_err(|err| tracing::debug!("cannot read a build id: {err}"))
        else {
            return;
        };
        let path: Arc<str> = Arc::from(path);
        let module = ModuleFile {
            file: module_file::file_id(&meta),
            origin: Origin::Path(path.clone()),
        };
        self.learn(&module, &path);
    }

    /// The file with build id `id` whose names a process of `uid` may see.
    pub fn find(&mut self, id: &BuildId, uid: u32) -> Option<&Known> {
        self.by_id.get(id).filter(|known| known.lends_to(uid))
    }

    /// The build id of `module`, read unless known for its version, and indexed.
    fn learn(&mut self, module: &ModuleFile, path: &Arc<str>) -> Option<BuildId> {
        let (file, meta) = module_file::open(module)
            .inspect_err(|err| tracing::debug!("cannot read a build id: {err}"))
            .ok()?;
        let version = (module.file, meta.mtime(), meta.mtime_nsec());
        let id = match self.of_file.get(&version) {
            Some(id) => *id,
            None => {
                let id = build_id::read(&file)
                    .inspect_err(|err| tracing::debug!(%path, "cannot read a build id: {err}"))
                    .ok()
                    .flatten();
                self.of_file.insert(version, id);
                id
            }
        }?;
        let known = Known {
            module: ModuleFile {
                file: module.file,
                origin: Origin::Path(reopen_path(path)),
            },
            path: path.clone(),
            owner: meta.uid(),
            world_readable: meta.mode() & 0o004 != 0,
        };
        // Root's file stays: another user's file of the same build id may be a forgery.
        let keep = self
            .by_id
            .get(&id)
            .is_some_and(|old| old.owner == 0 && known.owner != 0);
        if !keep {
            self.by_id.insert(id, known);
        }
        Some(id)
    }
}

/// The path to open a file again once its process is gone: as the process named it,
/// without the kernel's " (deleted)" mark (such a path then finds no file, or another).
fn reopen_path(path: &Arc<str>) -> Arc<str> {
    match path.strip_suffix(" (deleted)") {
        Some(stripped) => Arc::from(stripped),
        None => path.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stacks::maps;

    /// Run as root (opens this process's own files through `/proc/self/map_files`).
    #[test]
    fn this_process_files_are_found_by_build_id() {
        let pid = std::process::id();
        let mut index = BuildIdIndex::new();
        let mappings = maps::read(pid).unwrap();
        let ids = index.learn_mappings(pid, &mappings);
        let exe = std::env::current_exe().unwrap();
        let exe_map = mappings
            .iter()
            .find(|m| *m.path == *exe.to_str().unwrap())
            .unwrap();
        let id = ids[&exe_map.file];
        let uid = nix::unistd::getuid().as_raw();
        let known = index.find(&id, uid).unwrap();
        assert_eq!(known.module.file, exe_map.file);
        assert_eq!(*known.path, *exe.to_str().unwrap());
        // Another user may see root's files only when anyone may read them.
        assert_eq!(
            index.find(&id, 12345).is_some(),
            std::fs::metadata(&exe).unwrap().mode() & 0o004 != 0 && uid == 0
        );
        // Learnt from a path alone, too.
        let mut by_path = BuildIdIndex::new();
        by_path.learn_path(exe.to_str().unwrap());
        assert_eq!(by_path.find(&id, uid).unwrap().module.file, exe_map.file);
    }

    fn known(owner: u32, world_readable: bool) -> Known {
        Known {
            module: ModuleFile {
                file: FileId {
                    major: 8,
                    minor: 1,
                    inode: u64::from(owner) + 1,
                },
                origin: Origin::Path(Arc::from("/prog")),
            },
            path: Arc::from("/prog"),
            owner,
            world_readable,
        }
    }

    #[test]
    fn a_file_lends_names_to_its_owner_or_from_root_to_anyone_who_may_read_it() {
        assert!(known(1000, false).lends_to(1000));
        assert!(!known(1000, true).lends_to(1001));
        assert!(!known(1000, true).lends_to(0));
        assert!(known(0, true).lends_to(1000));
        assert!(!known(0, false).lends_to(1000));
        assert!(known(0, false).lends_to(0));
    }
}
