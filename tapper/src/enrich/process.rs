//! Reads exe, cmdline, ppid and the v1 cgroup path from `/proc/<pid>`, with a short-lived cache so a process
//! failing thousands of times a second costs one read per second. Exe and cmdline are
//! converted (lossy UTF-8) and cut to the event's limits once, when read: every event of
//! the pid then copies at most those few KiB, however long the real command line is.

use std::{fs, path::Path, sync::Arc, time::Duration};

use tapper_proto::limits;

use crate::{identity, ttl_cache::TtlCache};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    pub exe: Option<String>,
    pub cmdline: Option<String>,
    pub ppid: Option<u32>,
    /// The cgroup path in the v1 hierarchies (v1 and hybrid hosts), for identity.
    pub cgroup_v1: Option<String>,
    /// The fields cut to their limits (`"exe"`, `"cmdline"`).
    pub truncated: Vec<String>,
}

/// How long a cached entry is trusted; bounds staleness after `execve` or pid reuse.
const TTL: Duration = Duration::from_secs(1);
/// Above this many entries, expired ones are swept on insert.
const SWEEP_ABOVE: usize = 4096;

pub struct ProcessCache {
    entries: TtlCache<u32, Arc<ProcessInfo>>,
}

impl ProcessCache {
    pub fn new() -> Self {
        Self {
            entries: TtlCache::new(TTL, SWEEP_ABOVE),
        }
    }

    /// The process's info, shared with every lookup of the pid while the entry is fresh
    /// (the same `Arc` until it is read again).
    pub fn lookup(&mut self, pid: u32) -> Arc<ProcessInfo> {
        self.entries.get_or_read(pid, |pid| Arc::new(read(*pid)))
    }
}

fn read(pid: u32) -> ProcessInfo {
    let dir = Path::new("/proc").join(pid.to_string());
    let mut exe = fs::read_link(dir.join("exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let mut cmdline = fs::read(dir.join("cmdline"))
        .ok()
        .and_then(|raw| join_cmdline(&raw));
    // A task that is exiting shows ppid 0 while its /proc entry is still there: unknown,
    // not a parent (only init, pid 1, has none).
    let ppid = fs::read_to_string(dir.join("stat"))
        .ok()
        .and_then(|s| parse_ppid(&s))
        .filter(|&ppid| ppid != 0 || pid == 1);
    let cgroup_v1 = fs::read_to_string(dir.join("cgroup"))
        .ok()
        .and_then(|text| identity::v1_path(&text));
    let truncated = [
        ("exe", &mut exe, limits::EXE),
        ("cmdline", &mut cmdline, limits::CMDLINE),
    ]
    .into_iter()
    .filter_map(|(name, text, max)| {
        let cut = text.as_mut().is_some_and(|t| limits::truncate(t, max));
        cut.then(|| name.to_owned())
    })
    .collect();
    ProcessInfo {
        exe,
        cmdline,
        ppid,
        cgroup_v1,
        truncated,
    }
}

/// Arguments are NUL-separated; kernel threads and zombies have none.
fn join_cmdline(raw: &[u8]) -> Option<String> {
    let args: Vec<_> = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(String::from_utf8_lossy)
        .collect();
    (!args.is_empty()).then(|| args.join(" "))
}

/// The ppid is the second field after the parenthesised comm, which may itself hold
/// spaces and parentheses, so parse from the last `)`.
fn parse_ppid(stat: &str) -> Option<u32> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_survives_odd_command_names() {
        assert_eq!(parse_ppid("123 (a b) c)) S 77 123 123 0 -1"), Some(77));
        assert_eq!(parse_ppid("1 (init) S 0 1 1"), Some(0));
        assert_eq!(parse_ppid("garbage"), None);
    }

    #[test]
    fn cmdline_joins_arguments() {
        assert_eq!(
            join_cmdline(b"curl\0-s\0http://x\0"),
            Some("curl -s http://x".into())
        );
        assert_eq!(join_cmdline(b""), None);
    }

    #[test]
    fn a_long_command_line_is_cut_once_when_read() {
        let arg = "x".repeat(100_000);
        // sh ignores the extra arguments ($0, $1) while it sleeps.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 5", &arg, &arg])
            .spawn()
            .unwrap();
        // Right after fork the child still shows the test's own command line: wait for exec.
        let proc_cmdline = format!("/proc/{}/cmdline", child.id());
        for _ in 0..500 {
            if std::fs::read(&proc_cmdline).is_ok_and(|c| c.starts_with(b"sh\0")) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut cache = ProcessCache::new();
        let info = cache.lookup(child.id());
        child.kill().unwrap();
        child.wait().unwrap();
        let cmdline = info.cmdline.clone().unwrap();
        assert_eq!(cmdline.len(), limits::CMDLINE);
        assert!(cmdline.starts_with("sh -c sleep 5 xxx"));
        assert_eq!(info.truncated, ["cmdline"]);
        assert!(info.exe.is_some());
        // Within the TTL the same pid is served from the cache, even after it exited.
        assert_eq!(cache.lookup(child.id()).cmdline, Some(cmdline));
    }

    #[test]
    fn reads_this_process_and_tolerates_a_missing_one() {
        let mut cache = ProcessCache::new();
        let me = cache.lookup(std::process::id());
        assert_eq!(
            me.exe.as_deref(),
            std::env::current_exe()
                .ok()
                .and_then(|p| p.to_str().map(str::to_owned))
                .as_deref()
        );
        assert_eq!(me.ppid, Some(std::os::unix::process::parent_id()));
        assert!(me.cmdline.is_some());
        // Above the default pid_max, so never a live process.
        assert_eq!(*cache.lookup(4_194_304 + 7), ProcessInfo::default());
    }
}
