//! Who failed: process details from `/proc`, and fd limits for fd-exhaustion errors (the
//! container, pod and quota come from `crate::identity`).
//! A process that has exited yields empty fields, never a lost event.

mod limits;
mod process;

pub use limits::read_limits;
pub use process::{ProcessCache, ProcessInfo};
