//! The database file and the directories above it are created private to the hub's user:
//! 0700 directories and a 0600 file, whatever the umask. SQLite gives the `-wal` and `-shm`
//! files it creates the database file's mode.

use std::{
    fs::{self, DirBuilder, OpenOptions, Permissions},
    io,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::Path,
};

/// Mode of a database file the hub creates.
const FILE_MODE: u32 = 0o600;
/// Mode of a directory the hub creates.
const DIR_MODE: u32 = 0o700;

/// Creates the missing directories above `path` and the empty database file, with private
/// modes; an existing file or directory is left as it is.
pub fn create_private(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dirs(dir)?;
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        // The umask may have taken bits away; set the mode exactly.
        Ok(file) => file.set_permissions(Permissions::from_mode(FILE_MODE)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `dir` and its missing parents, each 0700.
fn create_dirs(dir: &Path) -> io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dirs(parent)?;
    }
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => fs::set_permissions(dir, Permissions::from_mode(DIR_MODE)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::super::testkit::{TempDb, ev, hello, key};
    use crate::store::{QueryBudget, Store};

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn database_wal_shm_and_new_directories_are_private() {
        let db = TempDb::new("modes");
        let dir = std::path::Path::new(&db.path())
            .parent()
            .unwrap()
            .join("new/sub");
        let path = dir.join("hub.db");
        // A permissive umask must not matter.
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o002));
        let opened = Store::open(path.to_str().unwrap(), QueryBudget::default());
        nix::sys::stat::umask(old);
        let mut st = opened.unwrap();
        st.writer.hello(&hello("a"), 1).unwrap();
        st.writer
            .commit_events(&key("a"), vec![ev(1, 24)], 2)
            .unwrap();
        // A reader connection too (it maps the -shm file).
        assert_eq!(st.reader.replay_page(0, 10, None, 10).unwrap().len(), 1);
        for f in ["hub.db", "hub.db-wal", "hub.db-shm"] {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(dir.parent().unwrap()), 0o700);
    }
}
