//! The broker going away: webhooks get 503 within the publish timeout (nothing
//! acknowledged that Kafka does not hold), `/readyz` follows the broker, and the gateway
//! recovers by itself when the broker returns. Its own test binary: it takes the broker down.

mod common;

use std::time::{Duration, Instant};

use common::*;
use switchyard::app::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_means_503_in_bounded_time_then_recovery() {
    let (_dir, path) = shipped_with(&[("publish_timeout_ms: 10000", "publish_timeout_ms: 2000")]);
    let topic = unique("payments");
    let gw = start_with(&path, Role::Ingress, &topic, &[]).await;
    let client = reqwest::Client::new();
    let url = gw.url("/webhooks/stripe");

    // Up: accepted and ready.
    let first = checkout(|_| {});
    assert_eq!(post_signed(&url, &serde_json::to_vec(&first).unwrap()).await.status, 200);
    assert_eq!(client.get(gw.url("/readyz")).send().await.unwrap().status(), 200);

    broker().broker_down(1).unwrap();
    let ready = answer(client.get(gw.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(client.get(gw.url("/healthz")).send().await.unwrap().status(), 200);

    let lost = checkout(|_| {});
    let started = Instant::now();
    let res = post_signed(&url, &serde_json::to_vec(&lost).unwrap()).await;
    let took = started.elapsed();
    assert_eq!(res.status, 503, "{}", res.body);
    assert_eq!(res.body["reason"], "broker");
    assert_eq!(res.headers["retry-after"], "5", "a 503 says when to try again");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");

    broker().broker_up(1).unwrap();
    // The gateway reconnects by itself; the sender's retry is accepted.
    let deadline = Instant::now() + Duration::from_secs(30);
    let retried = loop {
        let res = post_signed(&url, &serde_json::to_vec(&lost).unwrap()).await;
        if res.status == 200 || Instant::now() > deadline {
            break res;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(retried.status, 200, "{}", retried.body);
    let ready = answer(client.get(gw.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(ready.status, 200, "{}", ready.body);

    // Every acknowledged event is on the topic.
    let records = read_topic(&topic, 3, Duration::from_secs(10));
    let ids: Vec<&str> = records.iter().map(|r| r.headers["event_id"].as_str()).collect();
    assert!(ids.contains(&first["id"].as_str().unwrap()), "{ids:?}");
    assert!(ids.contains(&lost["id"].as_str().unwrap()), "{ids:?}");
    gw.stop().await;
}

/// librdkafka reports an unreachable broker several times a second, for as long as it lasts.
/// The log gets one line per kind of error and client (then one every 30 s, with the count),
/// while the metric counts every report; and the process still stops cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_logged_once_per_kind_not_per_retry() {
    // Every connection to the broker is refused at once.
    let nowhere = free_address().to_string();
    let mut cmd = switchyard_command(&["serve", "--listen", "127.0.0.1:0"], &[("KAFKA_BROKERS", &nowhere)]);
    cmd.stdout(std::process::Stdio::null());
    let (child, listen, logs) = tokio::task::block_in_place(|| spawn_listening(cmd));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let metrics = reqwest::get(format!("http://{listen}/metrics")).await.unwrap().text().await.unwrap();
    let reported: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("switchyard_kafka_errors_total{") && l.contains("code=\"AllBrokersDown\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut child = child;
    assert!(child.wait().unwrap().success(), "SIGTERM exits 0");
    let logs = logs.finish();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains("Kafka client error")).collect();
    // Each line is the first of its kind from its client: none repeats within the window.
    let kinds: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            let field =
                |name: &str| l.split(&format!(" {name}=\"")).nth(1).and_then(|v| v.split('"').next()).unwrap_or("");
            (field("client"), field("code"))
        })
        .collect();
    let distinct: std::collections::HashSet<_> = kinds.iter().collect();
    assert_eq!(distinct.len(), kinds.len(), "a kind logged twice within 30 s:\n{logs}");
    for client in ["producer", "consumer"] {
        assert!(kinds.contains(&(client, "AllBrokersDown")), "{logs}");
    }
    assert!(reported > lines.len() as f64, "the metric counts every report: {reported}\n{logs}");
}

/// `serve --role <role>` on a broker of its own, whose next request of kind `api` (from any
/// client) gets `error`: the exit code (None if it had to be killed after 60 s) and the log.
async fn serve_until_it_fails(
    role: &str,
    api: rdkafka::types::RDKafkaApiKey,
    error: rdkafka::types::RDKafkaRespErr,
) -> (Option<i32>, String) {
    let own = switchyard::kafka::EmbeddedBroker::start(1).unwrap();
    for topic in ["payments", "payments.dlq"] {
        own.create_topic(topic, 2).unwrap();
    }
    own.request_errors(api, &[error]).unwrap();
    let mut child = switchyard_command(
        &["serve", "--role", role, "--listen", "127.0.0.1:0"],
        &[("KAFKA_BROKERS", own.bootstrap_servers()), ("RUST_LOG", "info")],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A fatal consumer error leaves the consumer unusable (here the group fences the member, as
/// when another process takes its `group.instance.id`): the dispatcher stops, the process with
/// it, and it exits non-zero so that whatever supervises it starts it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_consumer_error_stops_the_process_with_a_failure() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let fenced = RDKafkaRespErr::RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID;
    let (code, logs) = serve_until_it_fails("dispatch", RDKafkaApiKey::Heartbeat, fenced).await;
    assert_eq!(code, Some(1), "{logs}");
    assert!(logs.contains("partitions assigned"), "it had joined its group: {logs}");
    assert!(logs.contains("dispatcher order_service: the consumer failed for good"), "{logs}");
    assert!(logs.contains("dispatcher stopped"), "it stopped in order: {logs}");
}

/// The same for the producer: an idempotent producer refused its producer id (the cluster
/// does not grant the right to write idempotently) fails every event for good. Rather than
/// answer 503 for ever while `/readyz` says ready, the process stops and exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_producer_error_stops_the_process_with_a_failure() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let refused = RDKafkaRespErr::RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED;
    let (code, logs) = serve_until_it_fails("ingress", RDKafkaApiKey::InitProducerId, refused).await;
    assert_eq!(code, Some(1), "{logs}");
    assert!(logs.contains("the Kafka producer failed for good: ClusterAuthorizationFailed"), "{logs}");
    assert!(logs.contains("ingress stopped accepting"), "it stopped in order: {logs}");
}
