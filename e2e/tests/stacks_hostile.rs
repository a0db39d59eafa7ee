//! User stacks (`tapper --stacks`) against hostile local processes: nobody's programs
//! that put a FIFO where their executable was, that run their own program at the path of
//! a root-only ELF (in their own user and mount namespaces), that shrink their library
//! after the tapper parsed it, and hundreds of distinct executables. The real tapper keeps
//! reporting others' failures, stops on signals, names frames only from the files actually
//! mapped, and keeps its descriptors bounded. Run as root.

use std::{
    collections::HashSet,
    fs,
    io::{BufRead, BufReader, Write},
    os::unix::fs::{PermissionsExt, chown},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    sync::Mutex,
    time::Duration,
};

use nix::sys::signal::Signal;
use serde_json::Value;
use tapper_e2e::{stack_workload, tapper::RunningTapper};

/// One tapper at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// A generous bound for an event that must come (the tapper must not hang).
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);
const NOBODY: u32 = 65534;
/// The most parsed files the tapper keeps, each with one open descriptor.
const MAX_MODULES: usize = 128;

fn tapper_bin() -> PathBuf {
    tapper_testkit::workspace_bin("tapper").unwrap_or_else(|e| panic!("{e}"))
}

/// `args` run as nobody, without any group.
fn as_nobody(args: &[&str]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(args);
    cmd
}

/// A temporary directory that nobody may enter, and the workload built in it.
fn workload_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let bin = stack_workload::build(dir.path()).unwrap();
    (dir, bin)
}

/// A copy of the workload in a directory of nobody's own, owned by nobody.
fn nobodys_copy(dir: &Path, bin: &Path) -> PathBuf {
    let own_dir = dir.join("nobody");
    fs::create_dir(&own_dir).unwrap();
    chown(&own_dir, Some(NOBODY), Some(NOBODY)).unwrap();
    let own = own_dir.join("stack-workload");
    fs::copy(bin, &own).unwrap();
    chown(&own, Some(NOBODY), Some(NOBODY)).unwrap();
    own
}

/// A workload that waits on stdin between failures (`COUNT pause`).
struct Paused {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Paused {
    fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut paused = Self { child, stdout };
        paused.expect_line("failed ");
        paused
    }

    fn expect_line(&mut self, prefix: &str) {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(line.starts_with(prefix), "workload said `{line}`");
    }

    /// One more failure; returns once it happened.
    fn fail_again(&mut self) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"again\n").unwrap();
        stdin.flush().unwrap();
        self.expect_line("failed again");
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ends its input; it exits.
    fn finish(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "workload: {status}");
    }
}

fn is_emfile_of(event: &Value, pid: u32) -> bool {
    event["pid"] == pid && event["errno_name"] == "EMFILE"
}

fn symbols(event: &Value) -> Vec<&str> {
    event["user_stack"]
        .as_array()
        .unwrap_or_else(|| panic!("no user_stack: {event}"))
        .iter()
        .map(|f| f["symbol"].as_str().unwrap_or("?"))
        .collect()
}

/// The innermost frames name the workload's three functions.
fn assert_names_the_workload(event: &Value) {
    let symbols = symbols(event);
    assert!(
        symbols.starts_with(&stack_workload::FUNCTIONS),
        "{symbols:?}: {event}"
    );
}

/// One EMFILE failure of a root workload, unrelated to the attack, comes in time.
fn an_unrelated_failure_arrives(tapper: &RunningTapper, bin: &Path) {
    let mut cmd = Command::new(bin);
    cmd.args(["0", "pause"]);
    let mut other = Paused::start(cmd);
    other.fail_again();
    let pid = other.pid();
    let event = tapper
        .wait_event(EVENT_TIMEOUT, |e| is_emfile_of(e, pid))
        .unwrap_or_else(|e| panic!("an unrelated failure did not arrive: {e}"));
    assert_names_the_workload(&event);
    other.finish();
}

#[test]
fn a_fifo_where_the_executable_was_hangs_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, bin) = workload_dir();
    let own = nobodys_copy(dir.path(), &bin);
    let tapper =
        RunningTapper::start(&tapper_bin(), &["--probe", "exit-only", "--stacks"]).unwrap();

    // Nobody runs its own program, deletes it, puts a FIFO at its path, then fails.
    let mut attacker = Paused::start(as_nobody(&[own.to_str().unwrap(), "0", "pause"]));
    let status = as_nobody(&["sh", "-c", r#"rm "$1" && mkfifo "$1""#, "sh"])
        .arg(&own)
        .status()
        .unwrap();
    assert!(status.success());
    attacker.fail_again();
    let pid = attacker.pid();
    let event = tapper
        .wait_event(EVENT_TIMEOUT, |e| is_emfile_of(e, pid))
        .unwrap_or_else(|e| panic!("the attacker's failure did not arrive: {e}"));
    // Named from the file it mapped (its deleted executable), never the FIFO.
    assert_names_the_workload(&event);

    an_unrelated_failure_arrives(&tapper, &bin);
    let out = tapper.stop(Signal::SIGTERM).unwrap();
    assert!(out.status.success(), "{}", out.stderr.join("\n"));
    attacker.finish();
}

#[test]
fn a_root_only_file_at_the_path_lends_no_names() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, bin) = workload_dir();
    let own = nobodys_copy(dir.path(), &bin);
    // The same code at the same offsets, under names that must never show.
    let secret = dir.path().join("root-only-prog");
    stack_workload::build_renamed(&secret, "root_only_secret").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(
        symbol_address(&secret, "root_only_secret_inner"),
        symbol_address(&own, "stack_inner"),
        "the decoy must put its names where the workload's are"
    );
    let tapper =
        RunningTapper::start(&tapper_bin(), &["--probe", "exit-only", "--stacks"]).unwrap();

    // In its own user and mount namespaces, nobody binds its program over the root-only
    // file's path and runs it from there: its map names that path.
    let mut cmd = as_nobody(&[
        "unshare",
        "-Urm",
        "sh",
        "-c",
        r#"mount --bind "$1" "$2" && exec "$2" 1 pause"#,
        "sh",
    ]);
    cmd.arg(&own).arg(&secret);
    let attacker = Paused::start(cmd);
    let event = tapper
        .wait_event(EVENT_TIMEOUT, |e| {
            e["comm"] == "root-only-prog" && e["errno_name"] == "EMFILE"
        })
        .unwrap();
    attacker.finish();
    tapper.stop(Signal::SIGINT).unwrap();

    assert!(
        !symbols(&event)
            .iter()
            .any(|s| s.contains("root_only_secret")),
        "{event}"
    );
    assert_names_the_workload(&event);
    let module = event["user_stack"][0]["module"].as_str().unwrap();
    assert_eq!(
        module,
        secret.to_str().unwrap(),
        "the path as the process saw it"
    );
}

