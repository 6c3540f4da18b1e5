//! The gateway stopped under load, gracefully (SIGTERM: stops accepting, finishes the webhooks in
//! flight and their publishes, flushes, exits 0 within 15 s) or not (SIGKILL): either way every
//! webhook answered 200 is on Kafka.

mod common;

use std::time::{Duration, Instant};

use common::*;

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
