//! Small configuration files (tokens, rules, credentials) read whole, but only from a
//! regular file of bounded size: a device (`/dev/zero`), a FIFO or a huge file is an error
//! at once instead of a read that never ends or fills memory.

use std::{
    fs::{File, OpenOptions},
    io::Read,
    os::unix::fs::{FileTypeExt, OpenOptionsExt},
    path::Path,
};

/// Why a small file was not read. The message fits on one line after the file's name.
#[derive(Debug, thiserror::Error)]
pub enum SmallFileError {
    #[error("is {kind}, not a regular file; give the path of a regular file")]
    NotRegular { kind: &'static str },
    #[error("is larger than {max} bytes, the most allowed for this file; is it the right file?")]
    TooLarge { max: u64 },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads the regular file at `path` whole if it holds at most `max_bytes`. Opening never
/// blocks (a FIFO is refused, not waited on), and a file that grows while it is read is
/// still cut off at `max_bytes`.
pub fn read_small_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, SmallFileError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(SmallFileError::NotRegular {
            kind: kind_of(&meta.file_type()),
        });
    }
    if meta.len() > max_bytes {
        return Err(SmallFileError::TooLarge { max: max_bytes });
    }
    read_at_most(file, max_bytes)
}

fn read_at_most(file: File, max_bytes: u64) -> Result<Vec<u8>, SmallFileError> {
    let mut bytes = Vec::new();
    file.take(max_bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(SmallFileError::TooLarge { max: max_bytes });
    }
    Ok(bytes)
}

fn kind_of(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("small-file-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        dir
    }

    #[test]
    fn reads_a_small_regular_file_whole() {
        let path = scratch("ok");
        std::fs::write(&path, b"report s3cret\n").unwrap();
        assert_eq!(read_small_file(&path, 64).unwrap(), b"report s3cret\n");
        assert_eq!(
            read_small_file(&path, 14).unwrap().len(),
            14,
            "exactly the cap"
        );
        let err = read_small_file(&path, 13).unwrap_err();
        assert!(matches!(err, SmallFileError::TooLarge { max: 13 }), "{err}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_at_once() {
        let zero = read_small_file(Path::new("/dev/zero"), 1 << 16).unwrap_err();
        assert_eq!(
            zero.to_string(),
            "is a character device, not a regular file; give the path of a regular file"
        );
        let dir = read_small_file(Path::new("/"), 1 << 16).unwrap_err();
        assert!(dir.to_string().starts_with("is a directory"), "{dir}");
        let fifo = scratch("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // No writer: a blocking open would wait here for ever.
        let err = read_small_file(&fifo, 1 << 16).unwrap_err();
        assert!(err.to_string().starts_with("is a FIFO"), "{err}");
        std::fs::remove_file(&fifo).unwrap();
        let missing = read_small_file(Path::new("/nonexistent/token"), 16).unwrap_err();
        assert!(matches!(missing, SmallFileError::Io(_)), "{missing}");
    }

    #[test]
    fn a_proc_file_that_claims_no_size_is_still_capped() {
        // procfs files report size 0 but can be read; the cap still holds.
        let err = read_small_file(Path::new("/proc/self/maps"), 8).unwrap_err();
        assert!(matches!(err, SmallFileError::TooLarge { max: 8 }), "{err}");
    }
}