#[test]
fn a_library_shrunk_after_parsing_kills_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, bin) = workload_dir();
    let own_dir = dir.path().join("nobody");
    fs::create_dir(&own_dir).unwrap();
    let (loader, library) = stack_workload::build_as_library(&own_dir).unwrap();
    for path in [&own_dir, &loader, &library] {
        chown(path, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let loaded = loaded_size(&library);
    assert!(loaded < fs::metadata(&library).unwrap().len());
    let tapper =
        RunningTapper::start(&tapper_bin(), &["--probe", "exit-only", "--stacks"]).unwrap();

    let mut attacker = Paused::start(as_nobody(&[loader.to_str().unwrap(), "1", "pause"]));
    let pid = attacker.pid();
    let first = tapper
        .wait_event(EVENT_TIMEOUT, |e| is_emfile_of(e, pid))
        .unwrap();
    assert_names_the_workload(&first);
    // Once the tapper has parsed the library, nobody cuts off its symbols (the loaded part
    // stays, so it runs on) and fails from another call site, whose name must be read.
    let status = as_nobody(&["truncate", "-s", &loaded.to_string()])
        .arg(&library)
        .status()
        .unwrap();
    assert!(status.success());
    attacker.fail_again();
    let mut seen = 0;
    let second = tapper
        .wait_event(EVENT_TIMEOUT, |e| {
            seen += usize::from(is_emfile_of(e, pid));
            seen == 2
        })
        .unwrap_or_else(|e| panic!("the failure after the shrink did not arrive: {e}"));
    assert_names_the_workload(&second);

    an_unrelated_failure_arrives(&tapper, &bin);
    let out = tapper.stop(Signal::SIGINT).unwrap();
    assert!(out.status.success(), "{}", out.stderr.join("\n"));
    attacker.finish();
}

/// The bytes of `library` that its loaded segments need, to a page: what the process
/// that maps it cannot do without (its symbol table lies beyond).
fn loaded_size(library: &Path) -> u64 {
    let out = Command::new("readelf")
        .arg("-lW")
        .arg(library)
        .output()
        .unwrap();
    assert!(out.status.success());
    let hex = |text: &str| u64::from_str_radix(text.trim_start_matches("0x"), 16).unwrap();
    let end = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|line| line.trim_start().starts_with("LOAD"))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            hex(fields[1]) + hex(fields[4])
        })
        .max()
        .unwrap();
    end.next_multiple_of(4096)
}

/// The address of `name` in `bin`'s symbol table.
fn symbol_address(bin: &Path, name: &str) -> String {
    let out = Command::new("nm").arg(bin).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|line| {
            let (address, rest) = line.split_once(' ')?;
            rest.ends_with(&format!(" {name}"))
                .then(|| address.to_owned())
        })
        .unwrap_or_else(|| panic!("no {name} in {}", bin.display()))
}

fn open_fds(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

#[test]
fn descriptors_stay_bounded_across_many_distinct_executables() {
    const COPIES: usize = 300;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, bin) = workload_dir();
    let copies: Vec<PathBuf> = (0..COPIES)
        .map(|i| {
            let copy = dir.path().join(format!("copy-{i}"));
            fs::copy(&bin, &copy).unwrap();
            copy
        })
        .collect();
    let tapper =
        RunningTapper::start(&tapper_bin(), &["--probe", "exit-only", "--stacks"]).unwrap();
    let before = open_fds(tapper.pid());

    // Each copy is a distinct file: it fails once and stays until its event is in.
    let workloads: Vec<Child> = copies
        .iter()
        .map(|copy| {
            Command::new(copy)
                .args(["1", "pause"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut waiting: HashSet<u32> = workloads.iter().map(Child::id).collect();
    let mut last = Value::Null;
    tapper
        .wait_events("every copy's failure", 4 * EVENT_TIMEOUT, |e| {
            let pid = e["pid"].as_u64()? as u32;
            if e["errno_name"] == "EMFILE" && waiting.remove(&pid) {
                last = e.clone();
            }
            waiting.is_empty().then_some(())
        })
        .unwrap();
    let after = open_fds(tapper.pid());
    for mut workload in workloads {
        drop(workload.stdin.take());
        workload.wait().unwrap();
    }
    tapper.stop(Signal::SIGINT).unwrap();

    // Still named after hundreds of files came and went.
    assert_names_the_workload(&last);
    assert!(
        after < before + MAX_MODULES + 16,
        "{after} descriptors open after {COPIES} distinct executables ({before} before)"
    );
}
