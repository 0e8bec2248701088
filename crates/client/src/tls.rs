//! TLS for `wss://` and `https://`: rustls with the system's trusted roots (which honour
//! `SSL_CERT_FILE` and `SSL_CERT_DIR`) plus any roots the app adds, e.g. a private CA or a
//! self-signed development certificate. One config serves the WebSocket and the HTTP calls, so
//! both trust the same servers.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::{Error, Result};

/// Which servers the SDK trusts over TLS: the system's roots and those added here.
///
/// ```rust,no_run
/// # fn main() -> montage_client::Result<()> {
/// let tls = montage_client::Tls::system().add_ca_file("dev-ca.pem")?;
/// let opts = montage_client::Options::new("wss://montage.example:7443/v1/ws", "TOKEN").tls(tls);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Tls {
    extra: Vec<CertificateDer<'static>>,
}

impl Tls {
    /// The system's trusted roots only (the default).
    pub fn system() -> Tls {
        Tls::default()
    }

    /// Also trusts the certificates in `pem` (one or more `BEGIN CERTIFICATE` blocks).
    pub fn add_ca_pem(mut self, pem: &[u8]) -> Result<Tls> {
        let before = self.extra.len();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| Error::Tls(format!("a CA certificate: {e}")))?;
            self.extra.push(cert);
        }
        if self.extra.len() == before {
            return Err(Error::Tls("no PEM certificate found".into()));
        }
        Ok(self)
    }

    /// Also trusts the certificates in the PEM file at `path`.
    pub fn add_ca_file(self, path: impl AsRef<Path>) -> Result<Tls> {
        let path = path.as_ref();
        let pem = std::fs::read(path)
            .map_err(|e| Error::Tls(format!("reading {}: {e}", path.display())))?;
        self.add_ca_pem(&pem)
            .map_err(|e| Error::Tls(format!("{}: {e}", path.display())))
    }

    /// The rustls client config: system roots (unreadable ones are skipped and logged) plus the
    /// added ones, aws-lc-rs as the crypto provider.
    pub(crate) fn config(&self) -> Result<Arc<rustls::ClientConfig>> {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::debug!(error = %e, "a system certificate store could not be read");
        }
        let (_, skipped) = roots.add_parsable_certificates(native.certs);
        if skipped > 0 {
            tracing::debug!(skipped, "system root certificates rustls could not parse");
        }
        for cert in &self.extra {
            roots
                .add(cert.clone())
                .map_err(|e| Error::Tls(format!("an added CA certificate: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}
