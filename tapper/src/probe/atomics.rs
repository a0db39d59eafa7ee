//! Whether the kernel has BPF atomic exchange (`BPF_ATOMIC` with `BPF_FETCH`, Linux 5.12),
//! which picks the build of the reporting programs: the kernel is asked to load a
//! five-instruction program that uses it, before the real object is loaded.

use std::os::fd::{FromRawFd, OwnedFd};

/// One eBPF instruction (`struct bpf_insn`): the registers are two nibbles, dst low.
#[repr(C)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const R0: u8 = 0;
const R1: u8 = 1;
const R10: u8 = 10;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to the fields this probe sets.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

/// `*(u64 *)(r10 - 8) = 0; r1 = 1; r1 = xchg((u64 *)(r10 - 8), r1); r0 = 0; exit`.
const PROGRAM: [Insn; 5] = [
    // BPF_ST | BPF_MEM | BPF_DW
    Insn {
        code: 0x7a,
        regs: R10,
        off: -8,
        imm: 0,
    },
    // BPF_ALU64 | BPF_MOV | BPF_K
    Insn {
        code: 0xb7,
        regs: R1,
        off: 0,
        imm: 1,
    },
    // BPF_STX | BPF_ATOMIC | BPF_DW, imm BPF_XCHG (0xe0 | BPF_FETCH)
    Insn {
        code: 0xdb,
        regs: R10 | R1 << 4,
        off: -8,
        imm: 0xe1,
    },
    Insn {
        code: 0xb7,
        regs: R0,
        off: 0,
        imm: 0,
    },
    // BPF_JMP | BPF_EXIT
    Insn {
        code: 0x95,
        regs: 0,
        off: 0,
        imm: 0,
    },
];

/// Whether the kernel loads a program with an atomic exchange. `Err` says why not (the
/// kernel's answer), e.g. `EINVAL` from kernels before 5.12.
pub fn check() -> Result<(), std::io::Error> {
    let license = c"GPL";
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_SOCKET_FILTER,
        insn_cnt: PROGRAM.len() as u32,
        insns: PROGRAM.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..ProgLoadAttr::default()
    };
    // SAFETY: `attr` and the memory it points to outlive the call; the kernel reads
    // `size_of::<ProgLoadAttr>()` bytes of it and treats the rest of the union as zero.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoadAttr,
            size_of::<ProgLoadAttr>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor, owned by nobody else; dropping it
    // unloads the program.
    drop(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The host kernel (6.x) has BPF atomics, and the probe loads there.
    #[test]
    fn the_host_kernel_has_atomic_exchange() {
        super::check().unwrap();
    }
}
