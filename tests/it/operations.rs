//! Operability: metrics move as traffic flows, the W3C trace id travels from the webhook
//! to the Kafka headers to the order service's call, and `switchyard tap` shows what a topic holds.

use std::time::{Duration, Instant};

use crate::common::*;
use switchyard::app::Role;

/// The value of the sample of `name` whose labels include every `labels` pair (0 if absent).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .filter(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn scrape(gw: &Gateway) -> String {
    let res = reqwest::get(gw.url("/metrics")).await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/plain; version=0.0.4");
    res.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_the_traffic() {
    let orders = OrderService::start(|s, _| (if s.path.ends_with("/dead") { 404 } else { 200 }, vec![])).await;
    let gw = start_for(&orders, Role::All).await;
    let before = scrape(&gw).await;
    let hook = gw.url("/webhooks/stripe");
    let ok = serde_json::to_vec(&checkout(|_| {})).unwrap();
    assert_eq!(post_signed(&hook, &ok).await.status, 200);
    let dead = serde_json::to_vec(&checkout(|e| e["data"]["object"]["metadata"]["order_id"] = "dead".into())).unwrap();
    assert_eq!(post_signed(&hook, &dead).await.status, 200);
    assert_eq!(post(&hook, &[("stripe-signature", "t=1,v1=00")], ok.clone()).await.status, 401);
    let schema_bad = serde_json::to_vec(&checkout(|e| e["created"] = "soon".into())).unwrap();
    assert_eq!(post_signed(&hook, &schema_bad).await.status, 422);
    orders.wait_for(2, Duration::from_secs(20)).await;

    // Counters, histograms and gauges all move; dispatch and lag show up once the dispatcher works.
    let deadline = Instant::now() + Duration::from_secs(15);
    let after = loop {
        let text = scrape(&gw).await;
        let dispatched = sample(&text, "switchyard_dispatch_attempts_total", &[("outcome", "success")]) >= 1.0
            && sample(&text, "switchyard_dead_letters_total", &[("reason", "http_status")]) >= 1.0
            && text.contains("switchyard_consumer_lag{");
        if dispatched || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let grew = |name: &str, labels: &[(&str, &str)]| sample(&after, name, labels) - sample(&before, name, labels);
    assert!(
        grew("switchyard_webhooks_total", &[("source", "stripe"), ("outcome", "accepted"), ("status", "200")]) >= 2.0
    );
    assert!(grew("switchyard_rejections_total", &[("source", "stripe"), ("reason", "signature")]) >= 1.0);
    assert!(grew("switchyard_rejections_total", &[("source", "stripe"), ("reason", "schema")]) >= 1.0);
    assert!(grew("switchyard_publish_duration_seconds_count", &[("source", "stripe")]) >= 2.0);
    assert!(after.contains("switchyard_publish_duration_seconds_bucket{"), "histogram buckets");
    assert!(
        sample(
            &after,
            "switchyard_dispatch_attempts_total",
            &[("rule", "mark_order_processing"), ("outcome", "success")]
        ) >= 1.0
    );
    assert!(
        sample(&after, "switchyard_dead_letters_total", &[("dispatcher", "order_service"), ("reason", "http_status")])
            >= 1.0
    );
    assert!(after.contains("switchyard_dispatch_in_flight{"));
    assert!(after.contains("switchyard_consumer_lag{"), "consumer lag per partition");
    assert!(after.lines().any(|l| l == "switchyard_log_lines_dropped_total 0"), "no log line dropped");
    // Every metric shown says what it counts.
    assert!(after.contains("# HELP switchyard_webhooks_total Webhooks answered, by source"), "{after}");
    for name in after.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()) {
        assert!(after.contains(&format!("# HELP {name} ")), "{name} has no HELP line:\n{after}");
    }
    // Bounded labels only: no order ids, event ids or secrets.
    for leak in ["12345", "evt_", SECRET, "dead\""] {
        assert!(!after.contains(leak), "metrics contain {leak}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_id_travels_from_the_webhook_to_the_order_service() {
    let orders = OrderService::start(|_, _| (200, vec![])).await;
    let gw = start_for(&orders, Role::All).await;
    let hook = gw.url("/webhooks/stripe");
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let with =
        serde_json::to_vec(&checkout(|e| e["data"]["object"]["metadata"]["order_id"] = "traced".into())).unwrap();
    let sig = stripe_header(SECRET, unix_now(), &with);
    assert_eq!(post(&hook, &[("stripe-signature", &sig), ("traceparent", incoming)], with).await.status, 200);
    let without =
        serde_json::to_vec(&checkout(|e| e["data"]["object"]["metadata"]["order_id"] = "fresh".into())).unwrap();
    assert_eq!(post_signed(&hook, &without).await.status, 200);

    let records = read_topic(&gw.topic, 2, Duration::from_secs(10));
    let traced = records.iter().find(|r| r.key.as_deref() == Some("traced")).unwrap();
    let on_kafka = &traced.headers["traceparent"];
    assert!(on_kafka.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{on_kafka}");
    assert_ne!(on_kafka, incoming, "the gateway is a new span of the same trace");

    let seen = orders.wait_for(2, Duration::from_secs(20)).await;
    let call = seen.iter().find(|s| s.path == "/orders/traced").unwrap();
    let on_call = &call.headers["traceparent"];
    assert!(on_call.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{on_call}");
    assert_ne!(on_call, on_kafka);

    // Without one, a fresh trace starts at the gateway and still reaches the call.
    let fresh = records.iter().find(|r| r.key.as_deref() == Some("fresh")).unwrap();
    let trace_id = fresh.headers["traceparent"].split('-').nth(1).unwrap().to_owned();
    let call = seen.iter().find(|s| s.path == "/orders/fresh").unwrap();
    assert_eq!(call.headers["traceparent"].split('-').nth(1).unwrap(), trace_id);
    gw.stop().await;
}

/// `switchyard tap` prints a topic's records as JSON lines (where, key, headers, value), from
/// the start; a topic that does not exist is named; with no topic and no config it says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tap_prints_a_topics_records_as_json_lines() {
    let topic = unique("tap");
    create_topic(&topic, 2);
    produce(&topic, &[payment("t-1", 0), payment("t-2", 0)]).await;
    let elsewhere = tempfile::tempdir().unwrap();
    let tap = |args: &[&str]| {
        let mut cmd = switchyard_command(&[&["tap", "--brokers", broker().bootstrap_servers()], args].concat(), &[]);
        cmd.current_dir(elsewhere.path()).output().unwrap()
    };
    let out = tap(&[&topic, "--count", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut records: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    records.sort_by_key(|r| r["key"].as_str().map(str::to_owned));
    assert_eq!(records.len(), 2, "{text}");
    for (r, order) in records.iter().zip(["t-1", "t-2"]) {
        assert!(text.lines().all(|l| l.starts_with(&format!("{{\"topic\":\"{topic}\",\"partition\":"))), "{text}");
        assert_eq!(r["key"], order, "{r}");
        assert!(r["offset"].is_u64() && r["partition"].is_u64() && r["timestamp_ms"].is_i64(), "{r}");
        assert_eq!(r["headers"]["event_id"], format!("evt_{order}#0"), "{r}");
        assert_eq!(r["value"]["order_id"], order, "{r}");
    }
    let missing = tap(&["no-such-topic", "--count", "1"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("topic 'no-such-topic' does not exist"), "{missing:?}");
    let nothing = tap(&[]);
    assert_eq!(nothing.status.code(), Some(1));
    let said = String::from_utf8_lossy(&nothing.stderr);
    assert!(
        said.contains("switchyard: no topics named, and no config at 'routes.yaml'") && said.contains("name them"),
        "{said}"
    );
}

/// `tap --exit` stops at the end each partition had when it started, empty partitions and empty
/// topics included, and prints every record before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tap_exit_stops_at_the_end() {
    let (topic, empty) = (unique("tap-end"), unique("tap-empty"));
    create_topic(&topic, 3);
    create_topic(&empty, 2);
    // Two records in three partitions: at least one partition has none.
    produce(&topic, &[payment("e-1", 0), payment("e-2", 0)]).await;
    let tap = |args: &[&str]| {
        let mut cmd = switchyard_command(&[&["tap", "--brokers", broker().bootstrap_servers()], args].concat(), &[]);
        let child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        let out = std::sync::Arc::new(std::sync::Mutex::new(None));
        let (waiter, id) = (out.clone(), child.id());
        std::thread::spawn(move || *waiter.lock().unwrap() = Some(child.wait_with_output().unwrap()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while out.lock().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = std::process::Command::new("kill").arg(id.to_string()).status();
                panic!("tap {args:?} did not stop at the end");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        out.lock().unwrap().take().unwrap()
    };
    let out = tap(&[&topic, "--exit"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut keys: Vec<String> =
        text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["key"].to_string()).collect();
    keys.sort();
    assert_eq!(keys, ["\"e-1\"", "\"e-2\""], "{text}");
    let out = tap(&["-e", &empty]);
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    let both = tap(&[&topic, "--exit", "--new"]);
    assert_eq!(both.status.code(), Some(2), "{both:?}");
    assert!(String::from_utf8_lossy(&both.stderr).contains("cannot be used with"), "{both:?}");
}
