//! Which events the operator asked to see (the `--pid`, `--comm` and `--errno` flags).
//! Filters apply in user space, after counting: the kernel counts every failure whatever is
//! shown.

use globset::GlobMatcher;
use tapper_common::SocketFailure;

use crate::{
    event::comm_text,
    flag_values::{parse_comm, parse_pid},
};

/// Empty lists match everything; within one list any value matches; lists combine with AND.
#[derive(Clone, Debug, Default, clap::Args)]
#[command(next_help_heading = "Filters")]
pub struct Filter {
    /// Report only these process ids (repeat or separate with commas).
    #[arg(long = "pid", value_name = "PID", value_delimiter = ',', value_parser = parse_pid)]
    pub pids: Vec<u32>,

    /// Report only command names matching these globs, e.g. 'nginx*' (`*`, `?`, `[a-z]`;
    /// repeat or separate with commas). hub-client's --comm takes the same globs.
    #[arg(long = "comm", value_name = "GLOB", value_delimiter = ',', value_parser = parse_comm)]
    pub comms: Vec<GlobMatcher>,

    /// Report only these errors, by name (EMFILE) or number (24); repeat or separate with commas.
    #[arg(long = "errno", value_name = "ERRNO", value_delimiter = ',', value_parser = tapper_names::parse_errno)]
    pub errnos: Vec<i32>,
}

impl Filter {
    pub fn matches(&self, raw: &SocketFailure) -> bool {
        (self.errnos.is_empty() || self.errnos.contains(&raw.errno))
            && self.matches_process(raw.tgid, &raw.comm)
    }

    /// The process filters alone (for nofile warnings, which have no errno).
    pub fn matches_process(&self, tgid: u32, comm: &[u8]) -> bool {
        (self.pids.is_empty() || self.pids.contains(&tgid))
            && (self.comms.is_empty() || {
                let comm = comm_text(comm);
                self.comms.iter().any(|glob| glob.is_match(&comm))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(tgid: u32, comm: &str, errno: i32) -> SocketFailure {
        let mut raw = SocketFailure {
            end_ns: 0,
            duration_ns: 0,
            cgroup_id: 0,
            tgid,
            tid: tgid,
            uid: 0,
            gid: 0,
            family: 2,
            sock_type: 1,
            protocol: 0,
            errno,
            comm: [0; 16],
            probe: 2,
            has_args: 1,
            has_duration: 1,
            source: tapper_common::source::SYSCALL,
            suppressed: 0,
            context: tapper_common::TaskContext::EMPTY,
        };
        raw.comm[..comm.len()].copy_from_slice(comm.as_bytes());
        raw
    }

    #[test]
    fn empty_filter_matches_everything() {
        assert!(Filter::default().matches(&failure(1, "a", libc::EINVAL)));
    }

    #[test]
    fn each_list_narrows_and_lists_combine() {
        let filter = Filter {
            pids: vec![10, 11],
            comms: vec![parse_comm("nginx").unwrap()],
            errnos: vec![libc::EMFILE],
        };
        assert!(filter.matches(&failure(11, "nginx", libc::EMFILE)));
        assert!(!filter.matches(&failure(12, "nginx", libc::EMFILE)));
        assert!(!filter.matches(&failure(10, "nginx-worker", libc::EMFILE)));
        assert!(!filter.matches(&failure(10, "nginx", libc::EINVAL)));
        let globbed = Filter {
            comms: vec![parse_comm("ngin?-*").unwrap()],
            ..Filter::default()
        };
        assert!(globbed.matches(&failure(10, "nginx-worker", libc::EMFILE)));
        assert!(!globbed.matches(&failure(10, "nginx", libc::EMFILE)));
    }
}
