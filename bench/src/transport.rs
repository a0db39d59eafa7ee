//! Plaintext or TLS between the benchmark's clients and the hub: the hub's flags and the
//! clients' credentials for each, so that a part can measure both side by side.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use hub_client::Credentials;
use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// `http://`: HTTP/2 in the clear.
    #[default]
    Plaintext,
    /// `https://`: TLS (rustls), the hub's certificate checked against the CA.
    Tls,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plaintext => "plaintext",
            Self::Tls => "TLS",
        })
    }
}

/// The transports to measure, and the certificates TLS needs.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Transports")]
pub struct Transports {
    /// Transports measured side by side, interleaved (`tls` needs the three files below).
    #[arg(long = "transports", value_enum, value_delimiter = ',',
          default_values_t = [Transport::Plaintext])]
    pub list: Vec<Transport>,
    /// The CA certificate (PEM) that signed --tls-cert.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// The hub's certificate (PEM), valid for 127.0.0.1.
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
}

/// The certificate files of a TLS hub.
struct Pki<'a> {
    ca: &'a Path,
    cert: &'a Path,
    key: &'a Path,
}

impl Transports {
    /// Checks that TLS, where measured, has its three files, and that some transport is.
    pub fn check(&self) -> Result<()> {
        let files = [&self.tls_ca, &self.tls_cert, &self.tls_key];
        if files.iter().any(|f| f.is_some()) && self.pki().is_none() {
            bail!("give all of --tls-ca, --tls-cert and --tls-key, or none");
        }
        if self.list.contains(&Transport::Tls) && self.pki().is_none() {
            bail!(
                "--transports tls needs --tls-ca, --tls-cert and --tls-key \
                 (scripts/bench.sh makes them with openssl)"
            );
        }
        if self.list.is_empty() {
            bail!("--transports names none");
        }
        Ok(())
    }

    fn pki(&self) -> Option<Pki<'_>> {
        Some(Pki {
            ca: self.tls_ca.as_deref()?,
            cert: self.tls_cert.as_deref()?,
            key: self.tls_key.as_deref()?,
        })
    }

    /// The hub's flags for `t`.
    pub fn hub_flags(&self, t: Transport) -> Vec<String> {
        match (t, self.pki()) {
            (Transport::Tls, Some(p)) => vec![
                "--tls-cert".into(),
                p.cert.display().to_string(),
                "--tls-key".into(),
                p.key.display().to_string(),
            ],
            _ => Vec::new(),
        }
    }

    /// The tapper's flags for a hub reached over `t`.
    pub fn tapper_flags(&self, t: Transport) -> Vec<String> {
        match (t, self.pki()) {
            (Transport::Tls, Some(p)) => vec!["--tls-ca".into(), p.ca.display().to_string()],
            _ => Vec::new(),
        }
    }

    /// A hub-client's credentials over `t`.
    pub fn credentials(&self, t: Transport) -> Credentials {
        match (t, self.pki()) {
            (Transport::Tls, Some(p)) => Credentials {
                tls_ca: Some(p.ca.to_path_buf()),
                ..Default::default()
            },
            _ => Credentials::default(),
        }
    }
}
