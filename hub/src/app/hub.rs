//! Starting and stopping the hub: [`Hub::bind`] opens the store and the listening socket,
//! [`Hub::serve_until`] serves every gRPC service until a shutdown future resolves.

use std::{
    net::SocketAddr,
    sync::{Arc, Weak},
    time::Duration,
};

use tapper_proto::{FILE_DESCRIPTOR_SET, v1::hub_server::HubServer};
use tokio::{net::TcpListener, sync::watch};
use tracing::{info, warn};

use metrics_http::{BindError, MetricsEndpoint};
use prometheus_client::registry::Registry;

use crate::{
    api::{
        http::{self, BasePath, Web},
        service::HubService,
        state::{HubState, Settings},
        subscribe_route,
    },
    app::config::{Config, ConfigError, state_dir},
    ops::{
        alerts::{Alerting, RulesError},
        commit_observer::CommitObserver,
        metrics::{HubMetrics, LiveCounts, register_live},
        retention,
    },
    security::{
        auth,
        credentials::Credentials,
        listener, message_size,
        reload::{self, Reloadable},
        tls::{self, ServerTls, TlsError},
        tokens::{Tokens, TokensError},
    },
    store::{Store, StoreError, display_db},
};

/// How often the hub pings an idle connection, and how long it waits for the answer.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an exposed hub (`--insecure`) says so again.
const INSECURE_WARNING_EVERY: Duration = Duration::from_secs(3600);

