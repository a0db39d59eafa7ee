//! Small shared helpers with no dependency on the rest of the hub: clock, reading
//! configuration files.

pub mod clock;
pub mod config_file;
