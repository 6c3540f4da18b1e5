//! HTTPS on the listener (`serve --tls-cert FILE --tls-key FILE`): webhooks over TLS (HTTP/2
//! by ALPN, or HTTP/1.1), a renewed certificate served without a restart, plain HTTP on the
//! port told what to do, handshakes bounded by the read timeout, bad files refused at
//! startup with the file named, and the container's health probe over TLS.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::*;
use switchyard::app::{self, AppConfig, Role};
use switchyard::ingress::tls::TlsFiles;
use switchyard::shutdown::Shutdown;

/// The name every test certificate is for; clients resolve it to the gateway's address.
const HOST: &str = "gateway.test";

/// A fresh self-signed certificate for `HOST`, written as `cert.pem` and `key.pem` in `dir`;
/// its PEM, for a client to trust.
fn write_certificate(dir: &Path) -> String {
    let key = rcgen::generate_simple_self_signed([HOST.to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), key.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.signing_key.serialize_pem()).unwrap();
    key.cert.pem()
}

fn files(dir: &Path) -> TlsFiles {
    TlsFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem") }
}

/// A client that trusts only `cert_pem` and finds `HOST` at `addr`.
fn client(addr: SocketAddr, cert_pem: &str) -> reqwest::ClientBuilder {
    let root = reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap();
    reqwest::Client::builder().tls_certs_only([root]).resolve(HOST, addr).timeout(Duration::from_secs(10))
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("https://{HOST}:{}{path}", addr.port())
}

async fn post_signed_with(client: &reqwest::Client, url: &str, body: &[u8]) -> reqwest::Response {
    let sig = stripe_header(SECRET, unix_now(), body);
    let req = client.post(url).header("content-type", "application/json").header("stripe-signature", sig);
    req.body(body.to_vec()).send().await.expect("request sent")
}

