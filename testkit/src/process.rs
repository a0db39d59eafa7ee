//! A running child process: spawned with stderr (and optionally stdout) captured, awaited
//! until ready, stopped with repeated signals, killed if dropped while running.

use std::{
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};
use serde_json::{Map, Value};

use crate::{
    TestkitError,
    lines::{Lines, Missed},
};

/// How often a stop signal is repeated: a process can miss one that arrives while it is
/// still settling (bpftrace does).
const SIGNAL_EVERY: Duration = Duration::from_millis(200);

/// What to do with the child's stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stdout {
    /// Keep its lines (returned by [`Process::stop`]).
    Capture,
    /// Discard it.
    Discard,
}

/// A child process with captured output.
pub struct Process {
    name: String,
    child: Child,
    stdout: Option<Lines>,
    stderr: Lines,
}

/// What a stopped process left behind.
#[derive(Debug)]
pub struct Stopped {
    pub status: ExitStatus,
    /// Stdout lines, when captured.
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Process {
    /// Starts `cmd` with stdin closed and stderr captured; `name` labels errors.
    pub fn spawn(name: &str, mut cmd: Command, stdout: Stdout) -> Result<Process, TestkitError> {
        cmd.stdin(Stdio::null()).stderr(Stdio::piped());
        cmd.stdout(match stdout {
            Stdout::Capture => Stdio::piped(),
            Stdout::Discard => Stdio::null(),
        });
        let mut child = cmd.spawn().map_err(|source| TestkitError::Spawn {
            name: name.into(),
            source,
        })?;
        let stdout = child.stdout.take().map(Lines::read);
        let stderr = Lines::read(child.stderr.take().expect("stderr is piped"));
        Ok(Process {
            name: name.into(),
            child,
            stdout,
            stderr,
        })
    }

    /// Waits up to `timeout` for the ready signal, one JSON line `{"ready":{...}}` on
    /// stderr, and returns its fields.
    pub fn wait_ready(&self, timeout: Duration) -> Result<Map<String, Value>, TestkitError> {
        self.wait_line(&self.stderr, "the ready line", timeout, ready_fields)
    }

    /// Waits up to `timeout` for a stdout line for which `f` returns `Some` (for tools
    /// without a JSON ready line, such as bpftrace). Stdout must be captured.
    pub fn wait_stdout<T>(
        &self,
        what: &str,
        timeout: Duration,
        f: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, TestkitError> {
        let stdout = self
            .stdout
            .as_ref()
            .expect("wait_stdout needs Stdout::Capture");
        self.wait_line(stdout, what, timeout, f)
    }

    fn wait_line<T>(
        &self,
        lines: &Lines,
        what: &str,
        timeout: Duration,
        f: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, TestkitError> {
        lines
            .wait_for(Instant::now() + timeout, f)
            .map_err(|missed| TestkitError::NotReady {
                name: self.name.clone(),
                why: match missed {
                    Missed::Ended => format!("exited before printing {what}"),
                    Missed::TimedOut => format!("did not print {what} within {timeout:?}"),
                },
                output: self.output(),
            })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything captured so far, stdout then stderr, for error messages.
    pub fn output(&self) -> String {
        let stdout = self
            .stdout
            .as_ref()
            .map(Lines::snapshot)
            .unwrap_or_default();
        [stdout, self.stderr.snapshot()].concat().join("\n")
    }

    /// SIGKILL, no goodbye; waits until it is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops with repeated SIGINT; see [`Process::stop_with`].
    pub fn stop(self, grace: Duration) -> Result<Stopped, TestkitError> {
        self.stop_with(Signal::SIGINT, grace)
    }

    /// Sends `signal` every 200 ms until the process exits; after `grace` it is killed
    /// and this is an error. Returns its exit status and output.
    pub fn stop_with(mut self, signal: Signal, grace: Duration) -> Result<Stopped, TestkitError> {
        let deadline = Instant::now() + grace;
        let pid = Pid::from_raw(self.child.id() as i32);
        let status = loop {
            if let Some(status) = self.try_wait()? {
                break Some(status);
            }
            if Instant::now() >= deadline {
                break None;
            }
            let _ = nix::sys::signal::kill(pid, signal);
            let next = (Instant::now() + SIGNAL_EVERY).min(deadline);
            while Instant::now() < next {
                if self.try_wait()?.is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        let Some(status) = status else {
            self.kill();
            return Err(TestkitError::NotStopped {
                name: self.name.clone(),
                grace,
                signal: signal.to_string(),
                output: self.output(),
            });
        };
        Ok(self.collect(status))
    }

    fn try_wait(&mut self) -> Result<Option<ExitStatus>, TestkitError> {
        self.child.try_wait().map_err(|source| TestkitError::Io {
            what: format!("waiting for {}", self.name),
            source,
        })
    }

    fn collect(mut self, status: ExitStatus) -> Stopped {
        let stdout = self.stdout.as_mut().map(Lines::finish).unwrap_or_default();
        let stderr = self.stderr.finish();
        Stopped {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// The fields of a `{"ready":{...}}` line.
fn ready_fields(line: &str) -> Option<Map<String, Value>> {
    match serde_json::from_str::<Value>(line).ok()? {
        Value::Object(mut top) => match top.remove("ready")? {
            Value::Object(fields) => Some(fields),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    fn sh(script: &str, stdout: Stdout) -> Process {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        Process::spawn("sh", cmd, stdout).unwrap()
    }

    #[test]
    fn the_ready_line_is_found_among_log_lines_and_its_fields_returned() {
        let p = sh(
            r#"echo 'a log line' >&2; echo '{"not":"ready"}' >&2; echo '{"ready":{"listen":"127.0.0.1:1"}}' >&2; exec sleep 60"#,
            Stdout::Discard,
        );
        let fields = p.wait_ready(Duration::from_secs(10)).unwrap();
        assert_eq!(fields["listen"], "127.0.0.1:1");
        let stopped = p.stop(Duration::from_secs(10)).unwrap();
        assert_eq!(stopped.status.signal(), Some(Signal::SIGINT as i32));
        assert_eq!(stopped.stderr.len(), 3);
    }

    #[test]
    fn a_process_that_exits_before_ready_is_an_error_with_its_output() {
        let p = sh("echo 'cannot bind' >&2; exit 3", Stdout::Discard);
        let err = p
            .wait_ready(Duration::from_secs(10))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("exited before printing the ready line"),
            "{err}"
        );
        assert!(err.contains("cannot bind"), "{err}");
    }

    #[test]
    fn repeated_signals_stop_a_process_that_ignores_the_first() {
        // Ignores the first SIGINT, exits cleanly on the second, printing to stdout.
        let p = sh(
            r#"n=0; trap 'n=$((n+1)); if [ $n -ge 2 ]; then echo bye; exit 0; fi' INT; echo up; while :; do sleep 0.05; done"#,
            Stdout::Capture,
        );
        p.wait_stdout("up", Duration::from_secs(10), |l| (l == "up").then_some(()))
            .unwrap();
        let stopped = p.stop(Duration::from_secs(20)).unwrap();
        assert!(stopped.status.success(), "{stopped:?}");
        assert_eq!(stopped.stdout, ["up", "bye"]);
    }

    #[test]
    fn a_process_that_ignores_signals_is_killed_after_the_grace_time() {
        let p = sh(
            "trap '' INT; echo up; while :; do sleep 0.05; done",
            Stdout::Capture,
        );
        p.wait_stdout("up", Duration::from_secs(10), |l| (l == "up").then_some(()))
            .unwrap();
        let pid = p.pid();
        let err = p.stop(Duration::from_millis(600)).unwrap_err().to_string();
        assert!(err.contains("did not exit"), "{err}");
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn dropping_a_running_process_kills_it() {
        let p = sh("exec sleep 60", Stdout::Discard);
        let pid = p.pid();
        drop(p);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}
