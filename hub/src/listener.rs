//! Accepts connections so that no client can exhaust the hub: a cap on open connections, a
//! deadline for a new connection to finish its TLS handshake (when the hub serves TLS) and
//! send the HTTP/2 preface, and back-off on accept errors (such as EMFILE) instead of a busy
//! loop. A TLS connection carries its verified client identity to the service.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tapper_logging::RateLimitedLog;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, mpsc},
};
use tokio_rustls::{TlsAcceptor, rustls::ServerConfig, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tracing::{debug, warn};

use crate::{reload::Reloadable, tls::PeerIdentity};

/// Length of the HTTP/2 client connection preface (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`).
const PREFACE_LEN: usize = 24;
/// Longest pause between accept attempts after repeated errors.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);
/// At most one warning per this interval for each kind of refused connection.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// How many connections to hold and how long a silent one may stay.
#[derive(Clone)]
pub struct ConnectionLimits {
    /// Open connections at most; more are accepted and closed at once.
    pub max_connections: usize,
    /// A new connection must send the HTTP/2 preface within this time.
    pub handshake_timeout: Duration,
    /// With it, connections are TLS, with the config in force when they arrive.
    pub tls: Option<Arc<Reloadable<ServerConfig>>>,
}

/// What the service knows of a connection (in each request's extensions).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub remote_addr: SocketAddr,
    /// The verified client certificate's identity (mTLS only).
    pub identity: Option<Arc<PeerIdentity>>,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An accepted connection; its slot under the connection cap is freed when it drops.
pub struct LimitedConn {
    stream: Stream,
    /// Bytes read ahead to check the preface (TLS), handed to the server first.
    replay: Vec<u8>,
    info: ConnInfo,
    _slot: OwnedSemaphorePermit,
}

impl Connected for LimitedConn {
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

impl AsyncRead for LimitedConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.replay.is_empty() {
            let n = self.replay.len().min(buf.remaining());
            buf.put_slice(&self.replay[..n]);
            self.replay.drain(..n);
            return Poll::Ready(Ok(()));
        }
        on_stream!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for LimitedConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        on_stream!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
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
    limits: ConnectionLimits,
) -> ReceiverStream<io::Result<LimitedConn>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(accept_loop(listener, limits, tx));
    ReceiverStream::new(rx)
}

async fn accept_loop(
    listener: TcpListener,
    limits: ConnectionLimits,
    tx: mpsc::Sender<io::Result<LimitedConn>>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut full_warning = RateLimitedLog::new(WARN_EVERY);
    let mut error_warning = RateLimitedLog::new(WARN_EVERY);
    let tls_warning = Arc::new(std::sync::Mutex::new(RateLimitedLog::new(WARN_EVERY)));
    let mut backoff = Duration::ZERO;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // EMFILE/ENFILE/ENOBUFS leave the connection queued: retrying at once
                    // would spin. Wait, longer each time, and say so.
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_ACCEPT_BACKOFF);
                    if let Some(unlogged) = error_warning.due() {
                        warn!(error = %err, retry_in = ?backoff, unlogged,
                              "cannot accept a connection; if the hub is out of descriptors, raise its \
                               open-files limit (ulimit -n) or lower --max-connections or, with \
                               --metrics-listen, --metrics-max-connections");
                    }
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            },
            _ = tx.closed() => return,
        };
        backoff = Duration::ZERO;
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
        let tls = limits.tls.as_ref().map(|t| t.get());
        let timeout = limits.handshake_timeout;
        let tls_warning = tls_warning.clone();
        tokio::spawn(async move {
            let handshake = async {
                match tls {
                    None => preface_arrived(&stream)
                        .await
                        .then(|| (Stream::Plain(stream), Vec::new(), None)),
                    Some(config) => tls_handshake(stream, config, peer, &tls_warning).await,
                }
            };
            match tokio::time::timeout(timeout, handshake).await {
                Ok(Some((stream, replay, identity))) => {
                    let info = ConnInfo {
                        remote_addr: peer,
                        identity,
                    };
                    let _ = tx
                        .send(Ok(LimitedConn {
                            stream,
                            replay,
                            info,
                            _slot: slot,
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

/// Waits until the client has sent at least the length of the HTTP/2 preface; false when
/// it closed the connection first.
async fn preface_arrived(stream: &TcpStream) -> bool {
    let mut buf = [0u8; PREFACE_LEN];
    loop {
        match stream.peek(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) if n >= PREFACE_LEN => return true,
            // Part of the preface: give the rest a moment instead of spinning on peek.
            Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// The TLS handshake, then the HTTP/2 preface read ahead (to be replayed); `None` when the
/// handshake fails or the client closes first.
async fn tls_handshake(
    stream: TcpStream,
    config: Arc<ServerConfig>,
    peer: SocketAddr,
    warning: &std::sync::Mutex<RateLimitedLog>,
) -> Option<(Stream, Vec<u8>, Option<Arc<PeerIdentity>>)> {
    let mut tls = match TlsAcceptor::from(config).accept(stream).await {
        Ok(tls) => tls,
        Err(err) => {
            let due = warning.lock().unwrap_or_else(|e| e.into_inner()).due();
            match due {
                Some(unlogged) => warn!(%peer, error = %err, unlogged,
                                        "TLS handshake failed (a plaintext client, an untrusted or expired certificate?)"),
                None => debug!(%peer, error = %err, "TLS handshake failed"),
            }
            return None;
        }
    };
    let identity = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|leaf| PeerIdentity::from_certificate(leaf))
        .map(Arc::new);
    let mut preface = vec![0u8; PREFACE_LEN];
    tls.read_exact(&mut preface).await.ok()?;
    Some((Stream::Tls(Box::new(tls)), preface, identity))
}
