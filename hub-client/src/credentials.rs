//! How a client proves who it is and whom it trusts: TLS files for `https://` hubs (a CA, or
//! the system roots; a client certificate for mTLS) and a bearer token sent on every call.

use std::{fmt, path::Path, path::PathBuf};

use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::Interceptor,
    transport::{Certificate, ClientTlsConfig, Endpoint, Identity},
};

use crate::error::{ClientError, error_chain};

/// The environment variable a token may come from when no token file is given.
pub const TOKEN_ENV: &str = "HUB_TOKEN";
/// Largest token file read; a token is a line of text.
const MAX_TOKEN_FILE: u64 = 64 << 10;
/// Largest TLS file (PEM certificate chain or key) read.
const MAX_TLS_FILE: u64 = 1 << 20;

/// Where the bearer token comes from.
#[derive(Clone)]
pub enum TokenSource {
    /// A file holding the token (surrounding whitespace ignored); re-read on each connect.
    File(PathBuf),
    /// The token itself.
    Value(String),
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Value(_) => f.write_str("Value(<hidden>)"),
        }
    }
}

/// TLS files and the token; [`Default`] is none (plaintext `http://`, no token).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Trust hubs whose certificate this CA (PEM) signed, instead of the system roots.
    pub tls_ca: Option<PathBuf>,
    /// Present this certificate (PEM) to the hub (mTLS); needs `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// The private key of `tls_cert` (PEM).
    pub tls_key: Option<PathBuf>,
    /// Send `authorization: Bearer TOKEN` on every call.
    pub token: Option<TokenSource>,
}

impl Credentials {
    /// The usual command-line form: a token file if given, else the token in
    /// [`TOKEN_ENV`] if set.
    pub fn from_options(
        tls_ca: Option<PathBuf>,
        tls_cert: Option<PathBuf>,
        tls_key: Option<PathBuf>,
        token_file: Option<PathBuf>,
    ) -> Self {
        let token = token_file.map(TokenSource::File).or_else(|| {
            std::env::var(TOKEN_ENV)
                .ok()
                .filter(|t| !t.trim().is_empty())
                .map(TokenSource::Value)
        });
        Self {
            tls_ca,
            tls_cert,
            tls_key,
            token,
        }
    }

    /// The TLS config for `url`: `Some` for `https://`, `None` for `http://` (where TLS
    /// files are an error rather than silently unused).
    pub(crate) fn tls_config(&self, url: &str) -> Result<Option<ClientTlsConfig>, ClientError> {
        let https = url.starts_with("https://");
        if !https {
            if self.tls_ca.is_some() || self.tls_cert.is_some() || self.tls_key.is_some() {
                return Err(bad(
                    "TLS files",
                    format!("{url} is plaintext; use an https:// URL to talk TLS"),
                ));
            }
            return Ok(None);
        }
        let mut config = ClientTlsConfig::new();
        config = match &self.tls_ca {
            Some(ca) => config.ca_certificate(Certificate::from_pem(read_tls(ca, "--tls-ca")?)),
            None => config.with_native_roots(),
        };
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                config = config.identity(Identity::from_pem(
                    read_tls(cert, "--tls-cert")?,
                    read_tls(key, "--tls-key")?,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(bad(
                    "client certificate",
                    "give both the certificate and its key".into(),
                ));
            }
        }
        Ok(Some(config))
    }

    /// Reads every file now, for each of `urls`: a missing or unreadable certificate, key
    /// or token stops a program before it starts anything, with the flag named.
    pub fn check(&self, urls: &[String]) -> Result<(), ClientError> {
        for url in urls {
            let Some(config) = self.tls_config(url)? else {
                continue;
            };
            self.check_tls_files()?;
            // What is left to refuse: a certificate and a key that do not fit together.
            Endpoint::from_static("https://localhost")
                .tls_config(config)
                .map_err(|e| {
                    bad(
                        "--tls-cert and --tls-key",
                        format!(
                            "the certificate and key do not fit together or are unusable \
                             (give the key of that certificate): {}",
                            error_chain(&e)
                        ),
                    )
                })?;
        }
        self.bearer().map(drop)
    }

    /// Parses the TLS files as the TLS stack will, so that a file holding no PEM
    /// certificate or key is an error naming its flag now, not a transport error at the
    /// first connect.
    fn check_tls_files(&self) -> Result<(), ClientError> {
        for (flag, path) in [("--tls-ca", &self.tls_ca), ("--tls-cert", &self.tls_cert)] {
            if let Some(path) = path {
                let pem = read_tls(path, flag)?;
                let certs = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(&format!("{flag} {}", path.display()), e.to_string()))?;
                if certs.is_empty() {
                    return Err(bad(
                        &format!("{flag} {}", path.display()),
                        "no PEM certificate in it".into(),
                    ));
                }
            }
        }
        if let Some(key) = &self.tls_key {
            PrivateKeyDer::from_pem_slice(&read_tls(key, "--tls-key")?).map_err(|e| {
                bad(
                    &format!("--tls-key {}", key.display()),
                    format!("no usable PEM private key in it ({e})"),
                )
            })?;
        }
        Ok(())
    }

    /// The interceptor that adds the token (read now) to every call.
    pub(crate) fn bearer(&self) -> Result<Bearer, ClientError> {
        let token = match &self.token {
            None => return Ok(Bearer(None)),
            Some(TokenSource::Value(t)) => t.trim().to_owned(),
            Some(TokenSource::File(path)) => {
                String::from_utf8(read(path, "--token-file", MAX_TOKEN_FILE)?)
                    .map_err(|_| {
                        bad(
                            &format!("--token-file {}", path.display()),
                            "not UTF-8".into(),
                        )
                    })?
                    .trim()
                    .to_owned()
            }
        };
        if token.is_empty() {
            return Err(bad("token", "empty".into()));
        }
        let value = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| bad("token", "has characters a header cannot carry".into()))?;
        Ok(Bearer(Some(value)))
    }
}

fn bad(what: &str, reason: String) -> ClientError {
    ClientError::Credentials {
        what: what.to_owned(),
        reason,
    }
}

/// Reads a credentials file: a regular file of at most `max_bytes` (never a device or a
/// FIFO, which would never end or block), else an error naming it as `what PATH`.
fn read(path: &Path, what: &str, max_bytes: u64) -> Result<Vec<u8>, ClientError> {
    sys_limits::read_small_file(path, max_bytes)
        .map_err(|e| bad(&format!("{what} {}", path.display()), e.to_string()))
}

/// Reads the TLS file given by `flag`.
fn read_tls(path: &Path, flag: &str) -> Result<Vec<u8>, ClientError> {
    read(path, flag, MAX_TLS_FILE)
}

/// Adds `authorization: Bearer TOKEN` to every call (nothing without a token).
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}
