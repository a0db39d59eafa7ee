//! The kinds of warning (`Warning.kind` on the wire, `"kind"` in JSON): one list for the
//! tapper that sends them, the hub that checks and filters them, and the clients.

use std::{fmt, str::FromStr};

/// What a warning warns of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WarningKind {
    /// A process nearing its soft `RLIMIT_NOFILE` (EMFILE ahead); it names the process.
    Nofile,
    /// The system's file table nearing `fs.file-max` (ENFILE ahead); no process.
    FileMax,
}

impl WarningKind {
    /// Every kind, in the order they are listed to users.
    pub const ALL: [WarningKind; 2] = [WarningKind::Nofile, WarningKind::FileMax];

    /// The name on the wire and in JSON: `nofile` or `file-max`.
    pub const fn as_str(self) -> &'static str {
        match self {
            WarningKind::Nofile => "nofile",
            WarningKind::FileMax => "file-max",
        }
    }
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `kind` that names no warning kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown warning kind {0:?}; use one of {known}",
    known = WarningKind::ALL.map(WarningKind::as_str).join(", ")
)]
pub struct UnknownWarningKind(pub String);

impl FromStr for WarningKind {
    type Err = UnknownWarningKind;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        WarningKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| UnknownWarningKind(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_refused() {
        for kind in WarningKind::ALL {
            assert_eq!(kind.as_str().parse::<WarningKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!(
            WarningKind::ALL.map(WarningKind::as_str),
            ["nofile", "file-max"]
        );
        let err = "fd".parse::<WarningKind>().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown warning kind "fd"; use one of nofile, file-max"#
        );
        assert!("NOFILE".parse::<WarningKind>().is_err(), "names are exact");
    }
}
