//! `switchyard health`: the container's probe of a running gateway's `/healthz`, over plain
//! HTTP, or over TLS when the gateway serves HTTPS (`SWITCHYARD_TLS_CERT` is set for both).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// What the probe found.
#[derive(Debug, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// Any other answer: its status line.
    Unhealthy(String),
    /// Plain HTTP was refused by an HTTPS listener.
    SpeaksHttps,
}

/// `GET /healthz` at `addr`, with 2 s for each step.
pub fn probe(addr: SocketAddr, tls: bool) -> std::io::Result<Health> {
    let addr = if addr.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], addr.port())) } else { addr };
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    if tls {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
        let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
        get_healthz(rustls::StreamOwned::new(conn, stream))
    } else {
        get_healthz(stream)
    }
}

fn get_healthz(mut stream: impl Read + Write) -> std::io::Result<Health> {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    // The answer is small and the connection closes after it.
    let mut answer = Vec::new();
    let read = stream.take(4096).read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next().unwrap_or_default();
    match read {
        _ if status.starts_with("HTTP/1.1 200") => Ok(Health::Healthy),
        _ if status.starts_with("HTTP/1.1 400") && answer.contains(r#""reason":"plain_http""#) => {
            Ok(Health::SpeaksHttps)
        }
        Err(e) if status.is_empty() => Err(e),
        _ if status.is_empty() => Ok(Health::Unhealthy("no answer".into())),
        _ => Ok(Health::Unhealthy(status.to_owned())),
    }
}

/// The probe asks its own process, on this machine, whether it is alive: whatever certificate
/// it serves (one for the public host name, maybe just renewed) will do. The handshake's
/// signatures are still checked, so this is TLS with the certificate's name unchecked.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
