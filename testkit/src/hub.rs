//! The hub as a child process: `hub --listen ADDR --db DB FLAGS...` started and awaited
//! until its ready line names its addresses; stopped by SIGTERM with its exit checked.

use std::{path::PathBuf, process::Command, time::Duration};

use nix::sys::signal::Signal;
use serde_json::{Map, Value};

use crate::{Process, Stdout, Stopped, TestkitError};

/// How long a hub may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start a hub; unless changed, on 127.0.0.1:0 with an in-memory store.
#[derive(Clone, Debug)]
pub struct HubCommand {
    bin: PathBuf,
    listen: String,
    db: String,
    flags: Vec<String>,
    dir: Option<PathBuf>,
}

/// What the hub's ready line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubReady {
    /// The address it serves gRPC on (`--listen`, a port 0 resolved).
    pub listen: String,
    /// The health-only address (`--health-listen`), if asked for.
    pub health_listen: Option<String>,
    /// The metrics endpoint (`--metrics-listen`), if asked for.
    pub metrics: Option<String>,
}

/// A running hub.
pub struct HubProcess {
    process: Process,
    command: HubCommand,
    ready: HubReady,
}

impl HubCommand {
    /// The hub binary `bin` (see [`crate::workspace_bin`]).
    pub fn new(bin: impl Into<PathBuf>) -> HubCommand {
        HubCommand {
            bin: bin.into(),
            listen: "127.0.0.1:0".into(),
            db: ":memory:".into(),
            flags: Vec::new(),
            dir: None,
        }
    }

    /// `--listen ADDR` (default 127.0.0.1:0).
    pub fn listen(mut self, addr: impl Into<String>) -> HubCommand {
        self.listen = addr.into();
        self
    }

    /// `--db DB`: a file, `:memory:` (the default) or a `postgres://` URL.
    pub fn db(mut self, db: impl Into<String>) -> HubCommand {
        self.db = db.into();
        self
    }

    /// More flags, after the ones above.
    pub fn flags<S: Into<String>>(mut self, flags: impl IntoIterator<Item = S>) -> HubCommand {
        self.flags.extend(flags.into_iter().map(Into::into));
        self
    }

    /// Runs the hub in `dir` (relative paths in its flags are resolved there).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> HubCommand {
        self.dir = Some(dir.into());
        self
    }

    /// Starts the hub (logging at `info`) and waits for its ready line.
    pub fn start(self) -> Result<HubProcess, TestkitError> {
        let mut cmd = Command::new(&self.bin);
        cmd.args(["--listen", &self.listen, "--db", &self.db])
            .args(&self.flags)
            .env("RUST_LOG", "info");
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        let process = Process::spawn("hub", cmd, Stdout::Discard)?;
        let fields = process.wait_ready(READY_TIMEOUT)?;
        let ready = HubReady::from_fields(&fields).ok_or_else(|| TestkitError::NotReady {
            name: "hub".into(),
            why: "printed a ready line without its `listen` address".into(),
            output: process.output(),
        })?;
        Ok(HubProcess {
            process,
            command: self,
            ready,
        })
    }
}

impl HubReady {
    fn from_fields(fields: &Map<String, Value>) -> Option<HubReady> {
        let text = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_owned);
        Some(HubReady {
            listen: text("listen")?,
            health_listen: text("health_listen"),
            metrics: text("metrics"),
        })
    }
}

impl HubProcess {
    /// The fields of its ready line.
    pub fn ready(&self) -> &HubReady {
        &self.ready
    }

    /// The address it serves gRPC on, `HOST:PORT`.
    pub fn addr(&self) -> &str {
        &self.ready.listen
    }

    /// `http://HOST:PORT`, or `https://` when it was started with `--tls-cert`.
    pub fn url(&self) -> String {
        let tls = self.command.flags.iter().any(|f| f == "--tls-cert");
        let scheme = if tls { "https" } else { "http" };
        format!("{scheme}://{}", self.ready.listen)
    }

    /// The `--db` it was started with.
    pub fn db(&self) -> &str {
        &self.command.db
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// SIGKILL, no goodbye (a crash); waits until it is gone.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts a new hub with the same flags on the address this one bound (its port
    /// reused), in place of this one, which is killed first if still running.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.process.kill();
        let command = self.command.clone().listen(self.ready.listen.clone());
        *self = command.start()?;
        Ok(())
    }

    /// SIGTERM (repeated until it exits within `grace`); a hub that exits with a failure
    /// status is an error.
    pub fn stop(self, grace: Duration) -> Result<Stopped, TestkitError> {
        let stopped = self.process.stop_with(Signal::SIGTERM, grace)?;
        if !stopped.status.success() {
            return Err(TestkitError::Failed {
                name: "hub".into(),
                status: stopped.status,
                output: stopped.stderr.join("\n"),
            });
        }
        Ok(stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_line_gives_the_addresses_it_names() {
        let fields = serde_json::json!({"listen": "127.0.0.1:5", "metrics": "127.0.0.1:6"});
        let ready = HubReady::from_fields(fields.as_object().unwrap()).unwrap();
        assert_eq!(ready.listen, "127.0.0.1:5");
        assert_eq!(ready.metrics.as_deref(), Some("127.0.0.1:6"));
        assert_eq!(ready.health_listen, None);
        let no_listen = serde_json::json!({"metrics": "127.0.0.1:6"});
        assert_eq!(HubReady::from_fields(no_listen.as_object().unwrap()), None);
    }
}