/// Waits until the gateway at `addr` serves the certificate `cert_pem` (15 s at most).
async fn wait_until_served(addr: SocketAddr, cert_pem: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let trusting = client(addr, cert_pem).build().unwrap();
    while trusting.get(url(addr, "/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the renewed certificate was never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the metrics hold `series` (a connection's task counts its failure as it ends,
/// which may be just after the client saw the end).
async fn wait_for_metric(series: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !switchyard::metrics::render().contains(series) {
        assert!(Instant::now() < deadline, "no {series} in\n{}", switchyard::metrics::render());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn start_https(dir: &Path, config: &Path) -> Gateway {
    start_full(config, Role::Ingress, &unique("payments"), &[], false, Some(files(dir))).await
}

#[tokio::test]
async fn a_signed_webhook_over_https_is_published_over_http2_or_http11() {
    let dir = tempfile::tempdir().unwrap();
    let cert = write_certificate(dir.path());
    let gw = start_https(dir.path(), &repo().join("routes.yaml")).await;
    let doc = checkout(|_| {});
    let body = serde_json::to_vec(&doc).unwrap();

    // A client that offers HTTP/2 gets it.
    let h2 = client(gw.addr, &cert).build().unwrap();
    let res = post_signed_with(&h2, &url(gw.addr, "/webhooks/stripe"), &body).await;
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    let accepted = answer(res).await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!(accepted.body["status"], "accepted");

    // One that speaks only HTTP/1.1 is served too.
    let h1 = client(gw.addr, &cert).http1_only().build().unwrap();
    let res = post_signed_with(&h1, &url(gw.addr, "/webhooks/stripe"), &body).await;
    assert_eq!(res.version(), reqwest::Version::HTTP_11);
    assert_eq!(answer(res).await.status, 200);

    let records = read_topic(&gw.topic, 2, Duration::from_secs(10));
    assert_eq!(records.len(), 2, "both webhooks are on the topic");
    assert_eq!(records[0].headers["event_id"], doc["id"].as_str().unwrap());
    gw.stop().await;
}

#[tokio::test]
async fn refusals_over_http2_arrive_whole() {
    let dir = tempfile::tempdir().unwrap();
    let cert = write_certificate(dir.path());
    let gw = start_https(dir.path(), &repo().join("routes.yaml")).await;
    let h2 = client(gw.addr, &cert).build().unwrap();
    let webhooks = url(gw.addr, "/webhooks/stripe");
    // Too large, refused before the body is read: the answer comes while the client still sends.
    let res = h2.post(&webhooks).header("content-type", "application/json").body(vec![b'a'; 2_000_000]).send().await;
    let res = res.expect("the answer arrives");
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    let refused = answer(res).await;
    assert_eq!((refused.status, refused.body["reason"].as_str()), (413, Some("size")), "{}", refused.body);
    let res = h2.post(&webhooks).header("content-encoding", "gzip").body("{}").send().await.unwrap();
    assert_eq!(answer(res).await.status, 415);
    // The connection still carries the next request.
    let res = h2.get(url(gw.addr, "/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn plain_http_on_the_https_port_is_told_to_use_https() {
    let dir = tempfile::tempdir().unwrap();
    write_certificate(dir.path());
    let gw = start_https(dir.path(), &repo().join("routes.yaml")).await;
    let addr = gw.addr;
    let answer = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let body = r#"{"id":"evt_1"}"#;
        let head = format!("POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len());
        s.write_all(format!("{head}{body}").as_bytes()).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer}");
    let body: serde_json::Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["reason"], "plain_http");
    assert_eq!(body["message"], "this port speaks HTTPS: use https://");
    wait_for_metric(r#"switchyard_tls_handshake_failures_total{reason="plain_http"}"#).await;
    gw.stop().await;
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let old = write_certificate(dir.path());
    let gw = start_https(dir.path(), &repo().join("routes.yaml")).await;
    let healthz = url(gw.addr, "/healthz");
    let trusting = |cert: &str| client(gw.addr, cert).build().unwrap();
    assert_eq!(trusting(&old).get(&healthz).send().await.unwrap().status(), 200);

    // Renewed as tools do it: the certificate first, the key a moment later.
    let renewed = rcgen::generate_simple_self_signed([HOST.to_owned()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), renewed.cert.pem()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(dir.path().join("key.pem"), renewed.signing_key.serialize_pem()).unwrap();
    let new = renewed.cert.pem();
    wait_until_served(gw.addr, &new).await;
    assert!(trusting(&old).get(&healthz).send().await.is_err(), "the old certificate is no longer served");

    // A broken write is refused: the renewed certificate stays.
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(trusting(&new).get(&healthz).send().await.unwrap().status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn a_certificate_renewed_in_a_kubernetes_secret_volume_is_served() {
    // How the kubelet lays out and updates a secret: the files are symlinks through `..data`,
    // and an update writes a new folder and swaps `..data` to it in one rename.
    use std::os::unix::fs::symlink;
    let volume = tempfile::tempdir().unwrap();
    let v = volume.path();
    std::fs::create_dir(v.join("..2026_11_30_v1")).unwrap();
    let old = write_certificate(&v.join("..2026_11_30_v1"));
    symlink("..2026_11_30_v1", v.join("..data")).unwrap();
    symlink("..data/cert.pem", v.join("cert.pem")).unwrap();
    symlink("..data/key.pem", v.join("key.pem")).unwrap();
    let gw = start_https(v, &repo().join("routes.yaml")).await;
    let healthz = url(gw.addr, "/healthz");
    let trusting = |cert: &str| client(gw.addr, cert).build().unwrap();
    assert_eq!(trusting(&old).get(&healthz).send().await.unwrap().status(), 200);

    std::fs::create_dir(v.join("..2026_11_30_v2")).unwrap();
    let new = write_certificate(&v.join("..2026_11_30_v2"));
    symlink("..2026_11_30_v2", v.join("..data_tmp")).unwrap();
    std::fs::rename(v.join("..data_tmp"), v.join("..data")).unwrap();
    wait_until_served(gw.addr, &new).await;
    gw.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_handshake_is_closed_after_the_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    write_certificate(dir.path());
    let (_config_dir, config) = shipped_with(&[("read_timeout_ms: 10000", "read_timeout_ms: 500")]);
    let gw = start_https(dir.path(), &config).await;
    let addr = gw.addr;
    for opening in [&b""[..], &[0x16, 0x03, 0x01][..]] {
        let closed_after = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(opening).unwrap();
            let mut buf = [0u8; 64];
            let read = s.read(&mut buf);
            assert!(matches!(read, Ok(0)), "closed without an answer: {read:?}");
            started.elapsed()
        })
        .await
        .unwrap();
        assert!(closed_after >= Duration::from_millis(400), "{closed_after:?}");
        assert!(closed_after < Duration::from_secs(5), "{closed_after:?}");
    }
    wait_for_metric(r#"switchyard_tls_handshake_failures_total{reason="timeout"}"#).await;
    gw.stop().await;
}

#[tokio::test]
async fn bad_certificate_files_stop_startup_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    write_certificate(dir.path());
    let other = tempfile::tempdir().unwrap();
    write_certificate(other.path());
    let file = |name: &str| dir.path().join(name);
    std::fs::write(file("empty.pem"), "").unwrap();
    std::fs::write(file("torn.pem"), "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
    let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
    std::fs::write(file("encrypted.key"), encrypted).unwrap();
    let cases: [(PathBuf, PathBuf, String); 6] = [
        (file("missing.pem"), file("key.pem"), format!("cannot read {}", file("missing.pem").display())),
        (file("empty.pem"), file("key.pem"), format!("{}: no PEM certificate in it", file("empty.pem").display())),
        (
            file("cert.pem"),
            file("cert.pem"),
            format!("{}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in it", file("cert.pem").display()),
        ),
        (
            file("cert.pem"),
            file("encrypted.key"),
            format!(
                "{}: the private key (PKCS#8, PKCS#1 or SEC1) is encrypted, and Switchyard asks for no passphrase",
                file("encrypted.key").display()
            ),
        ),
        (
            file("torn.pem"),
            file("key.pem"),
            format!("{}: not valid PEM: a section has no END line", file("torn.pem").display()),
        ),
        (
            file("cert.pem"),
            other.path().join("key.pem"),
            format!(
                "the private key in {} does not belong to the certificate in {}",
                other.path().join("key.pem").display(),
                file("cert.pem").display()
            ),
        ),
    ];
    let routes = std::sync::Arc::new(compile(&repo().join("routes.yaml"), &[("STRIPE_WEBHOOK_SECRET", SECRET)]));
    for (cert, key, expected) in cases {
        let cfg = AppConfig {
            routes: routes.clone(),
            role: Role::Ingress,
            listen: "127.0.0.1:0".parse().unwrap(),
            grace: Duration::from_secs(1),
            reload: None,
            tls: Some(TlsFiles { cert, key }),
            tls_client_ca: None,
        };
        let error = match app::start(cfg, Shutdown::new()).await {
            Ok(_) => panic!("started with bad TLS files; expected {expected}"),
            Err(e) => switchyard::text::error_chain(e.as_ref()),
        };
        assert!(error.starts_with("cannot serve HTTPS: "), "{error}");
        assert!(error.contains(&expected), "{error}\nexpected: {expected}");
        assert!(!error.contains("PRIVATE KEY"), "never quotes the key file: {error}");
    }
}

#[tokio::test]
async fn the_health_probe_speaks_tls_when_the_gateway_does_and_says_when_they_differ() {
    let dir = tempfile::tempdir().unwrap();
    write_certificate(dir.path());
    let gw = start_https(dir.path(), &repo().join("routes.yaml")).await;
    let plain_gw = start(Role::Ingress, &[]).await;
    let cert = dir.path().join("cert.pem").to_str().unwrap().to_owned();
    let probe = move |addr: SocketAddr, tls: bool| {
        let env: &[(&str, &str)] = if tls { &[("SWITCHYARD_TLS_CERT", &cert)] } else { &[] };
        switchyard_command(&["health", "--addr", &addr.to_string()], env).output().unwrap()
    };
    let (https, http) = (gw.addr, plain_gw.addr);
    let probes = tokio::task::spawn_blocking(move || [probe(https, true), probe(https, false), probe(http, true)]);
    let [over_tls, plain, tls_to_plain] = probes.await.unwrap();
    assert!(over_tls.status.success(), "{}", String::from_utf8_lossy(&over_tls.stderr));
    for (out, says) in [
        (plain, "serves HTTPS: probe with --tls-cert (or SWITCHYARD_TLS_CERT) set"),
        (tls_to_plain, "does not speak TLS: probe without --tls-cert (or SWITCHYARD_TLS_CERT)"),
    ] {
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{stderr}");
    }
    gw.stop().await;
    plain_gw.stop().await;
}

#[test]
fn a_certificate_without_its_key_is_a_usage_error() {
    let out = switchyard_command(&["serve", "--tls-cert", "cert.pem"], &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--tls-key <TLS_KEY>"), "{stderr}");
}

/// Mutual TLS (`--tls-client-ca`): a source with `require_client_certificate` takes webhooks
/// only from clients with a certificate the CA issued; clients without one still reach the
/// other endpoints; a certificate another CA issued fails the handshake; and a config that
/// requires client certificates of a listener that checks none does not start.
#[tokio::test]
async fn a_source_can_require_a_client_certificate_its_ca_issued() {
    use crate::dispatch_tls::Ca;
    let dir = tempfile::tempdir().unwrap();
    let server_cert = write_certificate(dir.path());
    let (ca, stranger) = (Ca::new(), Ca::new());
    std::fs::write(dir.path().join("clients-ca.pem"), ca.pem()).unwrap();
    let (_config_dir, config) = shipped_with(&[(
        "    path: /webhooks/stripe\n",
        "    path: /webhooks/stripe\n    require_client_certificate: true\n",
    )]);
    let topic = unique("payments");
    create_topic(&topic, PARTITIONS);
    let routes =
        std::sync::Arc::new(compile(&config, &[("STRIPE_WEBHOOK_SECRET", SECRET), ("PAYMENTS_TOPIC", &topic)]));
    let shutdown = Shutdown::new();
    let start = |client_ca: Option<PathBuf>| {
        let cfg = AppConfig {
            routes: routes.clone(),
            role: Role::Ingress,
            listen: "127.0.0.1:0".parse().unwrap(),
            grace: Duration::from_secs(1),
            reload: None,
            tls: Some(files(dir.path())),
            tls_client_ca: client_ca,
        };
        app::start(cfg, shutdown.clone())
    };
    let error = match start(None).await {
        Ok(_) => panic!("started a source that requires client certificates without a client CA"),
        Err(e) => switchyard::text::error_chain(e.as_ref()),
    };
    assert!(error.contains("source 'stripe' requires client certificates"), "{error}");

    let running = start(Some(dir.path().join("clients-ca.pem"))).await.expect("starts with the client CA");
    let addr = running.addr;
    let with_certificate = |issuer: &Ca| {
        let (cert, key, _) = issuer.sign("payments-sender");
        let identity = reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap();
        client(addr, &server_cert).identity(identity).build().unwrap()
    };
    let body = serde_json::to_vec(&checkout(|_| {})).unwrap();
    let webhooks = url(addr, "/webhooks/stripe");

    let accepted = answer(post_signed_with(&with_certificate(&ca), &webhooks, &body).await).await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!(accepted.body["status"], "accepted");
    // No certificate: the handshake succeeds (health checks need none), the webhook does not.
    let anonymous = client(addr, &server_cert).build().unwrap();
    let refused = answer(post_signed_with(&anonymous, &webhooks, &body).await).await;
    assert_eq!((refused.status, refused.body["reason"].as_str()), (403, Some("forbidden")), "{}", refused.body);
    assert_eq!(
        refused.body["message"],
        "source 'stripe' takes webhooks only from clients that present a certificate its client CA issued (mutual TLS)"
    );
    assert_eq!(anonymous.get(url(addr, "/healthz")).send().await.unwrap().status(), 200);
    // A certificate another CA issued: no TLS session at all.
    let foreign = with_certificate(&stranger).post(&webhooks).body(body.clone()).send().await;
    assert!(foreign.is_err(), "a certificate of another CA was taken: {foreign:?}");
    let records = read_topic(&topic, 1, Duration::from_secs(10));
    assert_eq!(records.len(), 1, "only the certified client's webhook");
    // When the listener's certificate and the client CA expire, for alerts.
    let metrics = switchyard::metrics::render();
    for certificate in ["listener", "client_ca"] {
        let series = format!("switchyard_tls_certificate_expiry_timestamp_seconds{{certificate=\"{certificate}\"}} ");
        let at: f64 = metrics.lines().find_map(|l| l.strip_prefix(&series)).expect(&series).parse().unwrap();
        assert!(at > unix_now() as f64 + 86_400.0 * 365.0, "{series}{at}");
    }
    shutdown.trigger();
    running.wait().await.expect("stops cleanly");
}
