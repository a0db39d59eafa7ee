//! Runs the real tapper binary as a child process: waits until its probes are attached,
//! then stops it with a signal and collects its JSON events and final counters.

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use nix::{sys::signal::Signal, unistd::Pid};
use serde_json::Value;

/// Printed by the tapper once both probes of the pair are attached.
const READY_MARK: &str = "capturing failed socket() calls";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct RunningTapper {
    child: Child,
    stdout: JoinHandle<String>,
    stderr_lines: mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
}

pub struct TapperOutput {
    pub status: ExitStatus,
    pub events: Vec<Value>,
    /// The `stats` object of the final counters line.
    pub final_counters: Value,
    pub stderr: Vec<String>,
}

impl RunningTapper {
    /// Starts `tapper --output json ARGS` and waits until it has attached.
    pub fn start(bin: &Path, args: &[&str]) -> anyhow::Result<Self> {
        let mut child = Command::new(bin)
            .args(["--output", "json"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut stdout = child.stdout.take().expect("piped stdout");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, stderr_lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut tapper = Self {
            child,
            stdout,
            stderr_lines,
            stderr_seen: Vec::new(),
        };
        tapper.wait_until_attached()?;
        Ok(tapper)
    }

    fn wait_until_attached(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            match self.stderr_lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    let ready = line.contains(READY_MARK);
                    self.stderr_seen.push(line);
                    if ready {
                        return Ok(());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let status = self.child.try_wait()?;
        let _ = self.child.kill();
        bail!(
            "the tapper did not attach within {READY_TIMEOUT:?} (exit status {status:?}); its stderr:\n{}",
            self.stderr_seen.join("\n")
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal`, waits for exit, and parses what the tapper printed.
    pub fn stop(mut self, signal: Signal) -> anyhow::Result<TapperOutput> {
        nix::sys::signal::kill(Pid::from_raw(self.child.id() as i32), signal)?;
        let status = wait_with_timeout(&mut self.child, Duration::from_secs(30))?;
        let stdout = self.stdout.join().expect("stdout reader panicked");
        self.stderr_seen.extend(self.stderr_lines.iter());
        let events = stdout
            .lines()
            .map(|line| serde_json::from_str(line).with_context(|| format!("event line `{line}`")))
            .collect::<anyhow::Result<Vec<Value>>>()?;
        let final_counters = self
            .stderr_seen
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|v| v["counters"] == "final")
            .map(|v| v["stats"].clone())
            .with_context(|| {
                format!(
                    "no final counters on stderr (the tapper exited with {status}); stderr was:\n{}",
                    self.stderr_seen.join("\n")
                )
            })?;
        Ok(TapperOutput {
            status,
            events,
            final_counters,
            stderr: self.stderr_seen,
        })
    }
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> anyhow::Result<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("the tapper did not exit within {timeout:?} of the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
