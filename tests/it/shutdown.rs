//! The gateway stopped under load, gracefully (SIGTERM: stops accepting, finishes the webhooks in
//! flight and their publishes, flushes, exits 0 within 15 s) or not (SIGKILL): either way every
//! webhook answered 200 is on Kafka.

use std::time::{Duration, Instant};

use crate::common::*;

/// Four senders posting signed webhooks until the gateway goes away; the ids answered 200.
fn load(url: &str) -> Vec<tokio::task::JoinHandle<Vec<String>>> {
    (0..4)
        .map(|_| {
            let url = url.to_owned();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut acknowledged = Vec::new();
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(20) {
                    let event = checkout(|_| {});
                    let body = serde_json::to_vec(&event).unwrap();
                    let sig = stripe_header(SECRET, unix_now(), &body);
                    match client.post(&url).header("stripe-signature", sig).body(body).send().await {
                        Ok(res) if res.status() == 200 => acknowledged.push(event["id"].as_str().unwrap().to_owned()),
                        Ok(res) => assert!(res.status() == 503, "unexpected {}", res.status()),
                        Err(_) => break, // the gateway is gone
                    }
                }
                acknowledged
            })
        })
        .collect()
}

/// Every acknowledged id must be on the topic.
async fn assert_all_on_kafka(senders: Vec<tokio::task::JoinHandle<Vec<String>>>, topic: &str) {
    let mut acknowledged = Vec::new();
    for s in senders {
        acknowledged.extend(s.await.unwrap());
    }
    assert!(acknowledged.len() > 10, "only {} webhooks before the stop", acknowledged.len());
    // The topic may hold more than was acknowledged (published, but the answer never got out),
    // so read until every acknowledged id is found, not until a count.
    let ids = |records: &[Record]| -> std::collections::HashSet<String> {
        records.iter().map(|r| r.headers["event_id"].clone()).collect()
    };
    let records = read_topic_until(topic, Duration::from_secs(15), |r| {
        let on_kafka = ids(r);
        acknowledged.iter().all(|id| on_kafka.contains(id))
    });
    let on_kafka = ids(&records);
    let missing: Vec<&String> = acknowledged.iter().filter(|id| !on_kafka.contains(id.as_str())).collect();
    eprintln!("{} acknowledged, {} on Kafka", acknowledged.len(), records.len());
    assert!(missing.is_empty(), "acknowledged but not on Kafka: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_load_exits_0_and_loses_nothing_acknowledged() {
    let (child, url, topic) = gateway_process().await;
    let senders = load(&url);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let term_at = Instant::now();
    assert!(std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let mut child = child;
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    let took = term_at.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_all_on_kafka(senders, &topic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_nothing_acknowledged() {
    let (mut child, url, topic) = gateway_process().await;
    let senders = load(&url);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    assert_all_on_kafka(senders, &topic).await;
}

/// A second SIGTERM (or Ctrl-C) ends a shutdown that is waiting on open work at once, with
/// 128 + the signal's number, and the log says so. Here the open work is a dispatcher's call to
/// an order service that never answers, which a 60 s grace period would otherwise wait out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_stops_at_once() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let orders = format!("http://{}", silent.local_addr().unwrap());
    let (topic, group) = (unique("payments"), unique("group"));
    create_topic(&topic, PARTITIONS);
    let child = switchyard_command(
        &["serve", "--role", "dispatch", "--listen", "127.0.0.1:0"],
        &[
            ("PAYMENTS_TOPIC", &topic),
            ("DISPATCH_GROUP", &group),
            ("ORDER_SERVICE_URL", &orders),
            ("SWITCHYARD_SHUTDOWN_GRACE_SECS", "60"),
            ("RUST_LOG", "info"),
        ],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    produce(&topic, &[payment("4711", 1)]).await;
    // The call is on its way: the order service has its connection (and never answers).
    let (_held, _) = tokio::time::timeout(Duration::from_secs(30), silent.accept()).await.unwrap().unwrap();
    let pid = child.id().to_string();
    let term = || assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    term();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut child = child;
    assert!(child.try_wait().unwrap().is_none(), "the first signal waits for the open call");
    let second_at = Instant::now();
    term();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    assert!(second_at.elapsed() < Duration::from_secs(5), "took {:?}", second_at.elapsed());
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{logs}");
    assert!(logs.contains("second shutdown signal: stopping at once"), "the log is written out first: {logs}");
}
