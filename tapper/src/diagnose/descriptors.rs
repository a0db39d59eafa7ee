//! Running out of descriptors: EMFILE against the process's `RLIMIT_NOFILE`, ENFILE
//! against the system's `fs.file-max`, and the warnings that come before either.

use tapper_proto::{
    WarningKind,
    v1::{Event, Warning},
};

use super::{
    Cause, Finding,
    evidence::{CAP_SYS_ADMIN, has_cap},
    memory,
};

const NOFILE_FIX: &str = "raise LimitNOFILE/ulimit -n or look for a descriptor leak";
const FILE_MAX_FIX: &str =
    "raise fs.file-max (sysctl) or find the processes holding the most descriptors";

/// EMFILE: every descriptor below the soft limit was taken.
pub fn emfile(event: &Event) -> Finding {
    let limits = event.limits.unwrap_or_default();
    let hard = limits
        .nofile_hard
        .map_or_else(String::new, |hard| format!(" (hard {hard})"));
    let text = match (limits.open_fds, limits.nofile_soft) {
        (Some(open), Some(soft)) if open >= soft => format!(
            "open fds {open} of RLIMIT_NOFILE {soft}{hard}: the process is at its descriptor \
             limit; {NOFILE_FIX}"
        ),
        (Some(open), Some(soft)) => format!(
            "open fds {open} of RLIMIT_NOFILE {soft}{hard}, counted after the failure: the \
             process was at its descriptor limit when the call failed and has closed some \
             since; {NOFILE_FIX}"
        ),
        (None, Some(soft)) => format!(
            "RLIMIT_NOFILE {soft}{hard}, open fds not read: EMFILE means every descriptor \
             below the soft limit was in use; {NOFILE_FIX}"
        ),
        (open, None) => format!(
            "RLIMIT_NOFILE not read{} (the process was gone before its limits could be \
             read): EMFILE means every descriptor below its soft limit was in use; {NOFILE_FIX}",
            open.map_or_else(String::new, |open| format!(", open fds {open}"))
        ),
    };
    (Cause::RlimitNofile, text)
}

/// Handles at or above this share of fs.file-max (read after the failure) count as full.
const FULL_PERCENT: u64 = 90;

/// ENFILE: the system's file table is full, unless the evidence says it was not.
pub fn enfile(event: &Event) -> Finding {
    if has_cap(event, CAP_SYS_ADMIN) == Some(true) {
        return memory::finding(
            event,
            "fs.file-max does not hold back a process with CAP_SYS_ADMIN, so",
        );
    }
    let quota = event.quota.unwrap_or_default();
    let text = match (quota.file_nr, quota.file_max) {
        (Some(nr), Some(max)) if nr * 100 >= max * FULL_PERCENT => format!(
            "system file handles {nr} of fs.file-max {max}: the system's file table is \
             full; {FILE_MAX_FIX}"
        ),
        (Some(nr), Some(max)) => format!(
            "system file handles {nr} of fs.file-max {max}, read after the failure: the \
             table was full and handles were freed since, or the kernel could not allocate \
             the socket's inode (memory pressure); {FILE_MAX_FIX}"
        ),
        _ => format!(
            "fs.file-nr and fs.file-max not read: ENFILE means the system's file table is \
             full (or, rarely, that the socket's inode could not be allocated); \
             {FILE_MAX_FIX}"
        ),
    };
    (Cause::FileMax, text)
}

/// A warning: the limit it announces, with its numbers and the time left.
pub fn warning(w: &Warning) -> Finding {
    let percent = w.ratio * 100.0;
    let when = tapper_proto::table::eta_text(w.eta_seconds);
    match w.kind.parse() {
        Ok(WarningKind::Nofile) => (
            Cause::RlimitNofile,
            format!(
                "at least {} open fds of RLIMIT_NOFILE {} ({percent:.0}%), {when}: the process \
                 nears its descriptor limit; {NOFILE_FIX}",
                w.used, w.limit
            ),
        ),
        Ok(WarningKind::FileMax) => (
            Cause::FileMax,
            format!(
                "system file handles {} of fs.file-max {} ({percent:.0}%), {when}: the \
                 system's file table nears its limit; {FILE_MAX_FIX}",
                w.used, w.limit
            ),
        ),
        Err(_) => (
            Cause::Unknown,
            format!("a warning of kind `{}` that no rule knows", w.kind),
        ),
    }
}
