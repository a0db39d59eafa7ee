//! A process's file mappings from `/proc/PID/maps`: for each address range, the file that
//! backs it (path as the process sees it, device and inode) and the file offset it starts at.

use std::{io, ops::Range, sync::Arc};

/// A mapped file as the kernel names it: its device (major, minor) and inode.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct FileId {
    pub major: u64,
    pub minor: u64,
    pub inode: u64,
}

/// One file-backed mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub range: Range<u64>,
    /// The file offset at `range.start`.
    pub file_offset: u64,
    pub file: FileId,
    /// The path as the process sees it (in its own mount namespace), for display only.
    pub path: Arc<str>,
}

impl Mapping {
    /// The file offset of `address`, which lies in this mapping.
    pub fn offset_of(&self, address: u64) -> u64 {
        address - self.range.start + self.file_offset
    }
}

/// The file mappings of `pid`, sorted by address.
pub fn read(pid: u32) -> io::Result<Vec<Mapping>> {
    let text = std::fs::read(format!("/proc/{pid}/maps"))?;
    Ok(parse(&String::from_utf8_lossy(&text)))
}

/// The mapping that holds `address`, if a file backs it.
pub fn find(mappings: &[Mapping], address: u64) -> Option<&Mapping> {
    let after = mappings.partition_point(|m| m.range.start <= address);
    let mapping = mappings.get(after.checked_sub(1)?)?;
    mapping.range.contains(&address).then_some(mapping)
}

/// The file-backed lines of a maps file (`start-end perms offset major:minor inode path`);
/// anonymous memory (inode 0) and lines that do not parse are left out.
fn parse(text: &str) -> Vec<Mapping> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mapping> {
    let mut fields = line.splitn(6, ' ');
    let (start, end) = fields.next()?.split_once('-')?;
    let _perms = fields.next()?;
    let file_offset = hex(fields.next()?)?;
    let (major, minor) = fields.next()?.split_once(':')?;
    let inode = fields.next()?.parse().ok()?;
    let path = fields.next().unwrap_or("").trim_start();
    if inode == 0 || path.is_empty() {
        return None;
    }
    Some(Mapping {
        range: hex(start)?..hex(end)?,
        file_offset,
        file: FileId {
            major: hex(major)?,
            minor: hex(minor)?,
            inode,
        },
        path: Arc::from(path),
    })
}

fn hex(text: &str) -> Option<u64> {
    u64::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c4a00000-55d0c4a01000 r--p 00000000 08:01 1311 /tmp/dir with space/prog
55d0c4a01000-55d0c4a02000 r-xp 00001000 08:01 1311 /tmp/dir with space/prog
55d0c5000000-55d0c5021000 rw-p 00000000 00:00 0                          [heap]
7f1e2c028000-7f1e2c1bd000 r-xp 00028000 fe:1a 8655                       /usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)
7ffd5a1f0000-7ffd5a1f2000 r-xp 00000000 00:00 0                          [vdso]
";

    #[test]
    fn file_mappings_keep_path_device_inode_and_offset() {
        let mappings = parse(MAPS);
        assert_eq!(mappings.len(), 3);
        assert_eq!(&*mappings[1].path, "/tmp/dir with space/prog");
        let libc = &mappings[2];
        assert_eq!(
            libc.file,
            FileId {
                major: 0xfe,
                minor: 0x1a,
                inode: 8655
            }
        );
        assert_eq!(&*libc.path, "/usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)");
        assert_eq!(libc.offset_of(0x7f1e2c028010), 0x28010);
    }

    #[test]
    fn an_address_finds_its_mapping_or_none() {
        let mappings = parse(MAPS);
        assert_eq!(find(&mappings, 0x55d0c4a01234), Some(&mappings[1]));
        assert_eq!(find(&mappings, 0x55d0c4a00000), Some(&mappings[0]));
        // The heap, the vdso, and addresses outside every mapping.
        assert_eq!(find(&mappings, 0x55d0c5000010), None);
        assert_eq!(find(&mappings, 0x7ffd5a1f0010), None);
        assert_eq!(find(&mappings, 0x10), None);
        assert_eq!(find(&mappings, u64::MAX), None);
    }
}
