//! Reads a small file named by a flag (`--tokens`, `--alert-rules`): only a regular file, at
//! most a size cap, so that `/dev/zero` or a FIFO cannot hang or grow the hub; and, for a
//! file that is reloaded, only once two reads a moment apart agree.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::Duration,
};

use sys_limits::SmallFileError;

/// Pause between the two reads that must agree.
const STABLE_GAP: Duration = Duration::from_millis(100);
/// Pairs of reads tried before a file that keeps changing is refused.
const STABLE_TRIES: usize = 10;

/// Why a flag's file cannot be read; names the flag and the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("--{flag} {}: cannot read it ({cause})", path.display())]
    Io {
        flag: &'static str,
        path: PathBuf,
        /// Not a `source`: the message says it already, on one line.
        cause: std::io::Error,
    },
    #[error("--{flag} {}: not a regular file ({kind}); give a regular file", path.display())]
    NotRegular {
        flag: &'static str,
        path: PathBuf,
        kind: &'static str,
    },
    #[error("--{flag} {}: larger than the limit of {max_bytes} bytes", path.display())]
    TooLarge {
        flag: &'static str,
        path: PathBuf,
        max_bytes: u64,
    },
    #[error("--{flag} {}: not UTF-8 text", path.display())]
    NotText { flag: &'static str, path: PathBuf },
    #[error(
        "--{flag} {}: it changed between two reads {STABLE_GAP:?} apart (still being written?); \
         write the new file next to it and rename it into place",
        path.display()
    )]
    Unstable { flag: &'static str, path: PathBuf },
}

/// One read: the text and what identifies the file's version (inode, size, mtime).
#[derive(PartialEq, Eq)]
struct Snapshot {
    text: String,
    version: (u64, u64, i64, i64),
}

fn snapshot(flag: &'static str, path: &Path, max_bytes: u64) -> Result<Snapshot, FileError> {
    let bytes = sys_limits::read_small_file(path, max_bytes).map_err(|err| match err {
        SmallFileError::NotRegular { kind } => FileError::NotRegular {
            flag,
            path: path.to_owned(),
            kind,
        },
        SmallFileError::TooLarge { max } => FileError::TooLarge {
            flag,
            path: path.to_owned(),
            max_bytes: max,
        },
        SmallFileError::Io(cause) => FileError::Io {
            flag,
            path: path.to_owned(),
            cause,
        },
    })?;
    let meta = std::fs::metadata(path).map_err(|cause| FileError::Io {
        flag,
        path: path.to_owned(),
        cause,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| FileError::NotText {
        flag,
        path: path.to_owned(),
    })?;
    Ok(Snapshot {
        text,
        version: (meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec()),
    })
}

/// The text of the regular file `path` (given as `--flag`) of at most `max_bytes`.
pub fn read(flag: &'static str, path: &Path, max_bytes: u64) -> Result<String, FileError> {
    snapshot(flag, path, max_bytes).map(|s| s.text)
}

/// Like [`read`], but only a version that two reads [`STABLE_GAP`] apart agree on (content,
/// inode, size and mtime), so a file caught while being rewritten in place is not taken
/// half-written. Blocks for the gap at least.
pub fn read_stable(flag: &'static str, path: &Path, max_bytes: u64) -> Result<String, FileError> {
    let mut first = snapshot(flag, path, max_bytes)?;
    for _ in 0..STABLE_TRIES {
        std::thread::sleep(STABLE_GAP);
        let second = snapshot(flag, path, max_bytes)?;
        if second == first {
            return Ok(second.text);
        }
        first = second;
    }
    Err(FileError::Unstable {
        flag,
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_small_regular_files_are_read() {
        let dir = std::env::temp_dir().join(format!("config-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let small = dir.join("small");
        std::fs::write(&small, "read 0123456789abcdef\n").unwrap();
        assert_eq!(
            read_stable("tokens", &small, 64).unwrap(),
            "read 0123456789abcdef\n"
        );
        let e = read("tokens", &small, 8).unwrap_err().to_string();
        assert!(
            e.ends_with("small: larger than the limit of 8 bytes"),
            "{e}"
        );
        let e = read("tokens", Path::new("/dev/zero"), 8)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "--tokens /dev/zero: not a regular file (a character device); give a regular file"
        );
        let e = read("alert-rules", &dir, 8).unwrap_err().to_string();
        assert!(e.contains("not a regular file (a directory)"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
