//! The hubs the CLI talks to, in order, and how: connecting to one, or asking each in turn
//! until one answers.

use std::future::Future;

use anyhow::Context;
use hub_client::{ClientConfig, HubChannel, proto::v1::hub_client::HubClient};

/// The hub addresses (in the order they are tried) and how to connect.
pub struct Target {
    pub hubs: Vec<String>,
    pub config: ClientConfig,
}

/// A connected client.
pub type Client = HubClient<HubChannel>;

impl Target {
    /// Connects once to `url` (TLS for https://, the token on every call).
    pub async fn connect(&self, url: &str) -> anyhow::Result<Client> {
        hub_client::connect_with(url, &self.config)
            .await
            .with_context(|| format!("connecting to hub {url}"))
    }

    /// Runs `call` against the first hub that answers, in order: a hub that cannot be
    /// reached or is unavailable is logged and the next one asked; a refusal (a bad
    /// request) is the answer.
    pub async fn first_answer<T, F, Fut>(&self, mut call: F) -> anyhow::Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        let mut failures = Vec::new();
        for url in &self.hubs {
            let answer = match self.connect(url).await {
                Ok(client) => call(client).await.with_context(|| format!("hub {url}")),
                Err(e) => Err(e),
            };
            match answer {
                Err(e) if worth_another_hub(&e) => {
                    tracing::warn!(hub = %url, error = %format!("{e:#}"), "hub did not answer");
                    failures.push(e);
                }
                done => return done,
            }
        }
        match failures.len() {
            1 => Err(failures.remove(0)),
            _ => Err(anyhow::anyhow!(
                "no hub answered: {}",
                failures
                    .iter()
                    .map(|e| format!("{e:#}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        }
    }
}

/// Errors worth trying another hub (or the same one later): the hub is away or failed,
/// not a request it refused.
pub fn worth_another_hub(err: &anyhow::Error) -> bool {
    use tonic::Code;
    match err.chain().find_map(|c| c.downcast_ref::<tonic::Status>()) {
        Some(status) => matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Aborted | Code::Internal
        ),
        None => true, // transport and connect errors
    }
}
