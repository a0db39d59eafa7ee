//! Who a client is under mTLS: the node names its verified certificate carries, read by the
//! rule of `--node-identity` (DNS SANs, the common name, or URI SANs under a prefix).

use std::{fmt, str::FromStr, sync::Arc};

use rustls_pki_types::{CertificateDer, UnixTime};
use tokio_rustls::rustls::{self, server::danger::ClientCertVerifier};
use x509_parser::{certificate::X509Certificate, extensions::GeneralName};

/// How a client certificate names its node (`--node-identity`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NodeIdentity {
    /// The DNS SANs, or else the common name (the default).
    #[default]
    DnsElseCn,
    /// The DNS SANs only.
    Dns,
    /// The common name only.
    Cn,
    /// The URI SANs that start with this prefix; the rest of the URI is the node name
    /// (`spiffe://cluster/node/` takes `spiffe://cluster/node/web-1` as `web-1`).
    UriPrefix(String),
}

impl FromStr for NodeIdentity {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "dns" => Ok(Self::Dns),
            "cn" => Ok(Self::Cn),
            _ => match text.strip_prefix("uri-prefix=") {
                Some(prefix) if !prefix.is_empty() => Ok(Self::UriPrefix(prefix.to_owned())),
                _ => Err(format!(
                    "{text:?}: use dns, cn or uri-prefix=PREFIX (e.g. uri-prefix=spiffe://cluster/node/)"
                )),
            },
        }
    }
}

impl fmt::Display for NodeIdentity {
    /// Where the rule looks, for statuses and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DnsElseCn => write!(f, "a DNS SAN, or else the common name"),
            Self::Dns => write!(f, "a DNS SAN (--node-identity dns)"),
            Self::Cn => write!(f, "the common name (--node-identity cn)"),
            Self::UriPrefix(p) => write!(f, "a URI SAN starting with {p} (--node-identity)"),
        }
    }
}

impl NodeIdentity {
    /// The node names in `cert` by this rule; empty names are none.
    fn names(&self, cert: &X509Certificate<'_>) -> Vec<String> {
        let sans: &[GeneralName<'_>] = match cert.subject_alternative_name() {
            Ok(Some(san)) => {
                let san: &x509_parser::extensions::SubjectAlternativeName<'_> = san.value;
                &san.general_names
            }
            _ => &[],
        };
        let dns = || -> Vec<String> {
            sans.iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect()
        };
        let cn = || -> Vec<String> {
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
                .collect()
        };
        let names = match self {
            Self::DnsElseCn => Some(dns()).filter(|d| !d.is_empty()).unwrap_or_else(cn),
            Self::Dns => dns(),
            Self::Cn => cn(),
            Self::UriPrefix(prefix) => sans
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(uri) => uri.strip_prefix(prefix.as_str()).map(str::to_owned),
                    _ => None,
                })
                .collect(),
        };
        names.into_iter().filter(|n| !n.is_empty()).collect()
    }
}

/// The nodes a verified client certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    names: Vec<String>,
}

impl PeerIdentity {
    /// Whether this client may speak for `node`.
    pub fn allows(&self, node: &str) -> bool {
        self.names.iter().any(|n| n == node)
    }

    /// The names, comma-separated, for logs and statuses.
    pub fn describe(&self) -> String {
        self.names.join(", ")
    }
}

/// A connection's client certificate chain (leaf first), kept to check it again against the
/// client CA in force at each call, and the node it names.
#[derive(Debug)]
pub struct ClientCert {
    chain: Vec<CertificateDer<'static>>,
    /// `None` when the certificate names no node by the rule.
    pub identity: Option<Arc<PeerIdentity>>,
}

impl ClientCert {
    /// The chain a TLS handshake verified; `None` without one.
    pub fn new(chain: &[CertificateDer<'_>], rule: &NodeIdentity) -> Option<Self> {
        let leaf = chain.first()?;
        let identity = x509_parser::parse_x509_certificate(leaf)
            .ok()
            .map(|(_, cert)| rule.names(&cert))
            .filter(|names| !names.is_empty())
            .map(|names| Arc::new(PeerIdentity { names }));
        Some(Self {
            chain: chain.iter().map(|c| c.clone().into_owned()).collect(),
            identity,
        })
    }

    /// Checks the chain against `verifier` (the client CA in force now), at the time now.
    pub fn verify(&self, verifier: &dyn ClientCertVerifier) -> Result<(), rustls::Error> {
        let (leaf, intermediates) = self
            .chain
            .split_first()
            .expect("a client certificate chain has a leaf");
        verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_as_spelled() {
        assert_eq!("dns".parse(), Ok(NodeIdentity::Dns));
        assert_eq!("cn".parse(), Ok(NodeIdentity::Cn));
        assert_eq!(
            "uri-prefix=spiffe://cluster/node/".parse(),
            Ok(NodeIdentity::UriPrefix("spiffe://cluster/node/".into()))
        );
        for bad in ["uri-prefix=", "DNS", "uri", ""] {
            let e = bad.parse::<NodeIdentity>().unwrap_err();
            assert!(e.contains("use dns, cn or uri-prefix=PREFIX"), "{e}");
        }
    }
}
