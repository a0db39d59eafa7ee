//! A stack record's frames as the kernel gave them: build id and file offset, or a bare
//! address where it could not read the build id; and the executable's path hint.

use tapper_common::{FailureWithStack, STACK_FRAMES, frame_status};

use super::build_id::BuildId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawFrame {
    /// An offset in the file whose ELF build id is given.
    File { build_id: BuildId, offset: u64 },
    /// An instruction address in the process.
    Address(u64),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawStack {
    /// Innermost first.
    pub frames: Vec<RawFrame>,
    /// The path the process's executable was started by, when the kernel read one.
    pub exec_path: Option<String>,
}

/// The stack of a record with one (`--stacks`), or `None` for a bare failure record.
pub fn decode(record: &[u8]) -> Option<RawStack> {
    if record.len() < size_of::<FailureWithStack>() {
        return None;
    }
    // SAFETY: the length is checked above; every bit pattern is a valid FailureWithStack.
    let with_stack = unsafe { record.as_ptr().cast::<FailureWithStack>().read_unaligned() };
    let count = (with_stack.frame_count as usize).min(STACK_FRAMES);
    let frames = with_stack.frames[..count]
        .iter()
        .filter_map(|frame| match frame.status {
            frame_status::VALID => Some(RawFrame::File {
                build_id: BuildId::from_kernel(frame.build_id),
                offset: frame.offset_or_ip,
            }),
            frame_status::IP => Some(RawFrame::Address(frame.offset_or_ip)),
            _ => None,
        })
        .collect();
    let path = &with_stack.exec_path;
    let len = path.iter().position(|&b| b == 0).unwrap_or(path.len());
    let exec_path = (len > 0).then(|| String::from_utf8_lossy(&path[..len]).into_owned());
    Some(RawStack { frames, exec_path })
}

#[cfg(test)]
mod tests {
    use tapper_common::{EXEC_PATH_LEN, SocketFailure, StackFrameRaw};

    use super::*;

    fn record(frames: &[StackFrameRaw], exec_path: &[u8]) -> Vec<u8> {
        let mut raw = FailureWithStack {
            // SAFETY: an all-zero SocketFailure is valid (integers only).
            failure: unsafe { std::mem::zeroed::<SocketFailure>() },
            frame_count: frames.len() as u32,
            _pad: 0,
            exec_path: [0; EXEC_PATH_LEN],
            frames: [StackFrameRaw {
                status: frame_status::EMPTY,
                build_id: [0; 20],
                offset_or_ip: 0,
            }; STACK_FRAMES],
        };
        raw.frames[..frames.len()].copy_from_slice(frames);
        raw.exec_path[..exec_path.len()].copy_from_slice(exec_path);
        // SAFETY: a plain-old-data record viewed as its bytes.
        unsafe {
            std::slice::from_raw_parts(
                (&raw as *const FailureWithStack).cast::<u8>(),
                size_of::<FailureWithStack>(),
            )
        }
        .to_vec()
    }

    #[test]
    fn build_id_frames_addresses_and_empty_slots() {
        let id = [0xab; 20];
        let frames = [
            StackFrameRaw {
                status: frame_status::VALID,
                build_id: id,
                offset_or_ip: 0x1139,
            },
            StackFrameRaw {
                status: frame_status::IP,
                build_id: [0; 20],
                offset_or_ip: 0x7f00_0000_1234,
            },
            StackFrameRaw {
                status: frame_status::EMPTY,
                build_id: [0; 20],
                offset_or_ip: 0,
            },
        ];
        let stack = decode(&record(&frames, b"/usr/bin/prog\0")).unwrap();
        assert_eq!(
            stack.frames,
            [
                RawFrame::File {
                    build_id: BuildId::from_kernel(id),
                    offset: 0x1139
                },
                RawFrame::Address(0x7f00_0000_1234),
            ]
        );
        assert_eq!(stack.exec_path.as_deref(), Some("/usr/bin/prog"));
    }

    #[test]
    fn an_empty_path_and_a_bare_record() {
        let bytes = record(&[], b"");
        assert_eq!(decode(&bytes), Some(RawStack::default()));
        assert_eq!(decode(&bytes[..size_of::<SocketFailure>()]), None);
    }
}
