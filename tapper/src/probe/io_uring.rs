//! Where a failed `IORING_OP_SOCKET` request shows its opcode and arguments: the
//! `io_uring:io_uring_complete` record (tracefs) and `struct io_kiocb` / `struct io_socket`
//! (BTF). io_uring exists since 5.1, its socket opcode since 5.19.

use std::path::Path;

use tapper_common::IoUringLayout;

use super::{
    ProbeError,
    btf::KernelBtf,
    features::kernel_release,
    tracefs::{field_offset, read_format},
};

pub const CATEGORY: &str = "io_uring";
pub const EVENT: &str = "io_uring_complete";

/// The offsets the io_uring program needs, or why this kernel cannot give them.
pub fn io_uring_layout(btf: &KernelBtf, tracefs: &Path) -> Result<IoUringLayout, ProbeError> {
    let format_path = tracefs.join(format!("events/{CATEGORY}/{EVENT}/format"));
    if !format_path.exists() {
        return Err(ProbeError::NoIoUringTracepoint {
            path: format_path,
            kernel: kernel_release(),
        });
    }
    let op_socket = btf
        .enum_value("io_uring_op", "IORING_OP_SOCKET")
        .map_err(|_| ProbeError::NoIoUringSocket {
            kernel: kernel_release(),
        })?;
    let format = read_format(&format_path)?;
    // `struct io_socket` is the request's command, at its start (the `cmd` union).
    let command = btf.member_offset("io_kiocb", "cmd")?;
    Ok(IoUringLayout {
        tp_req: field_offset(&format, &format_path, "req", 8)?,
        tp_res: field_offset(&format, &format_path, "res", 4)?,
        opcode: btf.member_offset("io_kiocb", "opcode")?,
        op_socket,
        domain: command + btf.member_offset("io_socket", "domain")?,
        sock_type: command + btf.member_offset("io_socket", "type")?,
        protocol: command + btf.member_offset("io_socket", "protocol")?,
        _pad: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::tracefs::tracefs_root;

    /// The host kernel (6.18) has io_uring's socket opcode: its offsets must resolve, with
    /// `domain`, `type`, `protocol` as consecutive ints after the request's file pointer.
    #[test]
    fn this_kernel_gives_the_io_uring_layout() {
        let layout =
            io_uring_layout(&KernelBtf::open().unwrap(), &tracefs_root().unwrap()).unwrap();
        assert_eq!(layout.op_socket, 45);
        assert_eq!(
            (
                layout.sock_type - layout.domain,
                layout.protocol - layout.sock_type
            ),
            (4, 4)
        );
        assert!(layout.opcode > layout.protocol, "{layout:?}");
    }
}