/// Why the hub could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Tokens(#[from] TokensError),
    #[error("creating the state dir {} for --db: {source}", dir.display())]
    StateDir {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("opening database {db:?}: {source}")]
    Store { db: String, source: StoreError },
    #[error("starting the store's writer thread: {0}")]
    WriterThread(std::io::Error),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("building the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("serving: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error(transparent)]
    AlertRules(#[from] RulesError),
    #[error(transparent)]
    Metrics(#[from] BindError),
}

/// A hub with its store open and its socket bound, not yet serving.
pub struct Hub {
    config: Config,
    state: Arc<HubState>,
    shutdown: watch::Sender<bool>,
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<Arc<Reloadable<ServerTls>>>,
    tokens: Option<Arc<Reloadable<Tokens>>>,
    /// The health-only plaintext listener (`--health-listen`) and its address.
    health_listener: Option<(TcpListener, SocketAddr)>,
    metrics: Option<MetricsEndpoint>,
    observers: Observers,
}

/// What watches ingest: the metrics it keeps and the alert rules.
struct Observers {
    metrics: HubMetrics,
    alerts: Option<Arc<Alerting>>,
}

impl Observers {
    fn commit_observer(&self) -> CommitObserver {
        CommitObserver::new(self.metrics.clone(), self.alerts.clone())
    }
}

/// Binds `addr`, returning the listener and the address it got.
async fn bind_addr(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let bind_error = |source| StartError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

impl Hub {
    /// Validates `config`, opens the store and binds the listening address.
    pub async fn bind(config: Config) -> Result<Hub, StartError> {
        config.validate()?;
        let tls = match &config.tls {
            Some(files) => Some(Reloadable::new(tls::server_config(files)?)),
            None => None,
        };
        let tokens = match &config.tokens {
            Some(path) => Some(Reloadable::new(Tokens::load(path)?)),
            None => None,
        };
        state_dir::create_for(&config.db).map_err(|source| StartError::StateDir {
            dir: state_dir::state_dir(),
            source,
        })?;
        let (db, budget) = (config.db.clone(), config.query_budget);
        let store = tokio::task::spawn_blocking(move || Store::open(&db, budget))
            .await
            .map_err(|e| StartError::WriterThread(std::io::Error::other(e)))?
            .map_err(|source| StartError::Store {
                db: display_db(&config.db),
                source,
            })?;
        info!(db = %display_db(&config.db), last_hub_seq = store.last_hub_seq(), "store open");
        let observers = observers(&config, &store)?;
        match sys_limits::raise_nofile_limit() {
            Ok(limit) => {
                info!(
                    open_files_limit = limit,
                    "open-files limit raised to the hard limit"
                );
                warn_if_connections_exceed(limit, &config);
            }
            Err(err) => warn!(error = %err, "cannot raise the open-files limit"),
        }
        let (listener, local_addr) = bind_addr(config.listen).await?;
        let health_listener = match config.health_listen {
            Some(addr) => Some(bind_addr(addr).await?),
            None => None,
        };
        let metrics = match config.metrics_listen {
            Some(addr) => Some(MetricsEndpoint::bind(addr, config.metrics_limits).await?),
            None => None,
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let state = HubState::new(
            store,
            Settings {
                subscriber_queue: config.subscriber_queue,
                subscriber_queue_bytes: config.subscriber_queue_bytes,
                subscriber_stall_timeout: config.subscriber_stall_timeout,
                max_subscribers: config.max_subscribers,
                ingest_queue_bytes: config.ingest_queue_bytes,
            },
            observers.commit_observer(),
            shutdown_rx,
        )
        .map_err(StartError::WriterThread)?;
        Ok(Hub {
            config,
            state,
            shutdown,
            listener,
            local_addr,
            tls,
            tokens,
            health_listener,
            metrics,
            observers,
        })
    }

    /// The health-only address (`--health-listen`), if any, with its chosen port.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_listener.as_ref().map(|(_, addr)| *addr)
    }

    /// The metrics endpoint's address, with `--metrics-listen`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsEndpoint::local_addr)
    }

    /// The address it listens on (the chosen port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `stop` resolves, then ends open streams and stops; connections that
    /// linger past the configured grace time are dropped.
    pub async fn serve_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let Hub {
            config,
            state,
            shutdown,
            listener,
            local_addr,
            tls,
            tokens,
            health_listener,
            metrics,
            observers,
        } = self;
        tokio::spawn(retention::run(
            state.writer.clone(),
            observers.metrics.clone(),
            state.shutting_down(),
            config.retention,
        ));
        start_observers(&state, &observers, metrics);
        watch_files(&config, tls.as_ref(), tokens.as_ref());
        if config.exposed() {
            tokio::spawn(warn_exposed(
                config.listen,
                config.tls.is_some(),
                config.tokens.is_some(),
                state.shutting_down(),
            ));
        }

        let hub = message_size::hub_server(
            HubService::new(state.clone()),
            config.max_message_bytes,
            |server| {
                subscribe_route::with_subscribe(server, state.clone(), config.max_message_bytes)
            },
        );
        let credentials = Credentials::new(tokens, tls.clone(), config.node_identity.clone());
        let (health_reporter, health) = tonic_health::server::health_reporter();
        health_reporter.set_serving::<HubServer<HubService>>().await;
        if let Some((listener, addr)) = health_listener {
            info!("health service (alone, plaintext) on {addr}");
            let serve = tonic::transport::Server::builder()
                .add_service(health.clone())
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    state.shutting_down(),
                );
            tokio::spawn(async move {
                if let Err(err) = serve.await {
                    warn!(error = %err, "the health-only listener stopped");
                }
            });
        }
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        // The stop future starts the shutdown: streams end, health says NOT_SERVING.
        tokio::spawn(async move {
            stop.await;
            info!("shutting down");
            let _ = shutdown.send(true);
            health_reporter
                .set_not_serving::<HubServer<HubService>>()
                .await;
        });
        let mut grpc = tonic::service::Routes::builder();
        grpc.add_service(health)
            .add_service(auth::guard(reflection_v1, credentials.clone()))
            .add_service(auth::guard(reflection_v1alpha, credentials.clone()))
            .add_service(auth::guard(hub, credentials.clone()));
        let mut routes = grpc.routes();
        if config.web {
            let web = Web {
                state: state.clone(),
                credentials,
                base: BasePath::parse(&config.web_base_path).map_err(|reason| ConfigError {
                    option: "web-base-path",
                    reason,
                })?,
                tls: config.tls.is_some(),
                max_items: usize::try_from(config.query_budget.max_scan_rows).unwrap_or(usize::MAX),
                alerts: observers.alerts.clone(),
            };
            routes = http::with_web(routes.into_axum_router(), web).into();
        }
        let server = tonic::transport::Server::builder()
            // HTTP/1.1 for browsers and curl (the page and the HTTP API); gRPC is h2.
            .accept_http1(config.web)
            .max_concurrent_streams(Some(config.max_streams_per_connection))
            // What clients may send unread, per stream and per connection: bounds the
            // memory of many connections (hyper's default is 1 MiB each).
            .initial_stream_window_size(config.http2_stream_window)
            .initial_connection_window_size(config.http2_connection_window)
            // Pings find half-open connections (a peer that vanished without a FIN).
            .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
            .add_routes(routes)
            .serve_with_incoming_shutdown(
                listener::incoming(
                    listener,
                    listener::ConnectionCaps {
                        max_connections: config.max_connections,
                        max_connections_per_peer: config.max_connections_per_peer,
                        handshake_timeout: config.handshake_timeout,
                        auth_timeout: config.auth_timeout,
                        tls,
                        node_identity: config.node_identity.clone(),
                    },
                ),
                state.shutting_down(),
            );
        info!(
            tls = config.tls.is_some(),
            client_certificates = config.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
            tokens = config.tokens.is_some(),
            web = config.web.then_some(config.web_base_path.as_str()),
            "hub listening on {local_addr}"
        );
        let grace = config.shutdown_grace;
        tokio::pin!(server);
        // Streams end on shutdown; if a connection lingers, stop after the grace time.
        tokio::select! {
            r = &mut server => r?,
            _ = after_grace(state.shutting_down(), grace) => {
                warn!("connections still open after {grace:?}; exiting");
            }
        }
        info!("hub stopped");
        Ok(())
    }
}

