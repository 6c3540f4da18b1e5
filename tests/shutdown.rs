//! SIGTERM under load: the gateway stops accepting, finishes the webhooks in flight and their
//! publishes, flushes, and exits 0 within 15 s — and every webhook answered 200 is on Kafka.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_load_exits_0_and_loses_nothing_acknowledged() {
    let topic = unique("payments");
    create_topic(&topic, PARTITIONS);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = spawn_switchyard(
        &["serve", "--role", "ingress", "-c", "routes.yaml", "--listen", &listen],
        &[("PAYMENTS_TOPIC", &topic)],
    );
    let url = format!("http://{listen}/webhooks/stripe");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(Instant::now() < deadline, "gateway did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Four senders in a loop until the gateway goes away.
    let mut senders = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        senders.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut acknowledged = Vec::new();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(20) {
                let event = checkout(|_| {});
                let body = serde_json::to_vec(&event).unwrap();
                let sig = stripe_header(SECRET, unix_now(), &body);
                let sent = client.post(&url).header("stripe-signature", sig).body(body).send().await;
                match sent {
                    Ok(res) if res.status() == 200 => acknowledged.push(event["id"].as_str().unwrap().to_owned()),
                    Ok(res) => assert!(res.status() == 503, "unexpected {}", res.status()),
                    Err(_) => break, // the listener is closed: shutdown began
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let term_at = Instant::now();
    assert!(std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    let took = term_at.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}");

    let mut acknowledged = Vec::new();
    for s in senders {
        acknowledged.extend(s.await.unwrap());
    }
    assert!(acknowledged.len() > 10, "only {} webhooks before SIGTERM", acknowledged.len());
    let records = read_topic(&topic, acknowledged.len(), Duration::from_secs(15));
    let on_kafka: std::collections::HashSet<&str> = records.iter().map(|r| r.headers["event_id"].as_str()).collect();
    let missing: Vec<&String> = acknowledged.iter().filter(|id| !on_kafka.contains(id.as_str())).collect();
    eprintln!("{} acknowledged, {} on Kafka, exit after {took:?}", acknowledged.len(), records.len());
    assert!(missing.is_empty(), "acknowledged but not on Kafka: {missing:?}");
}
