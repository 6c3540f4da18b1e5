//! HTTPS on the listener: the certificate chain and private key come from PEM files
//! (`--tls-cert`, `--tls-key`) and are read again on SIGHUP or when either file changes, so a
//! renewed certificate is served without a restart (connections already open keep theirs).
//! With `--tls-client-ca`, clients may present a certificate that CA issued (mutual TLS); one
//! it did not issue fails the handshake, and a source with `require_client_certificate` takes
//! webhooks only from clients that presented one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::pem;
pub use crate::pem::TlsFiles;
use crate::shutdown::Shutdown;

/// The listener's TLS: how handshakes are made, and the certificate it serves now.
pub struct Tls {
    /// Rebuilt when the client CA file changes; each handshake takes the current one.
    config: ArcSwap<ServerConfig>,
    current: Arc<Current>,
    files: TlsFiles,
    client_ca: Option<PathBuf>,
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
    pub fn load(files: TlsFiles, client_ca: Option<PathBuf>) -> anyhow::Result<Tls> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = pem::certified_key(&files, &provider)?;
        pem::record_expiry("listener", &files.cert, &key.cert);
        let current = Arc::new(Current(ArcSwap::from_pointee(key)));
        let config = server_config(&provider, &current, client_ca.as_deref())?;
        Ok(Tls { config: ArcSwap::from_pointee(config), current, files, client_ca, provider })
    }

    /// What makes the next handshake.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.load_full())
    }

    /// Whether clients may present certificates (`--tls-client-ca`).
    pub fn checks_client_certificates(&self) -> bool {
        self.client_ca.is_some()
    }

    /// Reads the files again and serves what they hold from the next handshake on; `true`
    /// when the certificate chain changed. On an error the previous certificate (and client
    /// CA) stay.
    pub fn reload(&self) -> anyhow::Result<bool> {
        let key = pem::certified_key(&self.files, &self.provider)?;
        pem::record_expiry("listener", &self.files.cert, &key.cert);
        if let Some(ca) = &self.client_ca {
            self.config.store(Arc::new(server_config(&self.provider, &self.current, Some(ca))?));
        }
        let changed = key.cert != self.current.0.load().cert;
        if changed {
            self.current.0.store(Arc::new(key));
        }
        Ok(changed)
    }
}

/// The listener's rustls configuration: the current certificate; client certificates issued
/// by the CAs in `client_ca`, when given, optional (a source may require one).
fn server_config(
    provider: &Arc<CryptoProvider>,
    current: &Arc<Current>,
    client_ca: Option<&Path>,
) -> anyhow::Result<ServerConfig> {
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            let certs = pem::certificates(path)?;
            pem::record_expiry("client_ca", path, &certs);
            for cert in certs {
                roots.add(cert).with_context(|| format!("{}: a certificate in it cannot be a CA", path.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .with_context(|| format!("{}: cannot check client certificates with it", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(current.clone());
    // HTTP/2 for clients that offer it (the server speaks both).
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Reloads `tls` on SIGHUP and when either file changes (or the `..data` symlink beside them,
/// which a Kubernetes secret volume swaps to update them at once), until `shutdown`.
pub async fn watch(tls: Arc<Tls>, shutdown: Shutdown) {
    let mut files = vec![tls.files.cert.clone(), tls.files.key.clone()];
    files.extend(tls.client_ca.clone());
    let reload = Arc::new(move || tls.reload());
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    crate::reload::follow_files(&paths, "TLS certificate", reload, shutdown).await
}
