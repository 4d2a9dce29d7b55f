//! rustls client configuration, shared by the IMAP source and the SMTP sender.
//!
//! Only the `ring` provider is compiled in. Configs name their provider explicitly
//! (`builder_with_provider`), so nothing relies on a process-wide default provider, which
//! would panic if a dependency ever enabled a second one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

/// True for `localhost` and loopback IP literals: the only hosts plaintext is allowed to.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    h.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// Why a TLS client configuration could not be built. Always a setup problem, never transient.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read CA file {}: {cause}", path.display())]
    ReadCaFile {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("CA file {}: not valid PEM: {detail}", path.display())]
    Pem { path: PathBuf, detail: String },
    #[error("CA file {} holds no certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("CA file {}: certificate rejected: {cause}", path.display())]
    BadCertificate { path: PathBuf, cause: rustls::Error },
    #[error("no trusted root certificate: the system store is empty and no CA file is configured")]
    NoRoots,
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
    #[error("{name:?} is not a valid TLS server name (DNS name or IP address)")]
    ServerName { name: String },
}

/// A client config trusting the system roots plus every certificate in `ca_file`.
///
/// Unreadable entries in the system store are skipped (logged at debug): one broken file
/// in `/etc/ssl/certs` must not take the daemon down. A configured CA file, on the other
/// hand, must be fully valid, because the admin asked for it explicitly.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = system_roots();
    if let Some(path) = ca_file {
        add_ca_file(&mut roots, path)?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoRoots);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The name a server's certificate is checked against. IP literals (also `[::1]`) work.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare)
        .map(|name| name.to_owned())
        .map_err(|_| TlsError::ServerName {
            name: host.to_owned(),
        })
}

fn system_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for err in &found.errors {
        tracing::debug!(error = %err, "skipping unreadable system certificate");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    tracing::debug!(added, ignored, "loaded system root certificates");
    roots
}

fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::ReadCaFile {
        path: path.to_owned(),
        cause: source,
    })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    for cert in certs {
        roots.add(cert).map_err(|source| TlsError::BadCertificate {
            path: path.to_owned(),
            cause: source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_name_accepts_dns_names_and_ip_literals() {
        assert!(matches!(
            server_name("mail.example.com"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(server_name("[::1]"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(
            server_name("bad name"),
            Err(TlsError::ServerName { .. })
        ));
    }

    #[test]
    fn missing_ca_file_is_named_in_the_error() {
        let err = client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "no pem here\n").unwrap();
        let err = client_config(Some(&path)).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
    }
}
