//! The kernel side's stack settings (`STACK_CONFIG`): the `--stacks` switch, and where a
//! task's environment strings end (the executable's path follows them), from BTF.

use tapper_common::StackConfig;

use super::{ProbeError, btf::KernelBtf};

/// Stacks on, with `task_struct.mm` and `mm_struct.env_end` from the kernel's BTF.
pub fn stack_config(btf: &KernelBtf) -> Result<StackConfig, ProbeError> {
    Ok(StackConfig {
        enabled: 1,
        task_mm: btf.member_offset("task_struct", "mm")?,
        mm_env_end: btf.member_offset("mm_struct", "env_end")?,
        _pad: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This host's kernel has BTF (a precondition of the project's machines).
    #[test]
    fn finds_the_environment_end_in_the_running_kernel() {
        let config = stack_config(&KernelBtf::open().unwrap()).unwrap();
        assert_eq!(config.enabled, 1);
        assert!(config.task_mm > 0 && config.mm_env_end > 0, "{config:?}");
    }
}
