//! Resident memory stays bounded under hundreds of concurrent near-limit bodies: each body's
//! bytes are reserved from `ingress.max_buffered_bytes` (32 MiB here) before it is read, so 300
//! bodies of ~1 MiB sent at once never make 300 MiB resident, and a body that finds no room
//! waits, unread, until there is some. Nothing acknowledged is lost.

use std::time::Duration;

use crate::common::*;

/// Peak resident memory of a process, MiB (`VmHWM`).
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_concurrent_near_limit_bodies_keep_memory_bounded() {
    const BODIES: usize = 300;
    const SIZE: usize = 1_000_000; // the limit is 1 048 576
    let (_dir, config) =
        shipped_with(&[("read_timeout_ms: 10000", "read_timeout_ms: 10000\n  max_buffered_bytes: 33554432")]);
    let (child, url, topic) = gateway_process_with(&config).await;
    let child = KillOnDrop(child);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let senders: Vec<_> = (0..BODIES)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let mut event = checkout(|e| e["data"]["object"]["metadata"]["order_id"] = format!("big-{i}").into());
                let len = serde_json::to_vec(&event).unwrap().len();
                event["data"]["object"]["metadata"]["pad"] = "x".repeat(SIZE - len - 10).into();
                let body = serde_json::to_vec(&event).unwrap();
                assert!(body.len() > SIZE - 100 && body.len() <= SIZE, "{}", body.len());
                let sig = stripe_header(SECRET, unix_now(), &body);
                // A body refused unread (503) ends its connection: the sender may see the reset
                // before the answer. Either way it is not acknowledged.
                let answer = match client.post(&url).header("stripe-signature", sig).body(body).send().await {
                    Ok(res) => Some(answer(res).await),
                    Err(e) => {
                        assert!(e.is_request(), "{e}");
                        None
                    }
                };
                (event["id"].as_str().unwrap().to_owned(), answer)
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    let mut overloaded = 0;
    for s in senders {
        let (id, answer) = s.await.unwrap();
        let Some(answer) = answer else {
            overloaded += 1;
            continue;
        };
        match (answer.status, answer.body["reason"].as_str()) {
            (200, _) => acknowledged.push(id),
            (503, Some("overloaded")) => {
                assert_eq!(answer.headers["retry-after"], "1", "a busy gateway says to try again soon");
                overloaded += 1;
            }
            (status, _) => panic!("{status}: {}", answer.body),
        }
    }
    let peak = peak_rss_mib(child.0.id());
    eprintln!("{} accepted, {overloaded} overloaded, peak RSS {peak} MiB", acknowledged.len());
    assert!(acknowledged.len() >= BODIES / 2, "only {} of {BODIES} accepted", acknowledged.len());
    // 300 bodies of ~1 MB were sent at once; the budget lets ~32 of them in at a time.
    assert!(peak < 192, "peak resident memory {peak} MiB");
    let records = read_topic_until(&topic, Duration::from_secs(15), |r| r.len() >= acknowledged.len());
    let on_kafka: std::collections::HashSet<&str> = records.iter().map(|r| r.headers["event_id"].as_str()).collect();
    assert!(acknowledged.iter().all(|id| on_kafka.contains(id.as_str())), "an acknowledged event is missing");
}

/// Kills the process when the test ends, passed or failed.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// With room for two bodies, a third waits, unread, until one of the two gives its room back
/// (here: times out with 408), and is then served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_waits_for_room_in_the_budget_then_is_served() {
    let budget = "read_timeout_ms: 1000\n  max_buffered_bytes: 2000000";
    let (_dir, path) = shipped_with(&[("read_timeout_ms: 10000", budget)]);
    let gw = start_with(&path, switchyard::app::Role::Ingress, &unique("payments"), &[]).await;
    let addr = gw.addr;
    let started = std::time::Instant::now();
    // Two bodies declared at 1 MB each take all the room and never finish.
    let holders: Vec<_> = (0..2)
        .map(|_| {
            tokio::task::spawn_blocking(move || {
                use std::io::{Read, Write};
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let head = "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{\"id\":";
                s.write_all(head.as_bytes()).unwrap();
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                out
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let body = serde_json::to_vec(&checkout(|_| {})).unwrap();
    let answer = post_signed(&gw.url("/webhooks/stripe"), &body).await;
    let waited = started.elapsed();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(waited >= Duration::from_millis(900), "served after {waited:?}, before any room was free");
    for h in holders {
        let out = h.await.unwrap();
        assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    }
    assert_eq!(read_topic(&gw.topic, 1, Duration::from_secs(5)).len(), 1);
    gw.stop().await;
}
