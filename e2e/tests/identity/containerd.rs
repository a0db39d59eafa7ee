//! A real containerd with its CRI plugin, started in a temp dir with its own root, state,
//! socket, runc root and sandbox image, cgroupfs driver, host networking (no CNI), and a
//! CRI client to drive it as the kubelet does.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::{VersionRequest, runtime_service_client::RuntimeServiceClient};
use nix::sys::signal::Signal;
use tapper_testkit::{Process, Stdout};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::image::run;

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_GRACE: Duration = Duration::from_secs(30);

pub struct Containerd {
    process: Process,
    pub socket: PathBuf,
}

impl Containerd {
    /// Starts containerd in `dir` with `sandbox_image` as the pause image, and waits until
    /// its CRI service answers.
    pub async fn start(dir: &Path, sandbox_image: &str) -> anyhow::Result<Self> {
        let socket = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        std::fs::write(&config, config_toml(dir, &socket, sandbox_image))?;
        let mut cmd = Command::new("containerd");
        cmd.arg("--config").arg(&config);
        let process = Process::spawn("containerd", cmd, Stdout::Discard)
            .context("run scripts/setup.sh --test to install containerd")?;
        let containerd = Self { process, socket };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let answer = match containerd.runtime().await {
                Ok(mut client) => client
                    .version(VersionRequest::default())
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string()),
                Err(err) => Err(err.to_string()),
            };
            match answer {
                Ok(()) => return Ok(containerd),
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(err) => bail!(
                    "containerd's CRI did not answer within {START_TIMEOUT:?} ({err}); its log:\n{}",
                    containerd.process.output()
                ),
            }
        }
    }

    /// Imports an OCI archive into the CRI's namespace (`k8s.io`) as `name`.
    pub fn import(&self, archive: &Path, name: &str) -> anyhow::Result<()> {
        let base = name.rsplit_once(':').map_or(name, |(base, _)| base);
        run(Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(["--namespace", "k8s.io", "images", "import"])
            .args(["--snapshotter", "native", "--base-name", base])
            .arg(archive))?;
        Ok(())
    }

    /// A CRI runtime-service client on the socket.
    pub async fn runtime(&self) -> anyhow::Result<RuntimeServiceClient<Channel>> {
        let socket = self.socket.clone();
        let channel =
            Endpoint::from_static("http://containerd.invalid")
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let socket = socket.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(socket).await?))
                    }
                }))
                .await?;
        Ok(RuntimeServiceClient::new(channel))
    }

    /// Everything containerd logged, for failure messages.
    pub fn log(&self) -> String {
        self.process.output()
    }

    /// SIGTERM, and wait for it to exit.
    pub fn stop(self) -> anyhow::Result<()> {
        self.process.stop_with(Signal::SIGTERM, STOP_GRACE)?;
        Ok(())
    }
}

fn config_toml(dir: &Path, socket: &Path, sandbox_image: &str) -> String {
    let d = dir.display();
    let s = socket.display();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{s}"
[ttrpc]
  address = "{s}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # No CAP_SYS_RESOURCE here: the sandbox's oom_score_adj may not go below containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "{d}/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/conf"
"#
    )
}
