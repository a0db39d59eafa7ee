//! A throwaway PostgreSQL server for tests: `initdb` into a private temporary directory,
//! the server on a free loopback port (its unix socket in that directory), stopped by pid.

use std::{
    fs,
    io::Write,
    net::TcpListener,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::{Pid, Uid, User, chown},
};

/// Where distribution packages put the server binaries, one directory per major version.
const INSTALL_ROOT: &str = "/usr/lib/postgresql";
/// The superuser the server is created with.
const SUPERUSER: &str = "hub";
/// How long start and stop may take.
const PATIENCE: Duration = Duration::from_secs(60);

/// What can go wrong with the test server.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    #[error("PostgreSQL is not installed (no initdb under {0}/*/bin): run scripts/setup.sh --test")]
    NotInstalled(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{command} failed ({status}):\n{output}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        output: String,
    },
    #[error("PostgreSQL did not stop within {PATIENCE:?} of SIGINT, so it was killed")]
    NotStopped,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PostgresError {
    let what = what.into();
    move |source| PostgresError::Io { what, source }
}

/// A running server; dropping it stops the server and removes its directory.
pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    data: PathBuf,
    port: u16,
    password: String,
    /// The unprivileged user the server runs as when the tests run as root (initdb refuses
    /// root).
    owner: Option<User>,
    stopped: bool,
}

impl Postgres {
    /// Creates a cluster and starts its server; waits until it takes connections.
    pub fn start() -> Result<Self, PostgresError> {
        let bin = server_bin(Path::new(INSTALL_ROOT))?;
        let owner = if Uid::effective().is_root() {
            let user = User::from_name("postgres")
                .ok()
                .flatten()
                .ok_or_else(|| PostgresError::NotInstalled(INSTALL_ROOT.into()))?;
            Some(user)
        } else {
            None
        };
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "testkit-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).map_err(io(format!("creating {}", dir.display())))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(io(format!("making {} private", dir.display())))?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let mut pg = Self {
            data: dir.join("data"),
            password: format!("{:x}{:x}", nanos, std::process::id()),
            port: free_port()?,
            bin,
            dir,
            owner,
            stopped: true,
        };
        pg.init()?;
        pg.run(
            Command::new(pg.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&pg.data)
                .arg("-l")
                .arg(pg.dir.join("server.log"))
                .args(["-w", "-t", &PATIENCE.as_secs().to_string(), "start"]),
        )?;
        pg.stopped = false;
        Ok(pg)
    }

    /// The cluster, configured to listen on loopback and on a socket in its directory.
    fn init(&self) -> Result<(), PostgresError> {
        let pwfile = self.dir.join("pw");
        fs::write(&pwfile, format!("{}\n", self.password))
            .map_err(io(format!("writing {}", pwfile.display())))?;
        self.give_to_owner(&self.dir)?;
        self.give_to_owner(&pwfile)?;
        self.run(
            Command::new(self.bin.join("initdb"))
                .arg("-D")
                .arg(&self.data)
                .args(["-U", SUPERUSER, "--no-locale", "-E", "UTF8"])
                .arg("--auth=scram-sha-256")
                .arg(format!("--pwfile={}", pwfile.display())),
        )?;
        let conf = self.data.join("postgresql.conf");
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .map_err(io(format!("opening {}", conf.display())))?;
        writeln!(
            f,
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             max_connections = 200",
            self.port,
            self.dir.display()
        )
        .map_err(io(format!("writing {}", conf.display())))
    }

    fn give_to_owner(&self, path: &Path) -> Result<(), PostgresError> {
        let Some(user) = &self.owner else {
            return Ok(());
        };
        chown(path, Some(user.uid), Some(user.gid)).map_err(|e| PostgresError::Io {
            what: format!("handing {} to {}", path.display(), user.name),
            source: e.into(),
        })
    }

    /// Runs a server tool (as the server's owner) and waits for it.
    fn run(&self, cmd: &mut Command) -> Result<(), PostgresError> {
        if let Some(user) = &self.owner {
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        let out = cmd
            .output()
            .map_err(io(format!("running {:?}", cmd.get_program())))?;
        if out.status.success() {
            return Ok(());
        }
        Err(PostgresError::Failed {
            command: format!("{cmd:?}"),
            status: out.status,
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }

    /// The URL of database `db` on this server, as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// Creates an empty database with a fresh name; returns its name.
    pub fn create_database(&self) -> Result<String, PostgresError> {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("test_{}", N.fetch_add(1, Ordering::Relaxed));
        self.run(
            Command::new(self.bin.join("createdb"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", SUPERUSER, &name])
                .env("PGPASSWORD", &self.password),
        )?;
        Ok(name)
    }

    /// The server's pid, from its pid file.
    fn pid(&self) -> Option<Pid> {
        let text = fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok().map(Pid::from_raw)
    }

    /// Stops the server by its pid (SIGINT: fast shutdown) and waits until it is gone.
    pub fn stop(&mut self) -> Result<(), PostgresError> {
        if std::mem::replace(&mut self.stopped, true) {
            return Ok(());
        }
        let Some(pid) = self.pid() else {
            return Ok(());
        };
        let _ = kill(pid, Signal::SIGINT);
        let deadline = Instant::now() + PATIENCE;
        while self.data.join("postmaster.pid").exists() {
            if Instant::now() > deadline {
                let _ = kill(pid, Signal::SIGKILL);
                return Err(PostgresError::NotStopped);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("{e}");
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The bin directory of the newest major version under `root` that has the server tools.
fn server_bin(root: &Path) -> Result<PathBuf, PostgresError> {
    let missing = || PostgresError::NotInstalled(root.display().to_string());
    let versions = fs::read_dir(root).map_err(|_| missing())?;
    versions
        .filter_map(|v| v.ok())
        .filter_map(|v| {
            let major: u32 = v.file_name().to_str()?.parse().ok()?;
            let bin = v.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin)
        .ok_or_else(missing)
}

/// A loopback port no one listens on right now.
fn free_port() -> Result<u16, PostgresError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io("finding a free port"))?
        .port();
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_say_to_run_setup() {
        let empty = std::env::temp_dir().join(format!("testkit-no-pg-{}", std::process::id()));
        fs::create_dir_all(empty.join("15")).unwrap();
        for root in [empty.clone(), empty.join("absent")] {
            let message = server_bin(&root).unwrap_err().to_string();
            assert!(message.contains("run scripts/setup.sh --test"), "{message}");
            assert!(message.contains(&root.display().to_string()), "{message}");
        }
        fs::remove_dir_all(&empty).unwrap();
    }
}
