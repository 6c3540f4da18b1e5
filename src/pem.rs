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
    let text = crate::files::read(path).with_context(|| format!("cannot read {}", path.display()))?;
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

/// The earliest expiry (`notAfter`, Unix seconds) of the certificates in `certs`: when the
/// chain (or the first of a bundle's CAs) stops being valid. `None` when none parses.
pub fn expires(certs: &[CertificateDer<'_>]) -> Option<i64> {
    certs
        .iter()
        .filter_map(|c| x509_parser::parse_x509_certificate(c).ok())
        .map(|(_, cert)| cert.validity().not_after.timestamp())
        .min()
}

/// Records when the certificates of `what` (`listener`, `client_ca`, `dispatcher <name>`) in
/// `file` expire, and warns when that is within 30 days (or past).
pub fn record_expiry(what: &str, file: &Path, certs: &[CertificateDer<'_>]) {
    let Some(at) = expires(certs) else { return };
    crate::metrics::certificate_expiry(what, at);
    let days = (at - crate::ingress::unix_now()) / 86_400;
    if days < 30 {
        tracing::warn!(certificate = what, file = %file.display(), days, "a certificate expires within 30 days");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(not_after: (i32, u8, u8)) -> CertificateDer<'static> {
        let mut params = rcgen::CertificateParams::new(vec!["gateway.test".to_owned()]).unwrap();
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn a_chain_expires_with_its_first_certificate_to_expire() {
        let (leaf, intermediate) = (certificate((2027, 3, 1)), certificate((2026, 12, 24)));
        // 2027-03-01T00:00:00Z and 2026-12-24T00:00:00Z.
        assert_eq!(expires(std::slice::from_ref(&leaf)), Some(1_803_859_200));
        assert_eq!(expires(&[leaf, intermediate]), Some(1_798_070_400));
        assert_eq!(expires(&[CertificateDer::from(vec![0x30, 0x00])]), None);
        assert_eq!(expires(&[]), None);
    }
}
