//! The WAL checkpoint off the commit path: the writer's WAL hook wakes a thread of its own,
//! with its own connection, once the WAL holds [`WAL_PAGES`] pages, instead of SQLite
//! checkpointing inside the commit that crossed the mark.

use std::{
    sync::mpsc::{self, TrySendError},
    thread::JoinHandle,
};

use rusqlite::{Connection, hooks::Wal};

use super::Location;
use crate::store::Result;

/// The WAL size, in pages, that wakes the checkpointer: SQLite's own autocheckpoint mark.
const WAL_PAGES: i32 = 1000;

/// The checkpointer thread. It ends when the writer connection, whose hook wakes it, has
/// closed: drop that first; dropping this then waits for the thread to close its own.
pub(super) struct Checkpointer {
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread and hooks it to `writer`'s commits (which stop checkpointing
    /// themselves: the hook replaces SQLite's autocheckpoint).
    pub(super) fn start(location: &Location, writer: &mut Connection) -> Result<Self> {
        let conn = location.connect()?;
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                for () in woken {
                    // PASSIVE, as SQLite's autocheckpoint: copies what no reader still needs
                    // and never waits for a reader or the writer. Once all is copied, the
                    // writer's next commit starts the WAL over from its beginning.
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(
                            "SQLite WAL checkpoint failed, retried at the next commit: {e}"
                        );
                    }
                }
            })
            .map_err(|e| crate::store::StoreError::Engine {
                engine: "sqlite",
                source: format!("starting the checkpoint thread: {e}").into(),
            })?;
        writer.wal_hook(Some(move |_: &mut Wal, pages: i32| {
            if pages >= WAL_PAGES {
                // Full: a checkpoint is pending already, which covers this commit too.
                if let Err(TrySendError::Disconnected(())) = wake.try_send(()) {
                    tracing::warn!("SQLite checkpoint thread gone");
                }
            }
            Ok(())
        }))?;
        Ok(Self {
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        path::Path,
        time::{Duration, Instant},
    };

    use super::super::testkit::{TempDb, ev, hello, key, open};
    use crate::store::Writer;

    fn size(path: &str) -> u64 {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }

    #[test]
    fn the_wal_is_copied_into_the_database_and_removed_at_close() {
        let db = TempDb::new("checkpoint");
        let path = db.path();
        let (mut w, r) = open(&path).unwrap();
        w.hello(&hello("a"), 1).unwrap();
        let cmdline = "c".repeat(2000);
        // About 8 MiB of rows: twice the mark, in commits of their own.
        for batch in 0..40 {
            let events = (1..=100)
                .map(|i| {
                    let mut e = ev(batch * 100 + i, 24);
                    e.cmdline = cmdline.clone();
                    e
                })
                .collect();
            w.commit_events(&key("a"), events, 2).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        // In WAL mode only a checkpoint writes the database file.
        while size(&path) < 2 << 20 {
            assert!(Instant::now() < deadline, "no checkpoint copied the WAL in");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop((w, r));
        assert!(
            !Path::new(&format!("{path}-wal")).exists(),
            "the last connection to close checkpoints and removes the WAL"
        );
    }
}
