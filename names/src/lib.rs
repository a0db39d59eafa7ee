//! The names operators know for the numbers of a `socket()` call — `EMFILE`, `AF_INET`,
//! `SOCK_STREAM|SOCK_CLOEXEC`, `IPPROTO_TCP` — printed and parsed from one set of tables.
//!
//! Printing never hides anything: an unknown value prints as its number. Parsing takes a
//! name (any case, aliases included) or a number, and every printed name parses back to
//! the number it came from.

mod errno;
mod error;
mod family;
mod protocol;
mod socktype;
mod table;

pub use errno::{MAX_ERRNO, errno_message, errno_name, parse_errno};
pub use error::{NameError, What};
pub use family::{family_name, parse_family};
pub use protocol::{parse_protocol, protocol_name};
pub use socktype::{parse_type, type_name};
