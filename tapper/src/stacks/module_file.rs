//! Opens the file behind a process's mapping through `/proc/PID/map_files`: the very file
//! mapped, whatever the process's mount namespace, never a path looked up in the tapper's;
//! and copies it into memory of the tapper's own, which the process cannot change.

use std::{
    fs::{File, OpenOptions},
    io::{self, Read},
    os::unix::fs::{MetadataExt, OpenOptionsExt},
};

use nix::sys::{
    memfd::{MFdFlags, memfd_create},
    stat::{major, minor},
};

use super::maps::{FileId, Mapping};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("opening {path}: {source}")]
    Open { path: String, source: io::Error },
    #[error("{path} is not a regular file")]
    NotRegular { path: String },
    #[error("{path} is another file than the one mapped (device or inode differ)")]
    OtherFile { path: String },
}

/// The open file that `pid` maps at `mapping`, and its size in bytes. Only a regular file
/// whose device and inode are the mapping's is accepted: the pid may have been reused
/// since its map was read. Opened non-blocking, so that nothing a process can map makes
/// the open wait.
pub fn open(pid: u32, mapping: &Mapping) -> Result<(File, u64), OpenError> {
    let path = format!(
        "/proc/{pid}/map_files/{:x}-{:x}",
        mapping.range.start, mapping.range.end
    );
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&path)
        .map_err(|source| OpenError::Open {
            path: path.clone(),
            source,
        })?;
    let meta = file.metadata().map_err(|source| OpenError::Open {
        path: path.clone(),
        source,
    })?;
    if !meta.file_type().is_file() {
        return Err(OpenError::NotRegular { path });
    }
    let id = FileId {
        major: major(meta.dev()),
        minor: minor(meta.dev()),
        inode: meta.ino(),
    };
    if id != mapping.file {
        return Err(OpenError::OtherFile { path });
    }
    Ok((file, meta.len()))
}

/// A copy of `file`'s first `size` bytes in an anonymous memory file that only the tapper
/// holds. Parsing the process's own file in place would let it shrink the file under the
/// parser, and a read past its end kills the reader (SIGBUS).
pub fn private_copy(file: File, size: u64) -> io::Result<File> {
    let mut copy = File::from(memfd_create(c"stack-module", MFdFlags::MFD_CLOEXEC)?);
    io::copy(&mut file.take(size), &mut copy)?;
    Ok(copy)
}
