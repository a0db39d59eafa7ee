//! Plaintext or TLS between the benchmark's clients and the hub: the hub's flags and the
//! clients' credentials for each, so that a part can measure both side by side.

use std::{fmt, path::PathBuf};

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
pub struct TransportArgs {
    /// Transports measured side by side, interleaved (`tls` needs the three files below).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Transport::Plaintext])]
    pub transports: Vec<Transport>,
    /// The CA certificate (PEM) that signed --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// The hub's certificate (PEM), valid for 127.0.0.1.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

/// The certificate files of a TLS hub.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Validated transports.
#[derive(Debug, Clone)]
pub struct Transports {
    pub list: Vec<Transport>,
    pki: Option<Pki>,
}

impl TransportArgs {
    pub fn validate(self) -> Result<Transports> {
        let pki = match (self.tls_ca, self.tls_cert, self.tls_key) {
            (Some(ca), Some(cert), Some(key)) => Some(Pki { ca, cert, key }),
            (None, None, None) => None,
            _ => bail!("give all of --tls-ca, --tls-cert and --tls-key, or none"),
        };
        if self.transports.contains(&Transport::Tls) && pki.is_none() {
            bail!(
                "--transports tls needs --tls-ca, --tls-cert and --tls-key \
                 (scripts/bench.sh makes them with openssl)"
            );
        }
        if self.transports.is_empty() {
            bail!("--transports names none");
        }
        Ok(Transports {
            list: self.transports,
            pki,
        })
    }
}

impl Transports {
    /// The hub's flags for `t`.
    pub fn hub_flags(&self, t: Transport) -> Vec<String> {
        match (t, &self.pki) {
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
        match (t, &self.pki) {
            (Transport::Tls, Some(p)) => vec!["--tls-ca".into(), p.ca.display().to_string()],
            _ => Vec::new(),
        }
    }

    /// A hub-client's credentials over `t`.
    pub fn credentials(&self, t: Transport) -> Credentials {
        match (t, &self.pki) {
            (Transport::Tls, Some(p)) => Credentials {
                tls_ca: Some(p.ca.clone()),
                ..Default::default()
            },
            _ => Credentials::default(),
        }
    }
}
