//! The per-architecture register table: which saved user register holds each `socket()`
//! argument and the system call number. Offsets into `struct pt_regs` come from BTF, so
//! a port to another architecture is one more table entry.

use tapper_common::RegsLayout;

use super::{ProbeError, btf::KernelBtf};

/// A `pt_regs` member, or an element of an array member (`regs[1]` on arm64).
struct Register {
    member: &'static str,
    index: u32,
}

const fn reg(member: &'static str) -> Register {
    Register { member, index: 0 }
}

struct RegisterTable {
    arch: &'static str,
    family: Register,
    sock_type: Register,
    protocol: Register,
    syscall_nr: Register,
    socket_nr: u32,
}

const TABLE: &[RegisterTable] = &[
    RegisterTable {
        arch: "x86_64",
        family: reg("di"),
        sock_type: reg("si"),
        protocol: reg("dx"),
        syscall_nr: reg("orig_ax"),
        socket_nr: 41,
    },
    // arm64 overwrites x0 with the return value; orig_x0 keeps the first argument.
    RegisterTable {
        arch: "aarch64",
        family: reg("orig_x0"),
        sock_type: Register {
            member: "regs",
            index: 1,
        },
        protocol: Register {
            member: "regs",
            index: 2,
        },
        syscall_nr: reg("syscallno"),
        socket_nr: 198,
    },
];

/// Where this architecture's saved registers keep `socket()`'s arguments.
pub fn regs_layout(btf: &KernelBtf) -> Result<RegsLayout, ProbeError> {
    let arch = std::env::consts::ARCH;
    let table = TABLE
        .iter()
        .find(|t| t.arch == arch)
        .ok_or(ProbeError::NoRegisterTable { arch })?;
    let offset = |r: &Register| -> Result<u32, ProbeError> {
        Ok(btf.member_offset("pt_regs", r.member)? + r.index * 8)
    };
    Ok(RegsLayout {
        family: offset(&table.family)?,
        sock_type: offset(&table.sock_type)?,
        protocol: offset(&table.protocol)?,
        syscall_nr: offset(&table.syscall_nr)?,
        socket_nr: table.socket_nr,
        valid: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_entry_names_distinct_registers() {
        for t in TABLE {
            let names = [&t.family, &t.sock_type, &t.protocol, &t.syscall_nr]
                .map(|r| format!("{}[{}]", r.member, r.index));
            let mut unique = names.to_vec();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), 4, "{}: {names:?}", t.arch);
        }
    }

    #[test]
    fn this_kernel_has_a_layout() {
        let layout = regs_layout(&KernelBtf::open().unwrap()).unwrap();
        assert_eq!(layout.valid, 1);
        assert_eq!(layout.socket_nr, libc::SYS_socket as u32);
    }
}
