//! Accepts connections so that no client can exhaust the hub: a cap on open connections and
//! on those of one peer address, a deadline for a new connection to finish its TLS handshake
//! (when the hub serves TLS) and send the HTTP/2 preface, another for its first authorized
//! call, and back-off on accept errors (such as EMFILE) instead of a busy loop. A TLS
//! connection carries its verified client certificate to the service.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use sys_limits::Acceptor;
use tapper_logging::LogBudget;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, mpsc},
};
use tokio_rustls::{TlsAcceptor, rustls::ServerConfig, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tracing::{debug, warn};

use crate::security::{
    auth_deadline::{AuthDeadline, Authorized},
    connection_caps::{PeerCaps, PeerSlot},
    first_bytes::peek_until,
    node_identity::{ClientCert, NodeIdentity},
    plaintext_on_tls::{self, FirstBytes},
    reload::Reloadable,
    tls::ServerTls,
};

/// Length of the HTTP/2 client connection preface (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`).
const PREFACE_LEN: usize = 24;
/// At most one warning per this interval for each kind of refused connection.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// How many connections to hold and how long a silent one may stay.
#[derive(Clone)]
pub struct ConnectionCaps {
    /// Open connections at most; more are accepted and closed at once.
    pub max_connections: usize,
    /// Open connections from one peer address at most; more are closed at once.
    pub max_connections_per_peer: usize,
    /// A new connection must send the HTTP/2 preface within this time.
    pub handshake_timeout: Duration,
    /// After its handshake, a connection must make an authorized call within this time.
    pub auth_timeout: Duration,
    /// With it, connections are TLS, with the config in force when they arrive.
    pub tls: Option<Arc<Reloadable<ServerTls>>>,
    /// How a client certificate names its node.
    pub node_identity: NodeIdentity,
}

/// What the service knows of a connection (in each request's extensions).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub remote_addr: SocketAddr,
    /// The verified client certificate (mTLS only).
    pub client: Option<Arc<ClientCert>>,
    /// Marked by the first authorized call, which lifts `--auth-timeout`.
    pub authorized: Authorized,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An accepted connection; its slots under the connection caps are freed when it drops.
pub struct CappedConn {
    stream: Stream,
    /// Bytes read ahead to check the preface (TLS), handed to the server first.
    replay: Vec<u8>,
    info: ConnInfo,
    auth_deadline: AuthDeadline,
    _slots: (OwnedSemaphorePermit, PeerSlot),
}

impl Connected for CappedConn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

macro_rules! on_stream {
    ($self:expr, $s:ident => $e:expr) => {
        match &mut $self.stream {
            Stream::Plain($s) => $e,
            Stream::Tls($s) => $e,
        }
    };
}

impl CappedConn {
    /// The error that closes the connection once its `--auth-timeout` passed with no
    /// authorized call. Checked on reads and writes alike, so that a client that stops
    /// reading (and so blocks the hub's writes) is closed too.
    fn auth_expired(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        if !self.auth_deadline.poll_expired(cx) {
            return None;
        }
        debug!(peer = %self.info.remote_addr,
               "closing a connection that made no authorized call in time (--auth-timeout)");
        Some(io::Error::new(
            io::ErrorKind::TimedOut,
            "no authorized call within --auth-timeout",
        ))
    }
}

impl AsyncRead for CappedConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(expired) = self.auth_expired(cx) {
            return Poll::Ready(Err(expired));
        }
        if !self.replay.is_empty() {
            let n = self.replay.len().min(buf.remaining());
            buf.put_slice(&self.replay[..n]);
            self.replay.drain(..n);
            return Poll::Ready(Ok(()));
        }
        on_stream!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for CappedConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(expired) = self.auth_expired(cx) {
            return Poll::Ready(Err(expired));
        }
        on_stream!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(expired) = self.auth_expired(cx) {
            return Poll::Ready(Err(expired));
        }
        on_stream!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_stream!(self, s => Pin::new(s).poll_shutdown(cx))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(expired) = self.auth_expired(cx) {
            return Poll::Ready(Err(expired));
        }
        on_stream!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// Accepts from `listener` in a background task and yields the connections that finished
/// the TLS handshake (if any) and sent the HTTP/2 preface in time, while fewer than
/// `limits.max_connections` are open.
pub fn incoming(
    listener: TcpListener,
    limits: ConnectionCaps,
) -> ReceiverStream<io::Result<CappedConn>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(accept_loop(listener, limits, tx));
    ReceiverStream::new(rx)
}

