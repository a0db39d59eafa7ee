//! Who failed: process details from `/proc` merged with what the kernel read in the
//! failing task, and fd limits (the container, pod and quota come from `crate::identity`).
//! A process that has exited yields empty fields, never a lost event.

mod kernel;
mod limits;
mod process;

pub use kernel::{merge, needs_proc_limits};
pub use limits::read_limits;
pub use process::{ProcessCache, ProcessInfo};
