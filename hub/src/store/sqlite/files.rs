//! The database file is created private to the hub's user: 0600, whatever the umask.
//! SQLite gives the `-wal` and `-shm` files it creates the database file's mode.

use std::{
    fs::{OpenOptions, Permissions},
    io,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
};

/// Mode of a database file the hub creates.
const FILE_MODE: u32 = 0o600;

/// Creates the empty database file with a private mode, in a directory that must exist
/// (the hub never makes one up from a typo); an existing file is left as it is.
pub fn create_private(path: &Path) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use std::{os::unix::fs::PermissionsExt, path::Path};

    use super::super::testkit::{TempDb, ev, hello, key};
    use crate::store::{QueryBudget, Store};

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn database_wal_and_shm_are_private() {
        let db = TempDb::new("modes");
        let path = db.path();
        // A permissive umask must not matter.
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o002));
        let opened = Store::open(&path, QueryBudget::default());
        nix::sys::stat::umask(old);
        let mut st = opened.unwrap();
        st.writer.hello(&hello("a"), 1).unwrap();
        st.writer
            .commit_events(&key("a"), vec![ev(1, 24)], 2)
            .unwrap();
        // A reader connection too (it maps the -shm file).
        assert_eq!(st.reader.replay_page(0, 10, None, 10).unwrap().len(), 1);
        for suffix in ["", "-wal", "-shm"] {
            assert_eq!(
                mode(Path::new(&format!("{path}{suffix}"))),
                0o600,
                "{suffix}"
            );
        }
    }

    #[test]
    fn a_missing_directory_is_an_error_not_created() {
        let db = TempDb::new("missing-dir");
        let dir = Path::new(&db.path())
            .parent()
            .unwrap()
            .join("missing-dir-of-a-typo");
        let path = dir.join("hub.db");
        assert!(Store::open(path.to_str().unwrap(), QueryBudget::default()).is_err());
        assert!(!dir.exists(), "no directory is made up");
    }
}
