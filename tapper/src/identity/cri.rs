//! The CRI runtime service (containerd, CRI-O) over its unix socket: lists containers and
//! pod sandboxes and joins them into names, as the kubelet set them, with no API server.

use std::{collections::HashMap, path::PathBuf, time::Duration};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::{
    Container, ListContainersRequest, ListPodSandboxRequest, PodSandbox, VersionRequest,
    runtime_service_client::RuntimeServiceClient,
};
use tapper_proto::v1::Pod;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use super::cache::{ContainerMeta, Listing};

/// A runtime that does not answer within this long is retried on the next refresh.
const RPC_TIMEOUT: Duration = Duration::from_secs(5);
/// Sandbox labels the kubelet adds itself; the rest are the pod's own labels.
const KUBELET_LABEL_PREFIX: &str = "io.kubernetes.";

pub struct CriClient {
    socket: PathBuf,
    client: RuntimeServiceClient<Channel>,
    /// From the Version call, once it answered: "containerd", "crio", ...
    runtime: Option<&'static str>,
}

impl CriClient {
    /// A client that connects (and reconnects) on use.
    pub fn new(socket: PathBuf) -> Self {
        let path = socket.clone();
        let channel =
            Endpoint::from_static("http://cri.invalid")
                .connect_timeout(RPC_TIMEOUT)
                .timeout(RPC_TIMEOUT)
                .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?))
                    }
                }));
        Self {
            socket,
            client: RuntimeServiceClient::new(channel),
            runtime: None,
        }
    }

    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// Every pod sandbox and container the runtime knows (running or exited).
    pub async fn list(&mut self) -> Result<Listing, tonic::Status> {
        let runtime = match self.runtime {
            Some(runtime) => runtime,
            None => {
                let version = self.client.version(VersionRequest::default()).await?;
                let runtime = runtime_name(&version.into_inner().runtime_name);
                tracing::info!(
                    "CRI runtime at {}: {runtime}; pod and container names come from it",
                    self.socket.display()
                );
                *self.runtime.insert(runtime)
            }
        };
        let sandboxes = self
            .client
            .list_pod_sandbox(ListPodSandboxRequest::default())
            .await?
            .into_inner()
            .items;
        let by_sandbox: HashMap<String, Pod> = sandboxes.into_iter().map(pod_of).collect();
        let containers = self
            .client
            .list_containers(ListContainersRequest::default())
            .await?
            .into_inner()
            .containers;
        let containers = containers
            .into_iter()
            .map(|c| container_of(c, runtime, &by_sandbox))
            .collect();
        let pods = by_sandbox
            .into_values()
            .filter_map(|pod| Some((pod.uid.clone()?, pod)))
            .collect();
        Ok(Listing { containers, pods })
    }
}

/// The CRI's runtime names, as the event spells them.
fn runtime_name(reported: &str) -> &'static str {
    match reported {
        "cri-o" | "crio" => "crio",
        "docker" => "docker",
        _ => "containerd",
    }
}

fn pod_of(sandbox: PodSandbox) -> (String, Pod) {
    let metadata = sandbox.metadata.unwrap_or_default();
    let labels = sandbox
        .labels
        .into_iter()
        .filter(|(key, _)| !key.starts_with(KUBELET_LABEL_PREFIX))
        .collect();
    let pod = Pod {
        uid: non_empty(metadata.uid),
        namespace: non_empty(metadata.namespace),
        name: non_empty(metadata.name),
        labels,
    };
    (sandbox.id, pod)
}

fn container_of(
    container: Container,
    runtime: &'static str,
    pods: &HashMap<String, Pod>,
) -> (String, ContainerMeta) {
    let image = container.image.unwrap_or_default();
    let image = non_empty(image.user_specified_image)
        .or(non_empty(image.image))
        .or(non_empty(container.image_ref));
    let meta = ContainerMeta {
        runtime,
        name: container.metadata.and_then(|m| non_empty(m.name)),
        image,
        pod: pods.get(&container.pod_sandbox_id).cloned(),
    };
    (container.id, meta)
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}
