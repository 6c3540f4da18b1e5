//! Test helpers: one embedded broker per test binary, gateways started in-process from a
//! config with their own environment, Stripe signing, reading topics back, and a recording
//! HTTP server that plays the order service.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::Value as Json;
use switchyard::app::{self, AppConfig, Role, Running};
use switchyard::ingress::tls::TlsFiles;
use switchyard::kafka::EmbeddedBroker;
use switchyard::routes::{self, EnvMode, Routes};
use switchyard::shutdown::Shutdown;

pub const SECRET: &str = "whsec_integration_test_secret";
pub const PARTITIONS: i32 = 4;

static BROKER: OnceLock<EmbeddedBroker> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn broker() -> &'static EmbeddedBroker {
    BROKER.get_or_init(|| EmbeddedBroker::start(1).expect("embedded broker"))
}

/// A fresh name, so tests sharing the broker never see each other's records.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn unix_now() -> i64 {
    switchyard::ingress::unix_now()
}

/// Compiles the config at `path` with `vars` as its whole environment (plus the broker).
pub fn compile(path: &Path, vars: &[(&str, &str)]) -> Routes {
    let mut env: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    env.entry("KAFKA_BROKERS".into()).or_insert_with(|| broker().bootstrap_servers().to_owned());
    let loaded = switchyard::config::load(path).unwrap_or_else(|d| panic!("{d}"));
    let (routes, _) =
        routes::compile(&loaded, &|k| env.get(k).cloned(), EnvMode::STRICT).unwrap_or_else(|d| panic!("{d}"));
    routes
}

/// Writes `yaml` as a config file in a temp dir; `schemas/` resolves to the repo's.
pub fn config_file(yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let schemas = repo().join("schemas");
    std::os::unix::fs::symlink(&schemas, dir.path().join("schemas")).unwrap();
    let path = dir.path().join("routes.yaml");
    std::fs::write(&path, yaml).unwrap();
    (dir, path)
}

/// The shipped routes.yaml with some text replaced.
pub fn shipped_with(replacements: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let mut text = std::fs::read_to_string(repo().join("routes.yaml")).unwrap();
    for (from, to) in replacements {
        assert!(text.contains(from), "routes.yaml no longer contains {from:?}");
        text = text.replace(from, to);
    }
    config_file(&text)
}

/// A process's worth of Switchyard, started in this test.
pub struct Gateway {
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    pub running: Option<Running>,
    pub topic: String,
    pub dlq: String,
}

impl Gateway {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(r) = self.running.take() {
            r.wait().await.expect("every role of the gateway stopped cleanly");
        }
    }
}

/// Starts the shipped routes with fresh topics and the given role and extra env.
pub async fn start(role: Role, extra: &[(&str, &str)]) -> Gateway {
    let topic = unique("payments");
    start_with(&repo().join("routes.yaml"), role, &topic, extra).await
}

pub async fn start_with(config: &Path, role: Role, topic: &str, extra: &[(&str, &str)]) -> Gateway {
    start_full(config, role, topic, extra, false, None).await
}

/// The shipped routes with fresh topics and group, calling `orders` as the order service.
pub async fn start_for(orders: &OrderService, role: Role) -> Gateway {
    let (url, group) = (orders.url(), unique("group"));
    let env = [("ORDER_SERVICE_URL", url.as_str()), ("DISPATCH_GROUP", group.as_str())];
    start_with(&repo().join("routes.yaml"), role, &unique("payments"), &env).await
}

/// Like `start_with`; with `reload`, the config is watched and reloaded as `serve` does; with
/// `tls`, it serves HTTPS.
pub async fn start_full(
    config: &Path,
    role: Role,
    topic: &str,
    extra: &[(&str, &str)],
    reload: bool,
    tls: Option<TlsFiles>,
) -> Gateway {
    init_logs();
    let dlq = format!("{topic}.dlq");
    create_topic(topic, PARTITIONS);
    create_topic(&dlq, 1);
    let mut vars = vec![("STRIPE_WEBHOOK_SECRET", SECRET), ("PAYMENTS_TOPIC", topic), ("PAYMENTS_DLQ_TOPIC", &dlq)];
    vars.extend_from_slice(extra);
    let routes = compile(config, &vars);
    let reload = reload.then(|| {
        let mut env: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        env.insert("KAFKA_BROKERS".into(), broker().bootstrap_servers().to_owned());
        switchyard::reload::for_config(
            config.to_path_buf(),
            &routes,
            Arc::new(move |k: &str| env.get(k).cloned()),
            role.env_mode(),
        )
    });
    let routes = Arc::new(routes);
    let shutdown = Shutdown::new();
    let cfg = AppConfig {
        routes,
        role,
        listen: "127.0.0.1:0".parse().unwrap(),
        grace: Duration::from_secs(5),
        reload,
        tls,
        tls_client_ca: None,
    };
    let running = app::start(cfg, shutdown.clone()).await.expect("gateway starts");
    let addr = running.addr;
    Gateway { addr, shutdown, running: Some(running), topic: topic.to_owned(), dlq }
}

