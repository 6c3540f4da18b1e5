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
