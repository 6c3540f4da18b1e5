//! HTTPS on the listener: the certificate chain and private key come from PEM files
//! (`--tls-cert`, `--tls-key`) and are read again on SIGHUP or when either file changes, so a
//! renewed certificate is served without a restart (connections already open keep theirs).

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::pem;
pub use crate::pem::TlsFiles;
use crate::shutdown::Shutdown;

/// The listener's TLS: what accepts connections, and the certificate it serves now.
pub struct Tls {
    pub acceptor: TlsAcceptor,
    current: Arc<Current>,
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
}

/// The certificate every handshake gets; swapped whole on reload.
#[derive(Debug)]
struct Current(ArcSwap<CertifiedKey>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

impl Tls {
    /// Reads the files; an error names the file and what is wrong with it.
    pub fn load(files: TlsFiles) -> anyhow::Result<Tls> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = pem::certified_key(&files, &provider)?;
        let current = Arc::new(Current(ArcSwap::from_pointee(key)));
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // HTTP/2 for clients that offer it (the server speaks both).
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls { acceptor: TlsAcceptor::from(Arc::new(config)), current, files, provider })
    }

    /// Reads the files again and serves what they hold from the next handshake on; `true`
    /// when the certificate chain changed. On an error the previous certificate stays.
    pub fn reload(&self) -> anyhow::Result<bool> {
        let key = pem::certified_key(&self.files, &self.provider)?;
        let changed = key.cert != self.current.0.load().cert;
        if changed {
            self.current.0.store(Arc::new(key));
        }
        Ok(changed)
    }
}

/// Reloads `tls` on SIGHUP and when either file changes (or the `..data` symlink beside them,
/// which a Kubernetes secret volume swaps to update them at once), until `shutdown`.
pub async fn watch(tls: Arc<Tls>, shutdown: Shutdown) {
    let files = [tls.files.cert.clone(), tls.files.key.clone()];
    let reload = Arc::new(move || tls.reload());
    crate::reload::follow_files(&[&files[0], &files[1]], "TLS certificate", reload, shutdown).await
}
