//! Spawns a helper process (tapper, bpftrace, hub), waits for its "ready" line, keeps its
//! output lines, and stops it with SIGINT (SIGKILL after a grace period).

use std::{
    io::{BufRead, BufReader, Read},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

/// A running helper process.
pub struct Peer {
    name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

/// Which output stream carries the ready line.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Peer {
    /// Starts `cmd` (stdin closed) and waits until `stream` shows a line containing
    /// `ready`. Lines of both streams are kept (stdout only when `keep_stdout`; otherwise
    /// it goes to /dev/null unless it carries the ready line).
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        ready: &str,
        stream: Stream,
        keep_stdout: bool,
        timeout: Duration,
    ) -> Result<Peer> {
        let pipe_stdout = keep_stdout || stream == Stream::Stdout;
        cmd.stdin(Stdio::null())
            .stderr(Stdio::piped())
            .stdout(if pipe_stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?})"))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            let tx = (stream == Stream::Stdout).then(|| tx.clone());
            readers.push(reader(out, lines.clone(), tx));
        }
        if let Some(err) = child.stderr.take() {
            let tx = (stream == Stream::Stderr).then(|| tx.clone());
            readers.push(reader(err, lines.clone(), tx));
        }
        drop(tx);
        let mut peer = Peer {
            name: name.into(),
            child,
            lines,
            readers,
        };
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(ready) => return Ok(peer),
                Ok(_) => continue,
                Err(e) => {
                    let why = match e {
                        mpsc::RecvTimeoutError::Timeout => format!("not ready after {timeout:?}"),
                        mpsc::RecvTimeoutError::Disconnected => "exited before it was ready".into(),
                    };
                    let _ = peer.child.kill();
                    let _ = peer.child.wait();
                    let out = peer.take_lines().join("\n");
                    bail!("{name} {why} (waiting for `{ready}`); its output:\n{out}");
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first output line so far that contains `text`.
    pub fn first_line_with(&self, text: &str) -> Option<String> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().find(|l| l.contains(text)).cloned()
    }

    /// SIGINT, repeated every 200 ms (bpftrace can miss one that arrives as it settles),
    /// for up to `grace`, then SIGKILL; returns every output line.
    pub fn stop(mut self, grace: Duration) -> Result<Vec<String>> {
        let deadline = Instant::now() + grace;
        let mut next_signal = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait()? {
                break Some(s);
            }
            if Instant::now() >= next_signal {
                // SAFETY: kill() with a pid we spawned and have not reaped yet.
                unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
                next_signal = Instant::now() + Duration::from_millis(200);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                self.child.wait()?;
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let lines = self.take_lines();
        match status {
            None => bail!(
                "{} did not stop within {grace:?} of SIGINT; output:\n{}",
                self.name,
                lines.join("\n")
            ),
            Some(_) => Ok(lines),
        }
    }

    fn take_lines(&mut self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn reader(
    stream: impl Read + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
    tx: Option<mpsc::Sender<String>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            lines
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(line.clone());
            if let Some(tx) = &tx {
                let _ = tx.send(line);
            }
        }
    })
}
