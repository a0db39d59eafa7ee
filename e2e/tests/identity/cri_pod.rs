//! A pod the containerd test runs over the CRI, and its containers, made as the kubelet
//! makes them (metadata, labels, host network), each run until it exits.

use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::bail;

use crate::{EXIT_TIMEOUT, PROBE_FAILURES, cgroup_tree, image::IMAGE, wait_until};

/// A pod sandbox the test runs, and what its containers need from it.
pub struct TestPod {
    pub sandbox: String,
    pub config: k8s_cri::v1::PodSandboxConfig,
    pub kubelet_labels: HashMap<String, String>,
    /// The pod's cgroup in the memory hierarchy (its containers' cgroups are below).
    pub cgroup_dir: PathBuf,
}

pub type Cri = k8s_cri::v1::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;

/// A container failing for two seconds, then a short one that fails three times at once
/// (started after its pod was listed); each runs until it exits. Returns (name, id, pid,
/// failures) of each.
pub async fn run_containers(
    cri: &mut Cri,
    pod: &TestPod,
) -> anyhow::Result<Vec<(&'static str, String, u32, usize)>> {
    let mut containers = Vec::new();
    for (name, failures, gap, linger) in [
        ("failer", PROBE_FAILURES, "100", "0"),
        ("oneshot", 3, "0", "1000"),
    ] {
        let args = ["fail", &failures.to_string(), gap, linger].map(String::from);
        let (id, pid) = pod.run_container(cri, name, args.to_vec()).await?;
        containers.push((name, id, pid, failures));
    }
    Ok(containers)
}

impl TestPod {
    /// Creates and starts a container of the probe image with `args`, as the kubelet
    /// would (metadata, its labels, host network), and waits for it to exit. Returns its
    /// id and pid.
    async fn run_container(
        &self,
        cri: &mut Cri,
        name: &str,
        args: Vec<String>,
    ) -> anyhow::Result<(String, u32)> {
        use k8s_cri::v1::*;

        let mut labels = self.kubelet_labels.clone();
        labels.insert("io.kubernetes.container.name".into(), name.into());
        let namespace_options = self
            .config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|c| c.namespace_options.clone());
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: IMAGE.into(),
                ..Default::default()
            }),
            args,
            labels,
            log_path: format!("{name}.log"),
            linux: Some(LinuxContainerConfig {
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = cri
            .create_container(CreateContainerRequest {
                pod_sandbox_id: self.sandbox.clone(),
                config: Some(config),
                sandbox_config: Some(self.config.clone()),
            })
            .await?
            .into_inner()
            .container_id;
        cri.start_container(StartContainerRequest {
            container_id: id.clone(),
        })
        .await?;
        let dir = self.cgroup_dir.join(&id);
        let mut pid = None;
        wait_until(
            &format!("a process in container {name}"),
            EXIT_TIMEOUT,
            || {
                pid = cgroup_tree::procs(&dir).first().copied();
                pid.is_some()
            },
        )?;
        let deadline = Instant::now() + EXIT_TIMEOUT;
        while !has_exited(cri, &id).await {
            if Instant::now() > deadline {
                bail!("container {name} did not exit within {EXIT_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok((id, pid.expect("found above")))
    }
}

async fn has_exited(cri: &mut Cri, id: &str) -> bool {
    let request = k8s_cri::v1::ContainerStatusRequest {
        container_id: id.to_owned(),
        verbose: false,
    };
    let state = cri
        .container_status(request)
        .await
        .ok()
        .and_then(|r| r.into_inner().status)
        .map(|s| s.state);
    state == Some(k8s_cri::v1::ContainerState::ContainerExited as i32)
}
