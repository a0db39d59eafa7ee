//! Why a name or number was not accepted, with an example of what would be.

use std::fmt;

/// The kind of value being parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    Errno,
    Family,
    Type,
    Protocol,
}

impl What {
    /// A name and a number that parse, for the error message.
    fn example(self) -> &'static str {
        match self {
            What::Errno => "EMFILE or 24",
            What::Family => "AF_INET or 2",
            What::Type => "SOCK_STREAM|SOCK_CLOEXEC or 1",
            What::Protocol => "IPPROTO_TCP or 6",
        }
    }
}

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            What::Errno => "errno",
            What::Family => "address family",
            What::Type => "socket type",
            What::Protocol => "protocol",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not a number, and no table has this name.
    #[error("unknown {what} name {text:?} (use e.g. {})", what.example())]
    Unknown { what: What, text: String },
    /// A number outside what the kernel can pass.
    #[error("{what} number {value} is out of range {min}..{max} (use e.g. {})", what.example())]
    OutOfRange {
        what: What,
        value: i64,
        min: i32,
        max: i32,
    },
}

impl NameError {
    pub(crate) fn unknown(what: What, text: &str) -> Self {
        NameError::Unknown {
            what,
            text: text.to_owned(),
        }
    }

    /// `text` as a number in `min..=max`; `None` when it is not a number at all.
    pub(crate) fn number(
        what: What,
        text: &str,
        min: i32,
        max: i32,
    ) -> Option<Result<i32, NameError>> {
        let value = text.parse::<i64>().ok()?;
        Some(
            i32::try_from(value)
                .ok()
                .filter(|v| (min..=max).contains(v))
                .ok_or(NameError::OutOfRange {
                    what,
                    value,
                    min,
                    max,
                }),
        )
    }
}
