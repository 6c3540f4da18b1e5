//! PEM files: certificate chains and private keys for TLS (the listener's certificate, a
//! dispatcher's CA and client certificate), read with errors that name the file and never
//! quote it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// A certificate chain and its private key, as two files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the certificate first, then the intermediates.
    pub cert: PathBuf,
    /// PEM: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: PathBuf,
}

/// Every certificate in `path`: at least one.
pub fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain: Vec<_> = read(path, "certificate", |text| CertificateDer::pem_slice_iter(text).collect())?;
    if chain.is_empty() {
        bail!("{}: no PEM certificate in it", path.display());
    }
    Ok(chain)
}

/// The certificate chain and key of `files`, checked to belong together.
pub fn certified_key(files: &TlsFiles, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let chain = certificates(&files.cert)?;
    let key = read(&files.key, "private key (PKCS#8, PKCS#1 or SEC1)", PrivateKeyDer::from_pem_slice)?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => anyhow::anyhow!(
            "the private key in {} does not belong to the certificate in {} (whose own certificate must come first)",
            files.key.display(),
            files.cert.display()
        ),
        rustls::Error::InvalidCertificate(e) if format!("{e:?}").contains("UnsupportedCertVersion") => anyhow::anyhow!(
            "{}: an X.509 version 1 certificate, which rustls does not take: issue it as version 3 \
             (`openssl x509 -req` makes version 3 when -extfile gives it an extension)",
            files.cert.display()
        ),
        rustls::Error::InvalidCertificate(e) => {
            anyhow::anyhow!("{}: the certificate cannot be used: {e}", files.cert.display())
        }
        e => anyhow::anyhow!("{} and {}: {e}", files.cert.display(), files.key.display()),
    })
}

/// Reads `path` and parses it with `parse`; an error names the file and never quotes it.
fn read<T>(path: &Path, what: &str, parse: impl FnOnce(&[u8]) -> Result<T, pem::Error>) -> anyhow::Result<T> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&text).map_err(|e| {
        let why = match e {
            pem::Error::NoItemsFound if text.windows(9).any(|w| w == b"ENCRYPTED") => {
                format!("the {what} is encrypted, and Switchyard asks for no passphrase: decrypt it into a file only it reads (`openssl pkey -in KEY -out KEY.plain`)")
            }
            pem::Error::NoItemsFound => format!("no PEM {what} in it"),
            pem::Error::MissingSectionEnd { .. } => "not valid PEM: a section has no END line".to_owned(),
            pem::Error::IllegalSectionStart { .. } => "not valid PEM: a malformed BEGIN line".to_owned(),
            e => format!("not valid PEM: {e}"),
        };
        anyhow::anyhow!("{}: {why}", path.display())
    })
}

/// The folder of `file`, for watching it (`.` for a bare file name).
pub fn folder(file: &Path) -> &Path {
    file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}
