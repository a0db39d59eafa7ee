//! Change notifications for the live tail: a connection that LISTENs on the channel every
//! commit that adds rows notifies (reconnecting when the database went away).

use std::time::Duration;

use postgres::{Client, fallible_iterator::FallibleIterator};
use tracing::{info, warn};

use super::{CHANNEL, Database, numbering::Watermark};
use crate::store::{Changes, Result};

/// The LISTEN side of one replica.
pub struct PgChanges {
    db: Database,
    client: Option<Client>,
    watermark: Watermark,
}

impl PgChanges {
    pub(super) fn new(db: Database, watermark: Watermark) -> Self {
        Self {
            db,
            client: None,
            watermark,
        }
    }

    fn listen(&mut self) -> std::result::Result<&mut Client, postgres::Error> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let mut client = self.db.connect()?;
            client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
            if self.client.replace(client).is_some() {
                info!("listening for changes again");
            }
        }
        Ok(self.client.as_mut().expect("connected above"))
    }
}

impl Changes for PgChanges {
    fn high_water(&mut self) -> Result<u64> {
        let watermark = self.watermark.clone();
        watermark.read(self.listen()?)
    }

    fn wait(&mut self, timeout: Duration) {
        let woken = match self.listen() {
            Ok(client) => {
                let mut notes = client.notifications();
                let first = notes.timeout_iter(timeout).next();
                match first {
                    // Several commits may have notified: one look at the tables covers all.
                    Ok(_) => {
                        while let Ok(Some(_)) = notes.iter().next() {}
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        if let Err(e) = woken {
            warn!(error = %e, "waiting for database changes failed; reconnecting");
            self.client = None;
            std::thread::sleep(timeout);
        }
    }
}
