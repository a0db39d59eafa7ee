//! Helpers for the hub's integration tests: the hub served in-process on 127.0.0.1:0, or
//! the real `hub` binary as a child process (the test kit's, for kill and restart), the
//! `hub-client` binary (its `replay` reports as a tapper would), bounded waits.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use hub_client::{HubChannel, proto::v1::hub_client::HubClient};
use tapper_testkit::{HubCommand, HubProcess};
use tokio::{sync::oneshot, task::JoinHandle};

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
    tapper_testkit::workspace_bin("hub-client").unwrap_or_else(|e| panic!("{e}"))
}

async fn connect(url: &str) -> HubClient<HubChannel> {
    hub_client::connect(url)
        .await
        .expect("connecting to the hub")
}

/// The hub served by this test process, on 127.0.0.1:0 with an in-memory store.
pub struct InProcessHub {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    served: JoinHandle<Result<(), hub::StartError>>,
}

impl InProcessHub {
    /// Starts the hub with the defaults of the `hub` command, changed by `configure`.
    pub async fn start(configure: impl FnOnce(&mut hub::Config)) -> InProcessHub {
        let mut config = hub::Config::new("127.0.0.1:0".parse().unwrap(), ":memory:");
        configure(&mut config);
        let hub = hub::Hub::bind(config).await.expect("starting the hub");
        let url = format!("http://{}", hub.local_addr());
        let (stop, stopped) = oneshot::channel();
        let served = tokio::spawn(hub.serve_until(async {
            let _ = stopped.await;
        }));
        InProcessHub {
            url,
            stop: Some(stop),
            served,
        }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub async fn client(&self) -> HubClient<HubChannel> {
        connect(&self.url).await
    }

    /// Shuts the hub down gracefully and checks that it stopped without an error.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.served)
            .await
            .expect("the hub task panicked")
            .expect("the hub failed");
    }
}

/// A running hub process.
pub struct Hub {
    process: HubProcess,
}

impl Hub {
    /// Starts `hub --listen 127.0.0.1:0 --db DB ARGS...` in `dir` and waits for its ready
    /// line.
    pub fn start(dir: &Path, db: &str, args: &[&str]) -> Hub {
        let process = HubCommand::new(env!("CARGO_BIN_EXE_hub"))
            .current_dir(dir)
            .db(db)
            .flags(args.iter().copied())
            .start()
            .unwrap_or_else(|e| panic!("{e}"));
        Hub { process }
    }

    pub fn url(&self) -> String {
        self.process.url()
    }

    pub async fn client(&self) -> HubClient<HubChannel> {
        connect(&self.url()).await
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(&mut self) {
        self.process.kill();
    }

    /// Starts a new hub in the same directory on the same address and database.
    pub fn restart(&mut self) {
        self.process.restart().unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Runs `hub-client ARGS` to completion; returns stdout, panics with stderr on failure.
pub fn hub_client(args: &[&str]) -> String {
    run_to_end(hub_client_bin(), args)
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
