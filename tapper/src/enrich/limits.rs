//! For fd-exhaustion failures (EMFILE, ENFILE): the process's `RLIMIT_NOFILE` and how many
//! descriptors it holds, read fresh because the limit is what just ran out.

use std::fs;

use tapper_proto::v1::Limits;

/// Whether an errno is about running out of descriptors.
pub fn is_fd_exhaustion(errno: i32) -> bool {
    errno == libc::EMFILE || errno == libc::ENFILE
}

/// The limits of `pid` when `errno` is fd exhaustion; a value that cannot be read (or is
/// unlimited) stays absent.
pub fn read_limits(pid: u32, errno: i32) -> Option<Limits> {
    if !is_fd_exhaustion(errno) {
        return None;
    }
    let dir = format!("/proc/{pid}");
    let (nofile_soft, nofile_hard) = fs::read_to_string(format!("{dir}/limits"))
        .ok()
        .and_then(|text| parse_nofile(&text))
        .unwrap_or((None, None));
    let open_fds = fs::read_dir(format!("{dir}/fd"))
        .ok()
        .map(|d| d.count() as u64);
    Some(Limits {
        nofile_soft,
        nofile_hard,
        open_fds,
    })
}

/// Parses the "Max open files" row of `/proc/<pid>/limits`.
fn parse_nofile(limits: &str) -> Option<(Option<u64>, Option<u64>)> {
    let row = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut values = row["Max open files".len()..].split_whitespace();
    let soft = values.next()?.parse().ok();
    let hard = values.next()?.parse().ok();
    Some((soft, hard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nofile_row() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max processes             unlimited            unlimited            processes\n\
                    Max open files            1024                 524288               files\n";
        assert_eq!(parse_nofile(text), Some((Some(1024), Some(524288))));
    }

    #[test]
    fn only_fd_exhaustion_gets_limits() {
        assert!(read_limits(std::process::id(), libc::EINVAL).is_none());
        let mine = read_limits(std::process::id(), libc::EMFILE).unwrap();
        assert!(mine.open_fds.unwrap() >= 3);
        assert!(mine.nofile_soft.is_some());
    }
}
