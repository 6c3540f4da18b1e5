//! A stalled broker under concurrent load: every request is answered within the publish
//! timeout (503 while stalled), only acknowledged events were answered 200 and all of them
//! are on the topic, and the gateway recovers by itself. Its own binary: it slows the broker.

mod common;

use std::time::{Duration, Instant};

use common::*;
use switchyard::app::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_broker_gets_bounded_answers_and_loses_nothing_acknowledged() {
    let (_dir, path) = shipped_with(&[("publish_timeout_ms: 10000", "publish_timeout_ms: 1500")]);
    let topic = unique("payments");
    let gw = start_with(&path, Role::Ingress, &topic, &[]).await;
    let url = gw.url("/webhooks/stripe");

    let phase = |stall: Option<Duration>| {
        let url = url.clone();
        async move {
            if let Some(delay) = stall {
                broker().round_trip_time(1, delay).unwrap();
            }
            let mut tasks = Vec::new();
            for _ in 0..16 {
                let url = url.clone();
                tasks.push(tokio::spawn(async move {
                    let event = checkout(|_| {});
                    let started = Instant::now();
                    let res = post_signed(&url, &serde_json::to_vec(&event).unwrap()).await;
                    (event["id"].as_str().unwrap().to_owned(), res.status, started.elapsed())
                }));
            }
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        }
    };
    // Stalled: 3 s per broker round trip, 1.5 s publish timeout.
    let stalled = phase(Some(Duration::from_secs(3))).await;
    for (_, status, took) in &stalled {
        assert!(*status == 503 || *status == 200, "status {status}");
        assert!(*took < Duration::from_millis(4000), "answered after {took:?}");
    }
    assert!(stalled.iter().any(|(_, s, _)| *s == 503), "the stall was not noticed");
    broker().round_trip_time(1, Duration::ZERO).unwrap();

    // Recovered: accepted again, by itself.
    let deadline = Instant::now() + Duration::from_secs(30);
    let recovered = loop {
        let answers = phase(None).await;
        if answers.iter().all(|(_, s, _)| *s == 200) || Instant::now() > deadline {
            break answers;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(recovered.iter().all(|(_, s, _)| *s == 200), "{recovered:?}");

    let acknowledged: Vec<&String> =
        stalled.iter().chain(&recovered).filter(|(_, s, _)| *s == 200).map(|(id, _, _)| id).collect();
    let records = read_topic(&topic, usize::MAX, Duration::from_secs(5));
    let on_kafka: std::collections::HashSet<&str> = records.iter().map(|r| r.headers["event_id"].as_str()).collect();
    let missing: Vec<&&String> = acknowledged.iter().filter(|id| !on_kafka.contains(id.as_str())).collect();
    assert!(missing.is_empty(), "acknowledged but not on Kafka: {missing:?}");
    gw.stop().await;
}
