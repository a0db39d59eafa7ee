//! ELF build ids: the kernel's (zero-padded to 20 bytes) and a file's own, read from its
//! `NT_GNU_BUILD_ID` note with positioned reads (never a mapping, which a file shrunk
//! under it would turn into SIGBUS).

use std::{fmt::Write, fs::File, io, os::unix::fs::FileExt};

use tapper_common::BUILD_ID_LEN;

/// A build id of at most 20 bytes; two are equal when their zero-padded bytes are.
#[derive(Clone, Copy, Debug)]
pub struct BuildId {
    bytes: [u8; BUILD_ID_LEN],
    len: u8,
}

impl PartialEq for BuildId {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for BuildId {}

impl std::hash::Hash for BuildId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl BuildId {
    /// As the kernel reports it: its length is not known, so all 20 bytes count.
    pub fn from_kernel(bytes: [u8; BUILD_ID_LEN]) -> Self {
        Self {
            bytes,
            len: BUILD_ID_LEN as u8,
        }
    }

    /// `None` when longer than the kernel's 20 bytes (the kernel never reports those).
    fn from_note(desc: &[u8]) -> Option<Self> {
        let mut bytes = [0; BUILD_ID_LEN];
        bytes.get_mut(..desc.len())?.copy_from_slice(desc);
        Some(Self {
            bytes,
            len: desc.len() as u8,
        })
    }

    /// Lowercase hex of its bytes.
    pub fn hex(&self) -> String {
        self.bytes[..self.len as usize]
            .iter()
            .fold(String::with_capacity(40), |mut hex, b| {
                let _ = write!(hex, "{b:02x}");
                hex
            })
    }
}

const PT_NOTE: u32 = 4;
const NT_GNU_BUILD_ID: u32 = 3;
/// Program headers read at most, and bytes of one note segment.
const MAX_PHDRS: usize = 64;
const MAX_NOTES_BYTES: u64 = 4096;

/// The build id in `file`'s `PT_NOTE` segments (as the kernel looks for it), or `None` for
/// a file that is not a 64-bit little-endian ELF or has no build id.
pub fn read(file: &File) -> io::Result<Option<BuildId>> {
    let mut header = [0u8; 64];
    if file.read_at(&mut header, 0)? < header.len()
        || header[..4] != *b"\x7fELF"
        || header[4] != 2
        || header[5] != 1
    {
        return Ok(None);
    }
    let phoff = u64_at(&header, 0x20);
    let phentsize = u16::from_le_bytes([header[0x36], header[0x37]]) as usize;
    let phnum = (u16::from_le_bytes([header[0x38], header[0x39]]) as usize).min(MAX_PHDRS);
    if phentsize < 0x28 {
        return Ok(None);
    }
    let mut phdrs = vec![0u8; phentsize * phnum];
    file.read_exact_at(&mut phdrs, phoff)?;
    for phdr in phdrs.chunks_exact(phentsize) {
        if u32::from_le_bytes(phdr[..4].try_into().unwrap()) != PT_NOTE {
            continue;
        }
        let size = u64_at(phdr, 0x20).min(MAX_NOTES_BYTES);
        let mut notes = vec![0u8; size as usize];
        file.read_exact_at(&mut notes, u64_at(phdr, 8))?;
        if let Some(id) = gnu_build_id(&notes) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// The `NT_GNU_BUILD_ID` note among `notes` (each: name size, desc size, type, then name
/// and desc, each padded to 4 bytes).
fn gnu_build_id(mut notes: &[u8]) -> Option<BuildId> {
    let word = |bytes: &[u8], at: usize| {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    while notes.len() >= 12 {
        let (name_size, desc_size, kind) = (word(notes, 0)?, word(notes, 4)?, word(notes, 8)?);
        let name_end = 12usize.checked_add(name_size)?;
        let desc_start = name_end.next_multiple_of(4);
        let desc_end = desc_start.checked_add(desc_size)?;
        let name = notes.get(12..name_end)?;
        let desc = notes.get(desc_start..desc_end)?;
        if kind == NT_GNU_BUILD_ID as usize && name == b"GNU\0" {
            return BuildId::from_note(desc);
        }
        notes = notes.get(desc_end.next_multiple_of(4)..)?;
    }
    None
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// `readelf -n`'s "Build ID: HEX" line for `path`.
    fn readelf_build_id(path: &str) -> String {
        let out = Command::new("readelf").args(["-n", path]).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .find_map(|line| line.trim().strip_prefix("Build ID: ").map(str::to_owned))
            .unwrap_or_else(|| panic!("no build id in {path}"))
    }

    #[test]
    fn reads_the_same_build_id_as_readelf() {
        let exe = std::env::current_exe().unwrap();
        let exe = exe.to_str().unwrap();
        let id = read(&File::open(exe).unwrap()).unwrap().unwrap();
        assert_eq!(id.hex(), readelf_build_id(exe));
        assert_eq!(BuildId::from_kernel(id.bytes), id);
    }

    #[test]
    fn a_file_that_is_not_elf_has_none() {
        let file = File::open("/proc/self/status").unwrap();
        assert_eq!(read(&file).unwrap(), None);
        let mut empty = File::from(
            nix::sys::memfd::memfd_create(c"elf", nix::sys::memfd::MFdFlags::empty()).unwrap(),
        );
        std::io::Write::write_all(&mut empty, b"\x7fELF").unwrap();
        assert_eq!(read(&empty).unwrap(), None);
    }

    #[test]
    fn notes_are_walked_with_their_padding() {
        let mut notes = Vec::new();
        for (name, kind, desc) in [
            (&b"GNU\0"[..], 1u32, &[1u8, 2, 3, 4, 5, 6][..]),
            (b"GNU\0", NT_GNU_BUILD_ID, &[0xde, 0xad, 0xbe, 0xef]),
        ] {
            notes.extend((name.len() as u32).to_le_bytes());
            notes.extend((desc.len() as u32).to_le_bytes());
            notes.extend(kind.to_le_bytes());
            notes.extend(name);
            notes.extend(desc);
            notes.resize(notes.len().next_multiple_of(4), 0);
        }
        assert_eq!(gnu_build_id(&notes).unwrap().hex(), "deadbeef");
        assert_eq!(gnu_build_id(&notes[..20]), None);
    }
}
