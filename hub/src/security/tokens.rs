//! Bearer tokens with roles, from a file of `ROLE TOKEN` lines, and which role each RPC
//! needs. Tokens are compared in constant time and never logged or put in a status.

use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;
use tonic::Status;

use crate::util::config_file::{self, FileError};

/// Shortest token accepted in the file.
const MIN_TOKEN_LEN: usize = 16;
/// Largest tokens file accepted.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Report only (tappers).
    Report,
    /// Subscribe, GetStats, ListTappers and reflection (operators, dashboards).
    Read,
    /// Both.
    Admin,
}

impl Role {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "report" => Some(Self::Report),
            "read" => Some(Self::Read),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Report => "report",
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }

    fn allows(self, access: Access) -> bool {
        matches!(
            (self, access),
            (_, Access::Open)
                | (Self::Admin, _)
                | (Self::Report, Access::Report)
                | (Self::Read, Access::Read)
        )
    }
}

/// What calling a gRPC path takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The health service: open to probes.
    Open,
    /// `Report`: the report or admin role.
    Report,
    /// Everything else (queries, reflection): the read or admin role.
    Read,
}

impl Access {
    pub fn of_path(path: &str) -> Self {
        if path.starts_with("/grpc.health.v1.Health/") {
            Self::Open
        } else if path == "/tapper.v1.Hub/Report" {
            Self::Report
        } else {
            Self::Read
        }
    }
}

/// Why a tokens file cannot be used; never quotes a token.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("--tokens {} line {line}: {reason}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("--tokens {}: no tokens in it (one `ROLE TOKEN` per line)", path.display())]
    Empty { path: PathBuf },
}

/// The tokens in force.
pub struct Tokens {
    entries: Vec<(Role, Vec<u8>)>,
}

impl Tokens {
    /// Reads `path` once it holds still (see [`config_file::read_stable`]); blocks a moment.
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let text = config_file::read_stable("tokens", path, MAX_FILE_BYTES)?;
        Self::parse(&text, path)
    }

    /// One `ROLE TOKEN` per line; blank lines and `#` comments are skipped.
    fn parse(text: &str, path: &Path) -> Result<Self, TokensError> {
        let mut entries: Vec<(Role, Vec<u8>, usize)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let bad = |reason: String| TokensError::Line {
                path: path.to_owned(),
                line: line_no,
                reason,
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [role, token] = fields[..] else {
                return Err(bad(format!(
                    "expected `ROLE TOKEN`, found {} fields",
                    fields.len()
                )));
            };
            let role = Role::parse(role)
                .ok_or_else(|| bad(format!("unknown role {role:?} (use report, read or admin)")))?;
            if token.len() < MIN_TOKEN_LEN {
                return Err(bad(format!(
                    "the token is shorter than {MIN_TOKEN_LEN} characters"
                )));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(bad(
                    "the token has characters outside printable ASCII".into()
                ));
            }
            if let Some((_, _, first)) = entries.iter().find(|(_, t, _)| t == token.as_bytes()) {
                return Err(bad(format!("the same token as line {first}")));
            }
            entries.push((role, token.as_bytes().to_vec(), line_no));
        }
        if entries.is_empty() {
            return Err(TokensError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(Self {
            entries: entries.into_iter().map(|(r, t, _)| (r, t)).collect(),
        })
    }

    /// The role of `token`, comparing it with every entry in constant time.
    fn role_of(&self, token: &[u8]) -> Option<Role> {
        let mut found = None;
        for (role, known) in &self.entries {
            if bool::from(known.as_slice().ct_eq(token)) {
                found = Some(*role);
            }
        }
        found
    }

    /// Checks the `authorization` header of a call to `path`.
    pub fn authorize(&self, path: &str, authorization: Option<&[u8]>) -> Result<(), Status> {
        let access = Access::of_path(path);
        if access == Access::Open {
            return Ok(());
        }
        let Some(header) = authorization else {
            return Err(Status::unauthenticated(
                "this hub needs a token: send `authorization: Bearer TOKEN`",
            ));
        };
        let token = header
            .strip_prefix(b"Bearer ")
            .or_else(|| header.strip_prefix(b"bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization must be `Bearer TOKEN`"))?;
        let role = self
            .role_of(token.trim_ascii())
            .ok_or_else(|| Status::unauthenticated("unknown token"))?;
        if role.allows(access) {
            return Ok(());
        }
        let needs = match access {
            Access::Report => "report or admin",
            _ => "read or admin",
        };
        Err(Status::permission_denied(format!(
            "a {} token may not call {path} (needs {needs})",
            role.name()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    const REPORT: &str = "report-token-0123456789";
    const READ: &str = "read-token-0123456789";
    const ADMIN: &str = "admin-token-0123456789";

    fn tokens() -> Tokens {
        let text = format!("# roles\nreport {REPORT}\n\nread   {READ}\nadmin\t{ADMIN}\n");
        Tokens::parse(&text, Path::new("t")).unwrap()
    }

    fn code(t: &Tokens, path: &str, header: Option<String>) -> Option<Code> {
        t.authorize(path, header.as_deref().map(str::as_bytes))
            .err()
            .map(|s| s.code())
    }

    fn bearer(t: &str) -> Option<String> {
        Some(format!("Bearer {t}"))
    }

    #[test]
    fn roles_decide_per_path() {
        let t = tokens();
        let report = "/tapper.v1.Hub/Report";
        let subscribe = "/tapper.v1.Hub/Subscribe";
        let reflection = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
        assert_eq!(code(&t, report, bearer(REPORT)), None);
        assert_eq!(code(&t, report, bearer(ADMIN)), None);
        assert_eq!(code(&t, report, bearer(READ)), Some(Code::PermissionDenied));
        assert_eq!(code(&t, subscribe, bearer(READ)), None);
        assert_eq!(code(&t, reflection, bearer(READ)), None);
        assert_eq!(code(&t, subscribe, bearer(ADMIN)), None);
        assert_eq!(
            code(&t, subscribe, bearer(REPORT)),
            Some(Code::PermissionDenied)
        );
        assert_eq!(code(&t, report, None), Some(Code::Unauthenticated));
        assert_eq!(
            code(&t, report, bearer("wrong-token-0123456789")),
            Some(Code::Unauthenticated)
        );
        assert_eq!(
            code(&t, report, Some(REPORT.into())),
            Some(Code::Unauthenticated)
        );
        assert_eq!(code(&t, "/grpc.health.v1.Health/Check", None), None);
    }

    #[test]
    fn bad_lines_are_named_without_the_token() {
        let err = |text: &str| {
            Tokens::parse(text, Path::new("tokens"))
                .err()
                .unwrap()
                .to_string()
        };
        let e = err(&format!("report {REPORT}\nwriter secret-secret-secret-1\n"));
        assert_eq!(
            e,
            "--tokens tokens line 2: unknown role \"writer\" (use report, read or admin)"
        );
        assert!(!e.contains("secret"));
        assert!(err("read short\n").contains("line 1: the token is shorter than 16"));
        assert!(err("read a b c\n").contains("line 1: expected `ROLE TOKEN`, found 4 fields"));
        assert!(
            err(&format!("read {READ}\nadmin {READ}\n"))
                .contains("line 2: the same token as line 1")
        );
        assert!(err("# nothing\n").contains("no tokens"));
    }
}
