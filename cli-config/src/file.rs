//! A config file turned into flags: each key names a long flag, each value becomes that
//! flag's value(s) on the command line, so clap parses, checks and defaults them.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

use clap::{Arg, ArgAction, Command, error::ContextKind, error::ContextValue};
use toml::{Table, Value};

use crate::{Error, settable};

/// The largest config file read.
const MAX_BYTES: u64 = 1 << 20;

/// Why a config file was refused; every message names the file, and the key when there is
/// one.
#[derive(Debug)]
pub enum FileError {
    /// It cannot be read, or is not a small regular UTF-8 file.
    Read { path: PathBuf, cause: String },
    /// It is not TOML.
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A key names no flag of this command (`nearest` is the flag it is likely meant as).
    UnknownKey {
        path: PathBuf,
        key: String,
        nearest: Option<String>,
    },
    /// A key's value has a type its flag cannot take.
    WrongType {
        path: PathBuf,
        key: String,
        expected: &'static str,
        found: &'static str,
    },
    /// Clap refused a key's value (or what the file's keys ask for together).
    Value {
        path: PathBuf,
        key: Option<String>,
        message: String,
    },
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read { path, cause } => {
                write!(f, "--config {}: cannot read it ({cause})", path.display())
            }
            Self::Syntax {
                path,
                line,
                message,
            } => write!(f, "--config {}:{line}: not TOML: {message}", path.display()),
            Self::UnknownKey { path, key, nearest } => {
                let hint = nearest
                    .as_ref()
                    .map_or_else(String::new, |n| format!("did you mean \"{n}\"? "));
                write!(
                    f,
                    "--config {}: unknown key \"{key}\": {hint}keys are the long flags of \
                     --help, without the dashes",
                    path.display()
                )
            }
            Self::WrongType {
                path,
                key,
                expected,
                found,
            } => write!(
                f,
                "--config {}: key \"{key}\" takes {expected}, not {found}",
                path.display()
            ),
            Self::Value {
                path,
                key: Some(key),
                message,
            } => write!(f, "--config {}: key \"{key}\": {message}", path.display()),
            Self::Value {
                path,
                key: None,
                message,
            } => write!(f, "--config {}: {message}", path.display()),
        }
    }
}

impl std::error::Error for FileError {}

/// The file's top-level table.
pub fn read(path: &Path) -> Result<Table, FileError> {
    let read_error = |cause: String| FileError::Read {
        path: path.to_owned(),
        cause,
    };
    let bytes =
        sys_limits::read_small_file(path, MAX_BYTES).map_err(|e| read_error(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| read_error("not UTF-8 text".into()))?;
    text.parse::<Table>().map_err(|e| FileError::Syntax {
        path: path.to_owned(),
        line: e
            .span()
            .map_or(1, |span| text[..span.start].matches('\n').count() + 1),
        message: e.message().trim().replace('\n', " "),
    })
}

/// The flags a file stands for, and the keys they came from.
pub struct FileFlags {
    /// `--key=VALUE` (or `--key` for a switch), in the table's order.
    pub flags: Vec<OsString>,
    /// The file's keys that were turned into flags.
    pub keys: Vec<String>,
}

/// The flags for `table`'s keys, but for those `on_command_line` says the command line
/// sets (it overrides the file).
pub fn to_flags(
    cmd: &Command,
    path: &Path,
    table: &Table,
    on_command_line: impl Fn(&Arg) -> bool,
) -> Result<FileFlags, FileError> {
    let mut out = FileFlags {
        flags: Vec::new(),
        keys: Vec::new(),
    };
    for (key, value) in table {
        let arg = settable(cmd)
            .find(|arg| arg.get_long() == Some(key.as_str()))
            .ok_or_else(|| FileError::UnknownKey {
                path: path.to_owned(),
                key: key.clone(),
                nearest: nearest(cmd, key),
            })?;
        let wrong = |expected| FileError::WrongType {
            path: path.to_owned(),
            key: key.clone(),
            expected,
            found: type_name(value),
        };
        let flag = format!("--{key}");
        let flags: Vec<String> = match (arg.get_action(), value) {
            (ArgAction::SetTrue | ArgAction::SetFalse, Value::Boolean(on)) => {
                // SetFalse flags are "off" switches: `true` sets them like the flag does.
                if *on { vec![flag] } else { Vec::new() }
            }
            (ArgAction::SetTrue | ArgAction::SetFalse, _) => return Err(wrong("true or false")),
            (ArgAction::Count, Value::Integer(n)) if (0..=255).contains(n) => {
                vec![flag; *n as usize]
            }
            (ArgAction::Count, _) => return Err(wrong("a count from 0 to 255")),
            (ArgAction::Append, Value::Array(items)) => items
                .iter()
                .map(|item| scalar(item).map(|v| format!("{flag}={v}")))
                .collect::<Option<_>>()
                .ok_or_else(|| wrong("a string, a number or a list of them"))?,
            (ArgAction::Append, item) => vec![
                scalar(item)
                    .map(|v| format!("{flag}={v}"))
                    .ok_or_else(|| wrong("a string, a number or a list of them"))?,
            ],
            (_, item) => vec![
                scalar(item)
                    .map(|v| format!("{flag}={v}"))
                    .ok_or_else(|| wrong("a string or a number"))?,
            ],
        };
        if !on_command_line(arg) {
            out.flags.extend(flags.into_iter().map(OsString::from));
            out.keys.push(key.clone());
        }
    }
    Ok(out)
}

/// The long flag most like `key`, if one is alike enough (clap's own threshold).
fn nearest(cmd: &Command, key: &str) -> Option<String> {
    settable(cmd)
        .filter_map(Arg::get_long)
        .map(|long| (strsim::jaro(key, long), long))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, long)| long.to_owned())
}

/// A string or number as the text a flag takes.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Integer(n) => Some(n.to_string()),
        Value::Float(x) => Some(x.to_string()),
        _ => None,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "a list",
        Value::Table(_) => "a table",
    }
}

/// Clap's refusal of the merged command line, blamed on the file's key when the flag it
/// names came from the file (a flag of the command line keeps clap's own report).
pub fn blame(err: clap::Error, path: &Path, keys: &[String]) -> Error {
    let flag = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => flag_name(s),
        _ => None,
    };
    let message = || {
        // Clap's first paragraph (what follows is usage and a hint), on one line.
        let rendered = err.render().to_string();
        let first: Vec<&str> = rendered
            .lines()
            .take_while(|line| !line.trim().is_empty())
            .map(str::trim)
            .collect();
        let text = first.join(" ");
        text.strip_prefix("error: ").unwrap_or(&text).to_owned()
    };
    match flag {
        Some(flag) if keys.contains(&flag) => Error::File(FileError::Value {
            path: path.to_owned(),
            message: message(),
            key: Some(flag),
        }),
        // A requirement between flags that the file helped break: name the file too.
        _ if !keys.is_empty()
            && matches!(
                err.kind(),
                clap::error::ErrorKind::MissingRequiredArgument
                    | clap::error::ErrorKind::ArgumentConflict
            ) =>
        {
            Error::File(FileError::Value {
                path: path.to_owned(),
                key: None,
                message: message(),
            })
        }
        _ => err.into(),
    }
}

/// `listen` from clap's `--listen <ADDR>`.
fn flag_name(shown: &str) -> Option<String> {
    let name = shown.strip_prefix("--")?;
    let end = name.find([' ', '=', '<']).unwrap_or(name.len());
    Some(name[..end].to_owned())
}
