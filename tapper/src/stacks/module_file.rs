//! Opens a module's file: through a process's mapping (`/proc/PID/map_files`: the very
//! file mapped, whatever the process's mount namespace, never a path looked up in the
//! tapper's), or by a path in the tapper's own namespace for a process that is gone; and
//! copies it into memory of the tapper's own, which no process can change.

use std::{
    fs::{File, Metadata, OpenOptions},
    io::{self, Read},
    ops::Range,
    os::{
        fd::AsRawFd,
        unix::fs::{MetadataExt, OpenOptionsExt},
    },
    sync::Arc,
};

use nix::sys::{
    memfd::{MFdFlags, memfd_create},
    stat::{major, minor},
};

use super::maps::{FileId, Mapping};

/// Where a module's file is opened from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Through the process that maps it (`/proc/PID/map_files/START-END`).
    Mapped { pid: u32, range: Range<u64> },
    /// By this path in the tapper's own mount namespace.
    Path(Arc<str>),
}

/// A file to symbolize: which one it must be, and where to open it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleFile {
    pub file: FileId,
    pub origin: Origin,
}

impl ModuleFile {
    pub fn mapped(pid: u32, mapping: &Mapping) -> Self {
        Self {
            file: mapping.file,
            origin: Origin::Mapped {
                pid,
                range: mapping.range.clone(),
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("opening {path}: {source}")]
    Open { path: String, source: io::Error },
    #[error("{path} is not a regular file")]
    NotRegular { path: String },
    #[error("{path} is another file than the one expected (device or inode differ)")]
    OtherFile { path: String },
}

/// The open file of `module` and its metadata. Only a regular file whose device and
/// inode are the module's is accepted: a pid may have been reused, a path replaced.
pub fn open(module: &ModuleFile) -> Result<(File, Metadata), OpenError> {
    let (file, meta, path) = match &module.origin {
        Origin::Mapped { pid, range } => {
            let path = format!("/proc/{pid}/map_files/{:x}-{:x}", range.start, range.end);
            let (file, meta) = open_regular(&path)?;
            (file, meta, path)
        }
        Origin::Path(path) => {
            let (file, meta) = open_path(path)?;
            (file, meta, path.to_string())
        }
    };
    if file_id(&meta) != module.file {
        return Err(OpenError::OtherFile { path });
    }
    Ok((file, meta))
}

/// The regular file at `path` in the tapper's namespace, whatever the path names: it is
/// first opened with `O_PATH` (which opens no device, FIFO or socket), and only a regular
/// file is then opened for reading.
pub fn open_path(path: &str) -> Result<(File, Metadata), OpenError> {
    let err = |source| OpenError::Open {
        path: path.into(),
        source,
    };
    let handle = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)
        .map_err(err)?;
    let meta = handle.metadata().map_err(err)?;
    if !meta.file_type().is_file() {
        return Err(OpenError::NotRegular { path: path.into() });
    }
    let (file, reopened) = open_regular(&format!("/proc/self/fd/{}", handle.as_raw_fd()))?;
    if file_id(&reopened) != file_id(&meta) {
        return Err(OpenError::OtherFile { path: path.into() });
    }
    Ok((file, reopened))
}

/// Opens `path` non-blocking (nothing a process can map makes the open wait) and accepts
/// only a regular file.
fn open_regular(path: &str) -> Result<(File, Metadata), OpenError> {
    let err = |source| OpenError::Open {
        path: path.into(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(err)?;
    let meta = file.metadata().map_err(err)?;
    if !meta.file_type().is_file() {
        return Err(OpenError::NotRegular { path: path.into() });
    }
    Ok((file, meta))
}

/// The identity of the file `meta` describes, as `/proc/PID/maps` names it.
pub fn file_id(meta: &Metadata) -> FileId {
    FileId {
        major: major(meta.dev()),
        minor: minor(meta.dev()),
        inode: meta.ino(),
    }
}

/// A copy of `file`'s first `size` bytes in an anonymous memory file that only the tapper
/// holds. Parsing the process's own file in place would let it shrink the file under the
/// parser, and a read past its end kills the reader (SIGBUS).
pub fn private_copy(file: File, size: u64) -> io::Result<File> {
    let mut copy = File::from(memfd_create(c"stack-module", MFdFlags::MFD_CLOEXEC)?);
    io::copy(&mut file.take(size), &mut copy)?;
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_opens_only_a_regular_file() {
        let exe = std::env::current_exe().unwrap();
        let (_, meta) = open_path(exe.to_str().unwrap()).unwrap();
        assert!(meta.is_file());
        assert!(matches!(
            open_path("/dev/null"),
            Err(OpenError::NotRegular { .. })
        ));
        assert!(matches!(
            open_path("/nonexistent/prog"),
            Err(OpenError::Open { .. })
        ));
    }
}
