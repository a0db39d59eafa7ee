//! Helpers for the hub's integration tests: start the real `hub` binary on 127.0.0.1:0,
//! find the `hub-client` and `tapper-bench` binaries, bounded waits.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use hub_client::proto::v1::hub_client::HubClient;
use tonic::transport::Channel;

/// A private scratch directory per test.
pub fn scratch(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "hub-it-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        name
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Waits up to `timeout` for `f` to return `Some`; panics with `what` otherwise.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `hub-client` binary: $HUB_CLIENT_BIN, or next to this test's target directory.
pub fn hub_client_bin() -> PathBuf {
    sibling_bin("HUB_CLIENT_BIN", "hub-client")
}

/// The `tapper-bench` binary (its `replay` reports as a tapper would): $TAPPER_BENCH_BIN,
/// or next to this test's target directory.
pub fn tapper_bench_bin() -> PathBuf {
    sibling_bin("TAPPER_BENCH_BIN", "tapper-bench")
}

fn sibling_bin(var: &str, name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(var) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().and_then(Path::parent).unwrap().join(name);
    assert!(
        p.exists(),
        "{name} binary not found at {}: run `cargo build -p {name}` first or set {var}",
        p.display()
    );
    p
}

/// A running hub process.
pub struct Hub {
    child: Child,
    pub addr: String,
    pub db: String,
    log: PathBuf,
    args: Vec<String>,
}

impl Hub {
    /// Starts `hub --listen 127.0.0.1:0 --db DB ARGS...` and waits for its listening line.
    pub fn start(dir: &Path, db: &str, args: &[&str]) -> Hub {
        Self::start_on(
            dir,
            db,
            "127.0.0.1:0",
            args.iter().map(|s| s.to_string()).collect(),
        )
    }

    fn start_on(dir: &Path, db: &str, listen: &str, args: Vec<String>) -> Hub {
        static N: AtomicU32 = AtomicU32::new(0);
        let log = dir.join(format!("hub-{}.log", N.fetch_add(1, Ordering::Relaxed)));
        let child = Command::new(env!("CARGO_BIN_EXE_hub"))
            .args(["--listen", listen, "--db", db])
            .args(&args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawning hub");
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(rest) = text.split("hub listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "hub did not print its listening address within 20s; log:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Hub {
            child,
            addr,
            db: db.into(),
            log,
            args,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn client(&self) -> HubClient<Channel> {
        hub_client::connect(&self.url())
            .await
            .expect("connecting to the hub")
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts a new hub on the same address and database.
    pub fn restart(&mut self, dir: &Path) {
        let h = Self::start_on(dir, &self.db.clone(), &self.addr.clone(), self.args.clone());
        drop(std::mem::replace(self, h));
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `hub-client ARGS` to completion; returns stdout, panics with stderr on failure.
pub fn hub_client(args: &[&str]) -> String {
    run_to_end(hub_client_bin(), args)
}

/// Runs `tapper-bench ARGS` to completion; returns stdout, panics with stderr on failure.
pub fn tapper_bench(args: &[&str]) -> String {
    run_to_end(tapper_bench_bin(), args)
}

fn run_to_end(bin: PathBuf, args: &[&str]) -> String {
    let out = Command::new(&bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}\n{}",
        bin.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
