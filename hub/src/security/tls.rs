//! The hub's TLS: the server certificate and key (and the CA that client certificates must be
//! signed by) read from PEM files (regular files of at most 1 MiB) into a rustls config.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio_rustls::rustls::{
    self, RootCertStore, ServerConfig,
    server::{WebPkiClientVerifier, danger::ClientCertVerifier},
};

use crate::util::config_file::{self, FileError};

/// Largest PEM file accepted.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// The PEM files TLS is served from; all of them are re-read when one changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain, leaf first.
    pub cert: PathBuf,
    /// The server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// With it, clients must present a certificate signed by one of these CAs (mTLS).
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Every file, for the reload watcher.
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut paths = vec![self.cert.clone(), self.key.clone()];
        paths.extend(self.client_ca.clone());
        paths
    }
}

/// Why a TLS file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Read(#[from] FileError),
    #[error("--{flag} {}: {reason}", path.display())]
    File {
        flag: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "--tls-cert and --tls-key: the certificate and key do not fit together or are \
         unusable (give the key of that certificate): {0}"
    )]
    Rustls(#[from] rustls::Error),
    #[error("--tls-client-ca: {0}")]
    ClientCa(#[from] rustls::server::VerifierBuilderError),
}

fn file_error(flag: &'static str, path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        flag,
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Reads the certificates of the PEM file given as `--flag`; at least one.
fn read_certs(flag: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = config_file::read(flag, path, MAX_PEM_BYTES)?;
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(flag, path, e))?;
    if certs.is_empty() {
        return Err(file_error(flag, path, "no PEM certificate in it"));
    }
    Ok(certs)
}

/// The TLS in force: the config new connections get, and the client CA's verifier, which
/// also checks each call's client certificate again (a rotated CA ends old credentials).
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    pub client_verifier: Option<Arc<dyn ClientCertVerifier>>,
}

/// Builds the server config from `files` (ring provider, ALPN `h2`).
pub fn server_config(files: &TlsFiles) -> Result<ServerTls, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs("tls-cert", &files.cert)?;
    let key = config_file::read("tls-key", &files.key, MAX_PEM_BYTES)?;
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| {
        file_error(
            "tls-key",
            &files.key,
            format!("no usable PEM private key in it ({e})"),
        )
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let client_verifier = match &files.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs("tls-client-ca", ca)? {
                roots
                    .add(cert)
                    .map_err(|e| file_error("tls-client-ca", ca, e))?;
            }
            Some(WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?)
        }
        None => None,
    };
    let builder = match &client_verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier.clone()),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key)?;
    // h2 for gRPC; http/1.1 for browsers and curl (the page and the HTTP API).
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(ServerTls {
        config: Arc::new(config),
        client_verifier,
    })
}
