//! Reads the running kernel's BTF (`/sys/kernel/btf/vmlinux`): struct member offsets and
//! enum values, so the eBPF side never hard-codes a kernel's layout.

use std::path::Path;

use btf_rs::{Btf, BtfType, Type};

use super::{ProbeError, features::kernel_release};

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

pub struct KernelBtf {
    btf: Btf,
}

impl KernelBtf {
    /// Opens the kernel's own BTF, or says that the kernel lacks it.
    pub fn open() -> Result<Self, ProbeError> {
        if !Path::new(VMLINUX_BTF).exists() {
            return Err(ProbeError::NoBtf {
                path: VMLINUX_BTF.into(),
                kernel: kernel_release(),
            });
        }
        let btf = Btf::from_file(VMLINUX_BTF).map_err(|err| ProbeError::Btf {
            what: VMLINUX_BTF.into(),
            reason: err.to_string(),
        })?;
        Ok(Self { btf })
    }

    /// The byte offset of `member` in `struct name`, looking through anonymous unions
    /// and structs the way C does.
    pub fn member_offset(&self, name: &str, member: &str) -> Result<u32, ProbeError> {
        let found = self.find_struct(name)?;
        self.offset_in(&found, member)?
            .ok_or_else(|| missing(format!("struct {name} has no member `{member}`")))
    }

    /// The size in bytes of `struct name`.
    pub fn struct_size(&self, name: &str) -> Result<u32, ProbeError> {
        match self.find_struct(name)? {
            Type::Struct(s) => Ok(s.size() as u32),
            _ => unreachable!("find_struct returns structs only"),
        }
    }

    /// The value of `variant` in `enum name`.
    pub fn enum_value(&self, name: &str, variant: &str) -> Result<u32, ProbeError> {
        let types = self.types(name)?;
        for ty in &types {
            if let Type::Enum(e) = ty {
                for m in &e.members {
                    if self.name_of(m)? == variant {
                        return Ok(m.val());
                    }
                }
            }
        }
        Err(missing(format!("enum {name} has no value `{variant}`")))
    }

    fn types(&self, name: &str) -> Result<Vec<Type>, ProbeError> {
        self.btf
            .resolve_types_by_name(name)
            .map_err(|_| missing(format!("no type named `{name}`")))
    }

    fn find_struct(&self, name: &str) -> Result<Type, ProbeError> {
        self.types(name)?
            .into_iter()
            .find(|ty| matches!(ty, Type::Struct(_)))
            .ok_or_else(|| missing(format!("no struct named `{name}`")))
    }

    fn name_of(&self, ty: &dyn BtfType) -> Result<String, ProbeError> {
        self.btf.resolve_name(ty).map_err(btf_error)
    }

    /// Byte offset of `member` within the struct or union `ty`, if it has one.
    fn offset_in(&self, ty: &Type, member: &str) -> Result<Option<u32>, ProbeError> {
        let (Type::Struct(s) | Type::Union(s)) = ty else {
            return Ok(None);
        };
        for m in &s.members {
            let name = self.name_of(m)?;
            if name == member {
                return Ok(Some(m.bit_offset() / 8));
            }
            if name.is_empty() {
                let inner = self.btf.resolve_chained_type(m).map_err(btf_error)?;
                if let Some(offset) = self.offset_in(&inner, member)? {
                    return Ok(Some(m.bit_offset() / 8 + offset));
                }
            }
        }
        Ok(None)
    }
}

fn missing(reason: String) -> ProbeError {
    ProbeError::Btf {
        what: format!("{VMLINUX_BTF} ({})", kernel_release()),
        reason,
    }
}

fn btf_error(err: btf_rs::Error) -> ProbeError {
    missing(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This host's kernel has BTF (a precondition of the project's machines).
    #[test]
    fn reads_pt_regs_and_io_uring_from_the_running_kernel() {
        let btf = KernelBtf::open().unwrap();
        if cfg!(target_arch = "x86_64") {
            // The x86_64 ABI order of pt_regs: ... dx, si, di, orig_ax, ip, ...
            let off = |m| btf.member_offset("pt_regs", m).unwrap();
            assert_eq!((off("si") - off("dx"), off("di") - off("si")), (8, 8));
            assert_eq!(off("orig_ax") - off("di"), 8);
        }
        assert_eq!(
            btf.enum_value("io_uring_op", "IORING_OP_SOCKET").unwrap(),
            45
        );
        assert!(btf.member_offset("pt_regs", "no_such_member").is_err());
        let err = btf.enum_value("io_uring_op", "IORING_OP_NOPE").unwrap_err();
        assert!(err.to_string().contains("IORING_OP_NOPE"), "{err}");
    }
}
