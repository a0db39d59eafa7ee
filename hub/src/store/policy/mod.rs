//! The exactly-once rules, written once for every engine: which seq numbers are committed
//! (`seq`), whether a loss record is new (`loss_check`), and the commit skeleton of events,
//! loss records and warnings (`commit`). Engines supply only their queries.

mod commit;
mod loss_check;
mod seq;

pub use commit::{CommitQueries, Ledger};
pub use loss_check::{LossRows, StoredLoss};