/// The metrics ingest keeps (starting from the rows stored) and the alert rules, loaded.
fn observers(config: &Config, store: &Store) -> Result<Observers, StartError> {
    let metrics = HubMetrics::new(config.metrics_namespace_label);
    if config.metrics_listen.is_some() {
        match store.reader.rows() {
            Ok(rows) => metrics.set_store_rows(rows),
            Err(err) => {
                warn!(error = %err, "cannot count the stored rows; hub_store_rows starts at 0")
            }
        }
    }
    let Some(path) = &config.alert_rules else {
        return Ok(Observers {
            metrics,
            alerts: None,
        });
    };
    let rules = crate::ops::alerts::load_rules(path)?;
    info!(rules = rules.len(), file = %path.display(), alertmanagers = ?config.alertmanagers,
          "alert rules loaded");
    if config.alertmanagers.is_empty() {
        warn!("alert rules without --alertmanager: alerts are only logged");
    }
    let alerting = Alerting::new(
        rules,
        &config.alertmanagers,
        config.alert_resend_interval,
        config.alert_max_groups,
    )
    .map_err(|reason| ConfigError {
        option: "alertmanager",
        reason,
    })?;
    Ok(Observers {
        metrics,
        alerts: Some(Arc::new(alerting)),
    })
}

/// Starts alert delivery, and serves `/metrics` until the hub shuts down.
fn start_observers(
    state: &Arc<HubState>,
    observers: &Observers,
    endpoint: Option<MetricsEndpoint>,
) {
    if let Some(alerts) = &observers.alerts {
        let stopping = state.clone();
        alerts.start(move || {
            let state = stopping.clone();
            async move { state.shutting_down().await }
        });
    }
    let Some(endpoint) = endpoint else { return };
    let mut registry = Registry::default();
    observers.metrics.register(&mut registry);
    let live: Weak<dyn LiveCounts> = Arc::downgrade(state) as Weak<HubState>;
    register_live(&mut registry, live);
    if let Some(alerts) = &observers.alerts {
        alerts.register(&mut registry);
    }
    tokio::spawn(endpoint.serve(registry, state.shutting_down()));
}

/// Descriptors kept for the store, the listeners and outgoing connections.
const SPARE_DESCRIPTORS: u64 = 256;

/// Says at start when the connection caps together could use up the open-files limit:
/// then a flood on one listener could starve the other and the store.
fn warn_if_connections_exceed(limit: u64, config: &Config) {
    let metrics = match config.metrics_listen {
        Some(_) => u64::from(config.metrics_limits.max_connections),
        None => 0,
    };
    let needed = config.max_connections as u64 + metrics + SPARE_DESCRIPTORS;
    if needed > limit {
        warn!(
            open_files_limit = limit,
            needed,
            "--max-connections and --metrics-max-connections (plus {SPARE_DESCRIPTORS} spare) \
             exceed the open-files limit; raise the limit (ulimit -n) or lower those caps"
        );
    }
}

/// Reloads the TLS files and the tokens when they change on disk.
fn watch_files(
    config: &Config,
    tls: Option<&Arc<Reloadable<ServerTls>>>,
    tokens: Option<&Arc<Reloadable<Tokens>>>,
) {
    if let (Some(files), Some(target)) = (config.tls.clone(), tls) {
        reload::watch(
            "TLS certificate",
            files.paths(),
            config.reload_interval,
            target,
            move || tls::server_config(&files),
        );
    }
    if let (Some(path), Some(target)) = (config.tokens.clone(), tokens) {
        reload::watch(
            "tokens",
            vec![path.clone()],
            config.reload_interval,
            target,
            move || Tokens::load(&path),
        );
    }
}

/// Warns now and every hour that the hub serves beyond loopback unprotected.
async fn warn_exposed(listen: SocketAddr, tls: bool, tokens: bool, stop: impl Future<Output = ()>) {
    let missing = match (tls, tokens) {
        (false, false) => "without TLS and without tokens",
        (false, true) => "without TLS",
        _ => "without tokens",
    };
    tokio::pin!(stop);
    loop {
        warn!(%listen, "--insecure: serving beyond loopback {missing}; anyone who can reach it \
              can read every event and report as any node");
        tokio::select! {
            _ = tokio::time::sleep(INSECURE_WARNING_EVERY) => {}
            () = &mut stop => return,
        }
    }
}

async fn after_grace(shutting_down: impl Future<Output = ()>, grace: Duration) {
    shutting_down.await;
    tokio::time::sleep(grace).await;
}
