//! A dispatcher's `tls:` block against an order service that speaks HTTPS with a private CA
//! and asks for client certificates (mutual TLS): calls trust `ca_file` and present
//! `cert_file`; a renewed client certificate is presented without a restart; a file that
//! does not load stops the dispatcher with the file named; a certificate without its key is
//! refused by `validate` with its line.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use switchyard::app::Role;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;

/// A private CA that signs the order service's certificate and the dispatcher's (and, in
/// `ingress_https`, the clients' of the listener).
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub(crate) fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca { issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap() }
    }

    pub(crate) fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `name`, signed by the CA: (certificate PEM, key PEM, certificate DER).
    pub(crate) fn sign(&self, name: &str) -> (String, String, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_owned()]).unwrap().signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }
}

/// Each call the service took: its path, and the client certificate (DER) it came with.
type Calls = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// An order service on HTTPS that only takes clients with a certificate of `ca`; it records
/// the path of each call and the client certificate it came with.
struct MutualTlsService {
    addr: SocketAddr,
    calls: Calls,
}

async fn mutual_tls_service(ca: &Ca) -> MutualTlsService {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.issuer.der().clone()).unwrap();
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().unwrap();
    let (cert, key, _) = ca.sign("127.0.0.1");
    let chain = vec![rustls::pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let calls: Calls = Arc::default();
    let log = calls.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let (acceptor, log) = (acceptor.clone(), log.clone());
            tokio::spawn(async move {
                // A client without a certificate of the CA fails here.
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let presented = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
                let presented = presented.unwrap_or_default();
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    log.lock().unwrap().push((req.uri().path().to_owned(), presented.clone()));
                    async { Ok::<_, std::convert::Infallible>(hyper::Response::new(String::from("{}"))) }
                });
                let io = hyper_util::rt::TokioIo::new(tls);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    MutualTlsService { addr, calls }
}

/// The shipped routes with the order service at `service` and the dispatcher's `tls:` block
/// pointing at `ca.pem`, `client.pem` and `client.key` in the config's folder.
fn routes_with_tls() -> (tempfile::TempDir, std::path::PathBuf) {
    shipped_with(&[(
        "    max_in_flight: 64\n",
        "    max_in_flight: 64\n    tls: { ca_file: ca.pem, cert_file: client.pem, key_file: client.key }\n",
    )])
}

fn write_client(dir: &Path, ca: &Ca) -> Vec<u8> {
    let (cert, key, der) = ca.sign("switchyard-dispatcher");
    std::fs::write(dir.join("client.pem"), cert).unwrap();
    std::fs::write(dir.join("client.key"), key).unwrap();
    der
}

async fn start_dispatching(config: &Path, service: &MutualTlsService) -> Gateway {
    let url = format!("https://{}", service.addr);
    let group = unique("group");
    let env = [("ORDER_SERVICE_URL", url.as_str()), ("DISPATCH_GROUP", group.as_str())];
    start_with(config, Role::All, &unique("payments"), &env).await
}

/// Posts a paid checkout for `order` and waits until the service saw `calls` calls in all.
async fn pay_and_wait(gw: &Gateway, service: &MutualTlsService, order: &str, calls: usize) {
    let doc = checkout(|d| d["data"]["object"]["metadata"]["order_id"] = order.into());
    let res = post_signed(&gw.url("/webhooks/stripe"), &serde_json::to_vec(&doc).unwrap()).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let deadline = Instant::now() + Duration::from_secs(20);
    while service.calls.lock().unwrap().len() < calls {
        assert!(Instant::now() < deadline, "the order service saw {:?}", service.calls.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_trust_the_ca_file_present_the_client_certificate_and_follow_its_renewal() {
    let ca = Ca::new();
    let service = mutual_tls_service(&ca).await;
    let (dir, config) = routes_with_tls();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    let first = write_client(dir.path(), &ca);
    let gw = start_dispatching(&config, &service).await;

    pay_and_wait(&gw, &service, "1001", 1).await;
    assert_eq!(service.calls.lock().unwrap()[0], ("/orders/1001".to_owned(), first.clone()));
    // When the client certificate and the CA it trusts expire, for alerts.
    let metrics = switchyard::metrics::render();
    for certificate in ["dispatcher order_service", "dispatcher order_service ca"] {
        let series = format!("switchyard_tls_certificate_expiry_timestamp_seconds{{certificate=\"{certificate}\"}} ");
        assert!(metrics.lines().any(|l| l.starts_with(&series)), "no {series}in\n{metrics}");
    }

    // Renewed in place: the next calls present the new certificate, with no restart.
    let second = write_client(dir.path(), &ca);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut order = 2000;
    loop {
        let seen = service.calls.lock().unwrap().len();
        pay_and_wait(&gw, &service, &order.to_string(), seen + 1).await;
        let (path, presented) = service.calls.lock().unwrap().last().cloned().unwrap();
        assert_eq!(path, format!("/orders/{order}"));
        if presented == second {
            break;
        }
        assert_eq!(presented, first, "only the old or the new certificate");
        assert!(Instant::now() < deadline, "the renewed client certificate was never presented");
        tokio::time::sleep(Duration::from_millis(300)).await;
        order += 1;
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_key_that_is_not_the_certificates_stops_the_dispatcher_with_the_files_named() {
    let ca = Ca::new();
    let service = mutual_tls_service(&ca).await;
    let (dir, config) = routes_with_tls();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    write_client(dir.path(), &ca);
    let (_, other_key, _) = ca.sign("someone-else");
    std::fs::write(dir.path().join("client.key"), other_key).unwrap();
    let mut gw = start_dispatching(&config, &service).await;
    let running = gw.running.take().unwrap();
    let error = tokio::time::timeout(Duration::from_secs(20), running.wait()).await.expect("the process stops");
    let error = switchyard::text::error_chain(error.expect_err("it fails").as_ref());
    let (key, cert) = (dir.path().join("client.key"), dir.path().join("client.pem"));
    let expected = format!(
        "dispatcher order_service: the dispatcher's tls: the private key in {} does not belong to the certificate in {}",
        key.display(),
        cert.display()
    );
    assert!(error.starts_with(&expected), "{error}");
}

#[test]
fn a_client_certificate_without_its_key_is_refused_with_its_line() {
    let (_dir, config) =
        shipped_with(&[("    max_in_flight: 64\n", "    max_in_flight: 64\n    tls: { cert_file: client.pem }\n")]);
    let out = switchyard_command(&["validate", "-c", config.to_str().unwrap()], &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .contains("routes.yaml:103:10: 'cert_file' and 'key_file' go together: a client certificate needs its key"),
        "{stdout}"
    );
}
