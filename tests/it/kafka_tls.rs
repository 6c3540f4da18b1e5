//! Kafka over TLS, as managed Kafka services require (`security.protocol: SSL` or
//! `SASL_SSL` under `kafka.properties`): the ingress publishes and the dispatcher consumes
//! through a TLS listener, and the broker's certificate is verified against `ssl.ca.location`.
//!
//! librdkafka's mock cluster speaks plaintext only, so this binary puts a TLS-terminating
//! proxy in front of its own one-broker cluster and makes the broker advertise the proxy's
//! port: every connection the gateway makes, bootstrap and leader alike, goes through TLS.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::common::*;
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};
use switchyard::app::{self, AppConfig, Role};
use switchyard::shutdown::Shutdown;
use tokio_rustls::rustls;

/// The cluster, the proxy in front of it, and the certificate the proxy presents.
struct TlsBroker {
    /// Holds the mock cluster (it lives as long as this client).
    _cluster: BaseProducer,
    /// `127.0.0.1:<proxy port>`: what the broker advertises.
    bootstrap: String,
    /// The proxy's certificate, PEM (self-signed for `127.0.0.1` and `localhost`).
    cert_pem: String,
    /// TLS handshakes the proxy completed.
    handshakes: Arc<AtomicUsize>,
}

fn tls_broker() -> &'static TlsBroker {
    static BROKER: OnceLock<TlsBroker> = OnceLock::new();
    BROKER.get_or_init(|| {
        let cluster: BaseProducer = ClientConfig::new().set("test.mock.num.brokers", "1").create().unwrap();
        let plain = cluster.client().mock_cluster().expect("a mock cluster").bootstrap_servers();
        let key = rcgen::generate_simple_self_signed(["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let cert_pem = key.cert.pem();
        let server =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![key.cert.der().clone()],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into()),
                )
                .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counted = handshakes.clone();
        // The proxy gets a runtime of its own: every test's runtime ends with its test.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(proxy(listener, tokio_rustls::TlsAcceptor::from(Arc::new(server)), plain, counted));
        });
        let raw = unsafe { rdkafka_sys::rd_kafka_handle_mock_cluster(cluster.client().native_ptr()) };
        assert!(!raw.is_null());
        // SAFETY: `raw` is the live mock cluster of `cluster`, which this struct keeps alive.
        unsafe { rdkafka_sys::rd_kafka_mock_broker_set_host_port(raw, 1, c"127.0.0.1".as_ptr(), port.into()) };
        TlsBroker { _cluster: cluster, bootstrap: format!("127.0.0.1:{port}"), cert_pem, handshakes }
    })
}

/// Terminates TLS and forwards the bytes to the plaintext broker at `backend`.
async fn proxy(
    listener: std::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    backend: String,
    handshakes: Arc<AtomicUsize>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let (acceptor, backend, handshakes) = (acceptor.clone(), backend.clone(), handshakes.clone());
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(stream).await else { return };
            handshakes.fetch_add(1, Ordering::SeqCst);
            let Ok(mut plain) = tokio::net::TcpStream::connect(&backend).await else { return };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
        });
    }
}

/// The shipped routes in `role`, talking to the broker over TLS and trusting `ca_pem` only;
/// the order service is at `orders`.
async fn over_tls(role: Role, ca_pem: &str, orders: &str) -> (Gateway, [tempfile::TempDir; 2]) {
    init_logs();
    let broker = tls_broker();
    let ca = tempfile::tempdir().unwrap();
    let ca_path = ca.path().join("ca.pem");
    std::fs::write(&ca_path, ca_pem).unwrap();
    let tls = format!("compression.type: lz4\n    security.protocol: SSL\n    ssl.ca.location: {}", ca_path.display());
    let (dir, config) =
        shipped_with(&[("publish_timeout_ms: 10000", "publish_timeout_ms: 3000"), ("compression.type: lz4", &tls)]);
    let topic = unique("payments");
    let group = unique("group");
    let vars = [
        ("STRIPE_WEBHOOK_SECRET", SECRET),
        ("PAYMENTS_TOPIC", &topic),
        ("KAFKA_BROKERS", &broker.bootstrap),
        ("ORDER_SERVICE_URL", orders),
        ("DISPATCH_GROUP", &group),
    ];
    let routes = Arc::new(compile(&config, &vars));
    let shutdown = Shutdown::new();
    let cfg = AppConfig {
        routes,
        role,
        listen: "127.0.0.1:0".parse().unwrap(),
        grace: Duration::from_secs(5),
        reload: None,
        tls: None,
        tls_client_ca: None,
    };
    let running = app::start(cfg, shutdown.clone()).await.expect("gateway starts");
    let gw = Gateway { addr: running.addr, shutdown, running: Some(running), topic, dlq: String::new() };
    (gw, [dir, ca])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_goes_through_a_broker_behind_tls_to_the_order_service() {
    let broker = tls_broker();
    let orders = OrderService::start(|_, _| (200, vec![])).await;
    let (gw, _dir) = over_tls(Role::All, &broker.cert_pem, &orders.url()).await;
    let body = serde_json::to_vec(&checkout(|_| {})).unwrap();
    let answer = post_signed(&gw.url("/webhooks/stripe"), &body).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "accepted");
    assert_eq!(answer.body["events"][0]["topic"], gw.topic.as_str());
    assert!(answer.body["events"][0]["offset"].is_u64(), "{:?}", answer.body);
    assert!(broker.handshakes.load(Ordering::SeqCst) >= 1, "the event went through the TLS listener");
    // The dispatcher's consumer group, coordinator and fetches included, works over TLS too.
    let seen = orders.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/orders/12345");
    let ready = reqwest::get(gw.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_certificate_from_another_authority_is_refused() {
    let stranger = rcgen::generate_simple_self_signed(["127.0.0.1".to_owned()]).unwrap().cert.pem();
    let (gw, _dir) = over_tls(Role::Ingress, &stranger, "http://127.0.0.1:9").await;
    let ready = reqwest::get(gw.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503, "not ready while the broker cannot be trusted");
    let body = serde_json::to_vec(&checkout(|_| {})).unwrap();
    let answer = post_signed(&gw.url("/webhooks/stripe"), &body).await;
    assert_eq!(answer.status, 503, "{:?}", answer.body);
    assert_eq!(answer.body["reason"], "broker", "{:?}", answer.body);
    gw.stop().await;
}
