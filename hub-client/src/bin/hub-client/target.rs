//! The hubs the CLI talks to, in order, and how: connecting to one, or asking each in turn
//! until one answers.

use std::{future::Future, path::PathBuf};

use anyhow::Context;
use hub_client::{ClientConfig, Credentials, HubChannel, proto::v1::hub_client::HubClient};

/// The flags that say which hubs to talk to and with which credentials (every command's).
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Hub connection")]
pub struct Connection {
    /// Hub address, e.g. http://127.0.0.1:50051 (a bare host:port works too), or several:
    /// repeat the flag or separate them with commas. They are tried in order: stats and
    /// tappers ask the first that answers; watch moves on to the next when its stream
    /// breaks and resumes after the last hub_seq it printed (exact only across hubs that
    /// share one database, i.e. replicas); replay's reporter fails over between them.
    #[arg(
        long,
        global = true,
        env = "HUB_URL",
        value_name = "URL",
        value_delimiter = ',',
        value_parser = hub_client::parse_hub_address,
        default_value = "http://127.0.0.1:50051"
    )]
    hub: Vec<String>,
    /// Trust the hub's certificate if this CA (PEM) signed it, instead of the system roots
    /// (https:// only).
    #[arg(long, global = true, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Present this client certificate (PEM) to the hub (mTLS); needs --tls-key.
    #[arg(long, global = true, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, global = true, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Send the token in this file as `authorization: Bearer TOKEN` [default: the token in
    /// $HUB_TOKEN, if set].
    #[arg(long, global = true, value_name = "FILE", env = "HUB_TOKEN_FILE")]
    token_file: Option<PathBuf>,
}

impl Connection {
    /// The hubs to try, in order, with these credentials, each file read once to check it
    /// (a missing certificate or token file is one error naming its flag).
    pub fn into_target(self) -> anyhow::Result<Target> {
        let credentials =
            Credentials::from_options(self.tls_ca, self.tls_cert, self.tls_key, self.token_file);
        credentials.check(&self.hub)?;
        Ok(Target {
            hubs: self.hub,
            config: ClientConfig {
                credentials,
                ..ClientConfig::default()
            },
        })
    }
}

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
                    // With one hub the error itself is the answer: said once, at exit.
                    if self.hubs.len() > 1 {
                        tracing::warn!(hub = %url, error = %crate::describe(&e), "hub did not answer");
                    }
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
                    .map(crate::describe)
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
