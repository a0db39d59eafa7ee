//! Where a replica's connections go: the `postgres://` URL parsed once, TLS where the URL
//! asks for it (`sslmode=require` or `prefer`, always verified; `sslrootcert=FILE` names
//! the CA, else the system's roots; no `sslmode` is plaintext), the replica's name on every connection, and open errors that say what to do.

use std::{str::FromStr, sync::Arc, time::Duration};

use postgres::{Client, Config, config::SslMode, error::SqlState};
use rustls_pki_types::{CertificateDer, pem::PemObject};
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use crate::store::{Result, StoreError};

/// Prefix of the `application_name` of every connection of a hub replica; the rest is the
/// replica's id, so that the others can tell which replicas are alive.
pub const APPLICATION_PREFIX: &str = "tapper-hub ";

/// A parsed database URL and this replica's identity.
#[derive(Clone)]
pub struct Database {
    config: Config,
    tls: MakeRustlsConnect,
    /// This hub process's replica id (unique per start).
    pub replica: String,
}

/// Whether `db` names a PostgreSQL database rather than a SQLite file.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// `url` with its password masked, for logs and errors.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

fn open_error(message: String) -> StoreError {
    StoreError::Engine {
        engine: "postgres",
        source: message.into(),
    }
}

/// Takes `sslrootcert=FILE` out of the URL's query (the client library does not know it).
fn split_root_cert(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut root = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("sslrootcert=") {
            Some(file) => {
                root = Some(file.to_owned());
                false
            }
            None => true,
        })
        .collect();
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, root)
}

fn tls_config(root_cert: Option<&str>) -> Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        Some(file) => {
            let certs = CertificateDer::pem_file_iter(file)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| open_error(format!("sslrootcert {file:?}: {e}")))?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| open_error(format!("sslrootcert {file:?}: {e}")))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| open_error(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Database {
    /// Parses `url` (`postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=require&...`).
    pub fn parse(url: &str) -> Result<Self> {
        let (url, root_cert) = split_root_cert(url);
        let mut config = Config::from_str(&url).map_err(|e| {
            open_error(format!(
                "not a valid PostgreSQL URL ({e}); expected \
                 postgres://USER:PASSWORD@HOST:PORT/DATABASE[?sslmode=require&sslrootcert=FILE]"
            ))
        })?;
        if config.get_hosts().is_empty() {
            return Err(open_error(
                "the URL names no host; expected postgres://USER:PASSWORD@HOST:PORT/DATABASE"
                    .into(),
            ));
        }
        if !url.contains("sslmode=") {
            // TLS only where the URL asks for it (libpq would try it, unverified).
            config.ssl_mode(SslMode::Disable);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.keepalives_idle(Duration::from_secs(30));
        let replica = format!(
            "{:x}-{}",
            crate::util::clock::now_ns() as u64 & 0xffff_ffff_ffff,
            std::process::id()
        );
        config.application_name(&format!("{APPLICATION_PREFIX}{replica}"));
        let tls = MakeRustlsConnect::new(tls_config(root_cert.as_deref())?);
        Ok(Self {
            config,
            tls,
            replica,
        })
    }

    /// A new connection; its errors are for retrying (see [`Self::open`] for the first).
    pub fn connect(&self) -> std::result::Result<Client, postgres::Error> {
        self.config.connect(self.tls.clone())
    }

    /// The first connection of a hub: its failure says what to fix.
    pub fn open(&self) -> Result<Client> {
        self.connect().map_err(|e| self.explain(&e))
    }

    fn explain(&self, e: &postgres::Error) -> StoreError {
        let user = self.config.get_user().unwrap_or("(none)");
        let dbname = self.config.get_dbname().unwrap_or(user);
        let message = match e.code() {
            Some(c)
                if *c == SqlState::INVALID_PASSWORD
                    || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
            {
                format!(
                    "the database refused the login of user {user:?} ({e}): check the user \
                     and password in the URL"
                )
            }
            Some(c) if *c == SqlState::INVALID_CATALOG_NAME => format!(
                "database {dbname:?} does not exist: create it (createdb {dbname}) or fix \
                 the URL's database name"
            ),
            Some(_) => format!("{e}"),
            None => {
                let source =
                    std::error::Error::source(e).map_or_else(|| e.to_string(), |s| s.to_string());
                format!(
                    "cannot reach PostgreSQL at {} ({source}): is it running and listening \
                     there, and are the URL's host, port and sslmode right?",
                    self.host_port()
                )
            }
        };
        open_error(message)
    }

    fn host_port(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => String::new(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_and_root_certs_taken_out() {
        assert_eq!(
            redact("postgres://hub:s3cret@db:5432/hub"),
            "postgres://hub:***@db:5432/hub"
        );
        assert_eq!(redact("postgres://db/hub"), "postgres://db/hub");
        assert_eq!(
            split_root_cert("postgresql://h/d?sslmode=require&sslrootcert=/ca.pem"),
            (
                "postgresql://h/d?sslmode=require".to_owned(),
                Some("/ca.pem".to_owned())
            )
        );
        assert!(is_url("postgresql://h/d") && !is_url("hub.db") && !is_url(":memory:"));
    }

    #[test]
    fn bad_urls_say_what_is_expected() {
        for bad in ["postgres://h:notaport/d", "postgres:///d"] {
            let e = Database::parse(bad).err().expect(bad).to_string();
            assert!(
                e.contains("postgres://USER:PASSWORD@HOST:PORT/DATABASE"),
                "{e}"
            );
        }
    }
}
