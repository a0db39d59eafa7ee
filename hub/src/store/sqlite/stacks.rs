//! User stacks stored once per distinct stack: an event's frames go to the `stacks` table,
//! keyed by the SHA-256 digest of their encoding, and the event row keeps only `stack_id`;
//! reads put the frames back, and retention drops stacks no event references any more.

use rusqlite::{Connection, params};
use tapper_proto::v1::StackFrame;

pub use crate::store::stack_blob::decode;
use crate::store::{Result, stack_blob::StackBlob};

/// The id of the stored stack equal to `frames` (stored now if new); `None` for no stack.
pub fn store(conn: &Connection, frames: &[StackFrame]) -> Result<Option<i64>> {
    let Some(blob) = StackBlob::of(frames) else {
        return Ok(None);
    };
    let mut upsert = conn.prepare_cached(
        "INSERT INTO stacks (digest, frames) VALUES (?1, ?2)
         ON CONFLICT (digest) DO UPDATE SET digest = excluded.digest
         RETURNING id",
    )?;
    let id = upsert.query_row(params![blob.digest, blob.frames], |r| r.get(0))?;
    Ok(Some(id))
}

/// Deletes stacks that no event references; returns how many went.
pub fn delete_unreferenced(conn: &Connection) -> Result<u64> {
    let n = conn.execute(
        "DELETE FROM stacks WHERE id NOT IN
             (SELECT stack_id FROM events WHERE stack_id IS NOT NULL)",
        [],
    )?;
    Ok(n as u64)
}