/// The `Stripe-Signature` header for `body`, as Stripe computes it.
pub fn stripe_header(secret: &str, t: i64, body: &[u8]) -> String {
    switchyard::pipeline::verify::stripe_signature(secret.as_bytes(), t, body)
}

/// The shipped sample checkout, with `edit` applied and a unique event id.
pub fn checkout(edit: impl FnOnce(&mut Json)) -> Json {
    let text = std::fs::read_to_string(repo().join("samples/stripe/checkout_session_completed.json")).unwrap();
    let mut doc: Json = serde_json::from_str(&text).unwrap();
    doc["id"] = Json::String(unique("evt_test"));
    edit(&mut doc);
    doc
}

pub struct Answer {
    pub status: u16,
    pub body: Json,
    pub headers: reqwest::header::HeaderMap,
}

/// POSTs `body` signed with `SECRET`, now.
pub async fn post_signed(url: &str, body: &[u8]) -> Answer {
    let sig = stripe_header(SECRET, unix_now(), body);
    post(url, &[("content-type", "application/json"), ("stripe-signature", &sig)], body.to_vec()).await
}

pub async fn post(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let client = reqwest::Client::new();
    let mut req = client.post(url).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    answer(req.send().await.expect("request sent")).await
}

pub async fn answer(res: reqwest::Response) -> Answer {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("answer is not JSON: {bytes:?}"));
    Answer { status, body, headers }
}

/// A consumed record, decoded for assertions.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub headers: HashMap<String, String>,
    pub value: Json,
}

impl Record {
    fn from(m: &OwnedMessage) -> Record {
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Record {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            headers,
            value: m.payload().and_then(|p| serde_json::from_slice(p).ok()).unwrap_or(Json::Null),
        }
    }
}

/// Reads `topic` from the beginning until `want` records arrived or `wait` passed.
pub fn read_topic(topic: &str, want: usize, wait: Duration) -> Vec<Record> {
    read_topic_until(topic, wait, |records| records.len() >= want)
}

/// Reads `topic` from the beginning until `done(records so far)` or `wait` passed.
pub fn read_topic_until(topic: &str, wait: Duration, done: impl Fn(&[Record]) -> bool) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker().bootstrap_servers())
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)).unwrap();
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + wait;
    while !done(&out) && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(Record::from(&m.detach()));
        }
    }
    out
}

/// Asserts `topic` stays empty (what a rejection must leave behind).
pub fn assert_empty(topic: &str) {
    let found = read_topic(topic, 1, Duration::from_millis(1500));
    assert!(found.is_empty(), "expected nothing on {topic}, found {found:?}");
}

/// One request the order service received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Json,
    /// The body's bytes as they arrived (what a signature covers).
    pub raw: Vec<u8>,
    pub at: Instant,
}

/// Reply headers that make the fake order service answer after `ms` milliseconds, without
/// blocking the runtime the code under test shares.
pub fn delay(ms: u64) -> Vec<(String, String)> {
    vec![("x-test-delay-ms".into(), ms.to_string())]
}

type Reply = Arc<dyn Fn(&Seen, usize) -> (u16, Vec<(String, String)>) + Send + Sync>;

/// A real local HTTP server playing the order service: records every request and answers
/// with `reply(request, index)`.
pub struct OrderService {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl OrderService {
    pub async fn start(
        reply: impl Fn(&Seen, usize) -> (u16, Vec<(String, String)>) + Send + Sync + 'static,
    ) -> OrderService {
        OrderService::start_on("127.0.0.1:0".parse().unwrap(), reply).await
    }

