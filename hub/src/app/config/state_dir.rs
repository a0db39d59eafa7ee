//! The hub's state dir, home of its default database: `/var/lib/tapper-hub` as root, else
//! `$XDG_STATE_HOME/tapper-hub` (`~/.local/state/tapper-hub`). The hub creates it (0700);
//! any other directory of `--db` must exist already.

use std::{
    fs::{DirBuilder, Permissions},
    io,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
};

use crate::store::is_postgres;

/// The state dir of a hub run as root (the packages create it for the hub's user too).
const SYSTEM_STATE_DIR: &str = "/var/lib/tapper-hub";
/// The database file's name in the state dir.
const DB_FILE: &str = "hub.db";

/// The state dir for this user (see the module doc).
pub fn state_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from(SYSTEM_STATE_DIR);
    }
    let absolute = |var| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    absolute("XDG_STATE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".local/state")))
        .map_or_else(|| PathBuf::from(SYSTEM_STATE_DIR), |d| d.join("tapper-hub"))
}

/// The default `--db`: `hub.db` in the state dir.
pub fn default_db() -> String {
    state_dir().join(DB_FILE).to_string_lossy().into_owned()
}

/// The directory a SQLite `db` file goes in; `None` for `:memory:` and PostgreSQL.
fn db_dir(db: &str) -> Option<&Path> {
    if db == ":memory:" || is_postgres(db) {
        return None;
    }
    Some(Path::new(db).parent().unwrap_or(Path::new(""))).map(|d| {
        if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        }
    })
}

/// Checks that the directory of `db` exists, unless it is the state dir (created at
/// start); the reason otherwise.
pub fn check_db_dir(db: &str) -> Result<(), String> {
    match db_dir(db) {
        Some(dir) if dir != state_dir() && !dir.is_dir() => Err(format!(
            "directory {} does not exist: create it (mkdir -m 700 {0}) or give a path in an \
             existing one",
            dir.display()
        )),
        _ => Ok(()),
    }
}

/// Creates the state dir (and missing parents), each 0700, when `db` lies in it.
pub fn create_for(db: &str) -> io::Result<()> {
    let state = state_dir();
    if db_dir(db) != Some(state.as_path()) || state.is_dir() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&state)?;
    // The umask may have taken bits away; set the mode exactly.
    std::fs::set_permissions(&state, Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_directory_other_than_the_state_dir_is_refused() {
        assert!(check_db_dir(":memory:").is_ok());
        assert!(check_db_dir("postgres://u@h/d").is_ok());
        assert!(
            check_db_dir("hub.db").is_ok(),
            "the current directory exists"
        );
        assert!(check_db_dir(&default_db()).is_ok());
        let err = check_db_dir("/nonexistent-dir/hub.db").unwrap_err();
        assert!(
            err.starts_with("directory /nonexistent-dir does not exist"),
            "{err}"
        );
    }

    #[test]
    fn root_keeps_its_state_in_var_lib() {
        if nix::unistd::geteuid().is_root() {
            assert_eq!(default_db(), "/var/lib/tapper-hub/hub.db");
        } else {
            assert!(default_db().ends_with("/tapper-hub/hub.db"));
        }
    }
}