async fn accept_loop(
    listener: TcpListener,
    limits: ConnectionCaps,
    tx: mpsc::Sender<io::Result<CappedConn>>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let peers = PeerCaps::new(limits.max_connections_per_peer);
    let mut full_warning = LogBudget::one_per(WARN_EVERY);
    let mut peer_warning = LogBudget::one_per(WARN_EVERY);
    let tls_warnings = Arc::new(TlsWarnings {
        failed: Mutex::new(LogBudget::one_per(WARN_EVERY)),
        nameless: Mutex::new(LogBudget::one_per(WARN_EVERY)),
        plaintext: Mutex::new(LogBudget::one_per(WARN_EVERY)),
    });
    let mut acceptor = Acceptor::new(
        "gRPC",
        "if the hub is out of descriptors, raise its open-files limit (ulimit -n) or lower \
         --max-connections or, with --metrics-listen, --metrics-max-connections",
    );
    loop {
        let (stream, peer) = tokio::select! {
            accepted = acceptor.accept(&listener) => accepted,
            _ = tx.closed() => return,
        };
        let Some(peer_slot) = peers.try_take(peer.ip()) else {
            if let Some(unlogged) = peer_warning.due() {
                warn!(%peer, limit = peers.max_per_peer(), unlogged,
                      "connection limit of one peer address reached; closing new connection (see --max-connections-per-peer)");
            }
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if let Some(unlogged) = full_warning.due() {
                warn!(%peer, limit = limits.max_connections, unlogged,
                      "connection limit reached; closing new connection (see --max-connections)");
            }
            continue;
        };
        // No Nagle: acks and subscription items are small and latency-bound.
        if let Err(err) = stream.set_nodelay(true) {
            debug!(%peer, error = %err, "cannot set TCP_NODELAY");
        }
        let tx = tx.clone();
        // The config in force now: a reload changes new connections only.
        let tls = limits.tls.as_ref().map(|t| t.get().config.clone());
        let timeout = limits.handshake_timeout;
        let auth_timeout = limits.auth_timeout;
        let node_identity = limits.node_identity.clone();
        let tls_warnings = tls_warnings.clone();
        tokio::spawn(async move {
            let handshake = async {
                match tls {
                    None => preface_arrived(&stream)
                        .await
                        .then(|| (Stream::Plain(stream), Vec::new(), None)),
                    Some(config) => {
                        tls_handshake(stream, config, peer, &node_identity, &tls_warnings).await
                    }
                }
            };
            match tokio::time::timeout(timeout, handshake).await {
                Ok(Some((stream, replay, client))) => {
                    let (auth_deadline, authorized) = AuthDeadline::start(auth_timeout);
                    let info = ConnInfo {
                        remote_addr: peer,
                        client,
                        authorized,
                    };
                    let _ = tx
                        .send(Ok(CappedConn {
                            stream,
                            replay,
                            info,
                            auth_deadline,
                            _slots: (slot, peer_slot),
                        }))
                        .await;
                }
                Ok(None) => debug!(%peer, "connection closed before the HTTP/2 preface"),
                Err(_) => debug!(%peer, ?timeout,
                                 "closing a connection that finished no handshake or sent no HTTP/2 preface in time"),
            }
        });
    }
}

/// Waits until the client has sent at least the length of the HTTP/2 preface (an HTTP/1.1
/// request of the page or the HTTP API is longer too); false when it closed first.
async fn preface_arrived(stream: &TcpStream) -> bool {
    let mut buf = [0u8; PREFACE_LEN];
    peek_until(stream, &mut buf, |first| {
        (first.len() >= PREFACE_LEN).then_some(())
    })
    .await
    .is_some()
}

/// The warnings of TLS handshakes, each kind at most once per [`WARN_EVERY`].
struct TlsWarnings {
    failed: Mutex<LogBudget>,
    nameless: Mutex<LogBudget>,
    plaintext: Mutex<LogBudget>,
}

fn due(budget: &Mutex<LogBudget>) -> Option<u64> {
    budget.lock().unwrap_or_else(|e| e.into_inner()).due()
}

/// The TLS handshake, then the HTTP/2 preface read ahead (to be replayed); `None` when the
/// handshake fails, the client closes first, or it speaks plaintext (it is told to use
/// https://).
async fn tls_handshake(
    stream: TcpStream,
    config: Arc<ServerConfig>,
    peer: SocketAddr,
    node_identity: &NodeIdentity,
    warnings: &TlsWarnings,
) -> Option<(Stream, Vec<u8>, Option<Arc<ClientCert>>)> {
    if let FirstBytes::Plain(first) = plaintext_on_tls::peek(&stream).await {
        if first.is_empty() {
            return None;
        }
        let local = stream.local_addr().ok()?;
        match due(&warnings.plaintext) {
            Some(unlogged) => warn!(%peer, unlogged,
                                    "a plaintext client on the TLS port; telling it to use https://"),
            None => debug!(%peer, "a plaintext client on the TLS port"),
        }
        plaintext_on_tls::answer(stream, &first, local).await;
        return None;
    }
    let mut tls = match TlsAcceptor::from(config).accept(stream).await {
        Ok(tls) => tls,
        Err(err) => {
            match due(&warnings.failed) {
                Some(unlogged) => warn!(%peer, error = %err, unlogged,
                                        "TLS handshake failed (a plaintext client, an untrusted or expired certificate?)"),
                None => debug!(%peer, error = %err, "TLS handshake failed"),
            }
            return None;
        }
    };
    let client = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| ClientCert::new(chain, node_identity))
        .map(Arc::new);
    if client.as_ref().is_some_and(|c| c.identity.is_none())
        && let Some(unlogged) = due(&warnings.nameless)
    {
        warn!(%peer, unlogged, "the client certificate names no node ({node_identity} \
              expected); its calls are refused (see --node-identity)");
    }
    let mut preface = vec![0u8; PREFACE_LEN];
    tls.read_exact(&mut preface).await.ok()?;
    Some((Stream::Tls(Box::new(tls)), preface, client))
}