    /// Like `start`, on a given address. A reply header `x-test-delay-ms: N` makes the
    /// answer wait N ms (without blocking the runtime), and `x-test-body: TEXT` makes TEXT the
    /// answer's body instead of `{}`, its second half sent 5 ms after the headers and the first
    /// half (as a server that writes as it goes); neither header is sent.
    pub async fn start_on(
        addr: SocketAddr,
        reply: impl Fn(&Seen, usize) -> (u16, Vec<(String, String)>) + Send + Sync + 'static,
    ) -> OrderService {
        use http_body_util::BodyExt;
        let reply: Reply = Arc::new(reply);
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let (log, accepted) = (seen.clone(), connections.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                accepted.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_nodelay(true);
                let (log, reply) = (log.clone(), reply.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (log, reply) = (log.clone(), reply.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let bytes = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                            let seen = Seen {
                                method: parts.method.to_string(),
                                path: parts.uri.to_string(),
                                headers: parts
                                    .headers
                                    .iter()
                                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                                    .collect(),
                                body: serde_json::from_slice(&bytes).unwrap_or(Json::Null),
                                raw: bytes.to_vec(),
                                at: Instant::now(),
                            };
                            let index = {
                                let mut log = log.lock().unwrap();
                                log.push(seen.clone());
                                log.len() - 1
                            };
                            let (status, mut headers) = reply(&seen, index);
                            if let Some(i) = headers.iter().position(|(k, _)| k == "x-test-delay-ms") {
                                let ms: u64 = headers.remove(i).1.parse().unwrap_or(0);
                                tokio::time::sleep(Duration::from_millis(ms)).await;
                            }
                            let body = match headers.iter().position(|(k, _)| k == "x-test-body") {
                                Some(i) => {
                                    let mut first = bytes::Bytes::from(headers.remove(i).1);
                                    let second = first.split_off(first.len() / 2);
                                    let later = async move {
                                        tokio::time::sleep(Duration::from_millis(5)).await;
                                        Ok(hyper::body::Frame::data(second))
                                    };
                                    use futures::StreamExt;
                                    let frames = futures::stream::iter([Ok(hyper::body::Frame::data(first))])
                                        .chain(futures::stream::once(later));
                                    BodyExt::boxed(http_body_util::StreamBody::new(frames))
                                }
                                None => http_body_util::Full::new(bytes::Bytes::from_static(b"{}")).boxed(),
                            };
                            let mut res = hyper::Response::new(body);
                            *res.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            for (k, v) in headers {
                                res.headers_mut().insert(
                                    hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                                    v.parse().unwrap(),
                                );
                            }
                            Ok::<_, std::convert::Infallible>(res)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        OrderService { addr, seen, connections, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until every key in `keys` was called with every sequence number below `per_key`
    /// (or `wait` passed); true when all arrived.
    pub async fn wait_for_all(&self, keys: &[impl AsRef<str>], per_key: usize, wait: Duration) -> bool {
        let all = || {
            let seqs = sequences(&self.requests());
            keys.iter().all(|k| seqs.get(k.as_ref()).is_some_and(|s| (0..per_key).all(|n| s.contains(&n))))
        };
        let deadline = Instant::now() + wait;
        while !all() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        all()
    }

    /// Waits until `n` requests arrived (or `wait` passed) and returns them all.
    pub async fn wait_for(&self, n: usize, wait: Duration) -> Vec<Seen> {
        let deadline = Instant::now() + wait;
        while self.seen.lock().unwrap().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.requests()
    }
}

impl Drop for OrderService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Produces canonical events straight onto `topic` (as the ingress would), in order.
pub async fn produce(topic: &str, events: &[(String, Json)]) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker().bootstrap_servers())
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for (key, value) in events {
        let payload = serde_json::to_vec(value).unwrap();
        let event_id = format!("evt_{}", value["transaction_id"].as_str().unwrap_or("x"));
        let headers = OwnedHeaders::new()
            .insert(Header { key: "event_id", value: Some(event_id.as_str()) })
            .insert(Header { key: "event_type", value: Some("payment_successful") });
        let record = FutureRecord::to(topic).key(key.as_str()).payload(&payload).headers(headers);
        producer.send(record, Duration::from_secs(5)).await.expect("produced");
    }
}

/// A canonical `payment_successful` for `order_id`, numbered by `seq` in its transaction id.
pub fn payment(order_id: &str, seq: usize) -> (String, Json) {
    let value = serde_json::json!({
        "event_type": "payment_successful", "event_timestamp": "2023-11-06T14:30:00Z",
        "order_id": order_id, "customer_id": "789", "payment_amount": 100.0, "payment_method": "Credit Card",
        "transaction_id": format!("{order_id}#{seq}"), "currency": "USD", "payment_status": "Success"
    });
    (order_id.to_owned(), value)
}

/// The sequence numbers each order id was delivered with, in arrival order.
pub fn sequences(seen: &[Seen]) -> HashMap<String, Vec<usize>> {
    let mut out: HashMap<String, Vec<usize>> = HashMap::new();
    for s in seen {
        let tx = s.body["transaction_id"].as_str().unwrap_or_default();
        if let Some((order, seq)) = tx.rsplit_once('#') {
            out.entry(order.to_owned()).or_default().push(seq.parse().unwrap());
        }
    }
    out
}

/// Creates a topic on the shared broker; one that exists already is fine.
pub fn create_topic(name: &str, partitions: i32) {
    if let Err(e) = broker().create_topic(name, partitions) {
        assert!(e.contains("already exists"), "{e}");
    }
}

/// Logs of the code under test, captured per test and shown when it fails (RUST_LOG filters).
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(switchyard::logging::DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// A `switchyard` process started from the built binary (for kill tests).
pub fn spawn_switchyard(args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    switchyard_command(args, env).spawn().expect("switchyard starts")
}

/// The built binary with `args`, in the repository, on the shared broker, with the test secret
/// and `env` as its only environment besides `PATH`.
pub fn switchyard_command(args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.args(args)
        .current_dir(repo())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KAFKA_BROKERS", broker().bootstrap_servers())
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// An ingress process (the built binary, shipped routes) on a fresh topic, ready to take
/// webhooks: the child, the webhook URL and the topic.
pub async fn gateway_process() -> (std::process::Child, String, String) {
    gateway_process_with(&repo().join("routes.yaml")).await
}

/// [`gateway_process`] with another config file.
pub async fn gateway_process_with(config: &Path) -> (std::process::Child, String, String) {
    let config = config.to_str().unwrap();
    let topic = unique("payments");
    create_topic(&topic, PARTITIONS);
    let cmd = switchyard_command(
        &["serve", "--role", "ingress", "-c", config, "--listen", "127.0.0.1:0"],
        &[("PAYMENTS_TOPIC", &topic)],
    );
    let (child, addr, _logs) = tokio::task::block_in_place(|| spawn_listening(cmd));
    (child, format!("http://{addr}/webhooks/stripe"), topic)
}

/// Starts `cmd`, a `serve` or `dev` told to listen on port 0, with stderr piped and read on a
/// thread: returns once its log says where it listens (the line `switchyard::app` logs at
/// `info`, which `RUST_LOG` is made to let through), with the address and its stderr so far and
/// to come. No port is picked before the process binds one, so none can be taken meanwhile.
pub fn spawn_listening(mut cmd: std::process::Command) -> (std::process::Child, String, Logs) {
    let filter = cmd.get_envs().find(|(k, _)| *k == "RUST_LOG").and_then(|(_, v)| v?.to_str().map(str::to_owned));
    cmd.env("RUST_LOG", format!("{},switchyard::app=info", filter.unwrap_or_else(|| "warn".into())));
    let mut child = cmd.stderr(std::process::Stdio::piped()).spawn().expect("switchyard starts");
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (text, (tx, rx)) = (Arc::new(Mutex::new(String::new())), std::sync::mpsc::channel());
    let kept = text.clone();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(stderr).map_while(Result::ok) {
            let listening = line.contains("switchyard::app:") && line.contains(" addr=");
            if let Some(addr) = line.split(" addr=").nth(1).filter(|_| listening) {
                let _ = tx.send(addr.split(' ').next().unwrap_or_default().to_owned());
            }
            let mut kept = kept.lock().unwrap();
            kept.push_str(&line);
            kept.push('\n');
        }
    });
    let logs = Logs { text, reader };
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(addr) => (child, addr, logs),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("switchyard did not say where it listens: {}", logs.finish())
        }
    }
}

/// What a process wrote to stderr, read on a thread.
pub struct Logs {
    text: Arc<Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl Logs {
    /// All of it, once the process has closed its stderr (it has exited).
    pub fn finish(self) -> String {
        let _ = self.reader.join();
        std::mem::take(&mut *self.text.lock().unwrap())
    }
}

/// A loopback address nothing listens on: a port the system handed out and took back (a
/// connection to it is refused until something binds it).
pub fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}
