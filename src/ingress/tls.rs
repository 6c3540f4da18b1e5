//! HTTPS on the listener: the certificate chain and private key come from PEM files
//! (`--tls-cert`, `--tls-key`) and are read again on SIGHUP or when either file changes, so a
//! renewed certificate is served without a restart (connections already open keep theirs).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::reload::Triggers;
use crate::shutdown::Shutdown;

/// Where the listener's certificate chain and private key are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the server's certificate first, then the intermediates.
    pub cert: PathBuf,
    /// PEM: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: PathBuf,
}

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
        let key = certified_key(&files, &provider)?;
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
        let key = certified_key(&self.files, &self.provider)?;
        let changed = key.cert != self.current.0.load().cert;
        if changed {
            self.current.0.store(Arc::new(key));
        }
        Ok(changed)
    }
}

fn certified_key(files: &TlsFiles, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let chain: Vec<_> = read_pem(&files.cert, "certificate", |text| CertificateDer::pem_slice_iter(text).collect())?;
    if chain.is_empty() {
        bail!("{}: no PEM certificate in it", files.cert.display());
    }
    let key = read_pem(&files.key, "private key (PKCS#8, PKCS#1 or SEC1)", PrivateKeyDer::from_pem_slice)?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => anyhow::anyhow!(
            "the private key in {} does not belong to the certificate in {} (the server's certificate must come first)",
            files.key.display(),
            files.cert.display()
        ),
        e => anyhow::anyhow!("{} and {}: {e}", files.cert.display(), files.key.display()),
    })
}

/// Reads `path` and parses it with `parse`; an error names the file and never quotes it.
fn read_pem<T>(path: &Path, what: &str, parse: impl FnOnce(&[u8]) -> Result<T, pem::Error>) -> anyhow::Result<T> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&text).map_err(|e| {
        let why = match e {
            pem::Error::NoItemsFound => format!("no PEM {what} in it"),
            pem::Error::MissingSectionEnd { .. } => "not valid PEM: a section has no END line".to_owned(),
            pem::Error::IllegalSectionStart { .. } => "not valid PEM: a malformed BEGIN line".to_owned(),
            e => format!("not valid PEM: {e}"),
        };
        anyhow::anyhow!("{}: {why}", path.display())
    })
}

/// Reloads `tls` on SIGHUP and when either file changes (or the `..data` symlink beside them,
/// which a Kubernetes secret volume swaps to update them at once), until `shutdown`.
pub async fn watch(tls: Arc<Tls>, shutdown: Shutdown) {
    // The files themselves, and the `..data` symlink a Kubernetes secret volume swaps.
    let files = [&tls.files.cert, &tls.files.key];
    let names: Vec<std::ffi::OsString> = files.iter().filter_map(|f| f.file_name().map(|n| n.to_owned())).collect();
    let ours = move |path: &Path| {
        path.file_name().is_some_and(|n| names.iter().any(|m| m == n) || n.as_encoded_bytes().starts_with(b".."))
    };
    let mut folders: Vec<(PathBuf, bool)> = files.iter().map(|f| (folder(f).to_path_buf(), false)).collect();
    folders.dedup();
    let mut triggers = Triggers::new(&folders, ours, "TLS file changes");
    // The last refusal logged: the same one again is not logged twice.
    let mut refused: Option<String> = None;
    loop {
        let mut why = tokio::select! {
            why = triggers.next() => match why { Some(w) => w, None => return },
            _ = shutdown.wait() => return,
        };
        // A renewal may write the certificate and the key one after the other: read them once
        // they have been quiet for a second (a SIGHUP reads them at once).
        loop {
            let settle = if why == "SIGHUP" { Duration::from_millis(50) } else { Duration::from_secs(1) };
            tokio::time::sleep(settle).await;
            let (more, sighup) = triggers.drain();
            if sighup {
                why = "SIGHUP";
            }
            if !more || sighup {
                break;
            }
        }
        let reloading = tls.clone();
        match tokio::task::spawn_blocking(move || reloading.reload()).await {
            Ok(Ok(changed)) => {
                refused = None;
                if changed {
                    tracing::info!(trigger = why, "TLS certificate reloaded");
                } else {
                    tracing::debug!(trigger = why, "TLS certificate unchanged");
                }
            }
            Ok(Err(e)) => {
                let error = crate::text::error_chain(e.as_ref());
                if why == "SIGHUP" || refused.as_ref() != Some(&error) {
                    tracing::error!(
                        trigger = why,
                        error,
                        "TLS certificate reload refused: still serving the previous one"
                    );
                    refused = Some(error);
                }
            }
            Err(e) => tracing::error!(error = %e, "TLS certificate reload failed"),
        }
    }
}

fn folder(file: &Path) -> &Path {
    file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}
