//! Resource rules shared by the tapper, the hub and hub-client: raise the soft open-files
//! limit to the hard one at start, accept connections with back-off when descriptors run
//! out, and read small configuration files with a size cap.

mod accept;
mod nofile;
mod small_file;

pub use accept::Acceptor;
pub use nofile::raise_nofile_limit;
pub use small_file::{SmallFileError, read_small_file};
