//! `switchyard redrive`: dead letters go back to the dispatcher that gave up on them, once the
//! order service is fixed, and to it alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::*;
use serde_json::Value as Json;
use switchyard::app::Role;
use switchyard::pipeline::plan::{FOR_DISPATCHER, FOR_RULE};

const WAIT: Duration = Duration::from_secs(20);

/// Runs the built binary's `redrive` on `gw`'s topics, with the dispatchers' group as
/// `DISPATCH_GROUP`: its exit status, stdout and stderr.
async fn redrive(gw: &Gateway, group: &str, args: &[&str]) -> (bool, String, String) {
    redrive_with(gw, &[("DISPATCH_GROUP", group)], args).await
}

async fn redrive_with(gw: &Gateway, env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let mut vars = vec![("PAYMENTS_TOPIC", gw.topic.as_str()), ("PAYMENTS_DLQ_TOPIC", gw.dlq.as_str())];
    vars.extend_from_slice(env);
    run_redrive(&vars, args).await
}

/// The built binary's `redrive` with `args` and `env`: its exit status, stdout and stderr.
async fn run_redrive(env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["redrive"];
    all.extend_from_slice(args);
    let mut cmd = switchyard_command(&all, env);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("switchyard runs")).await.unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_go_back_to_their_dispatcher_once_the_service_is_fixed() {
    // The order service refuses every call (400: dead-lettered at once) until it is fixed.
    let broken = Arc::new(AtomicBool::new(true));
    let refusing = broken.clone();
    let orders =
        OrderService::start(move |_, _| (if refusing.load(Ordering::SeqCst) { 400 } else { 200 }, vec![])).await;
    let (url, group) = (orders.url(), unique("group"));
    let env = [("ORDER_SERVICE_URL", url.as_str()), ("DISPATCH_GROUP", group.as_str())];
    let gw = start_with(&repo().join("routes.yaml"), Role::Dispatch, &unique("payments"), &env).await;
    produce(&gw.topic, &[payment("a", 0), payment("b", 0), payment("a", 1)]).await;
    let dead = read_topic(&gw.dlq, 3, WAIT);
    assert_eq!(dead.len(), 3, "{dead:?}");
    assert!(dead.iter().all(|d| d.headers["switchyard.dlq.dispatcher"] == "order_service"), "{dead:?}");
    assert_eq!(orders.requests().len(), 3);

    broken.store(false, Ordering::SeqCst);
    let (ok, out, err) = redrive(&gw, &group, &["--dry-run"]).await;
    assert!(ok, "{out}{err}");
    let listed: Vec<&str> = out.lines().filter(|l| l.starts_with("partition=")).collect();
    assert_eq!(listed.len(), 3, "{out}");
    assert!(
        listed.iter().all(|l| l.contains("rule=mark_order_processing reason=http_status status=400 attempts=1")),
        "{out}"
    );
    assert!(out.contains("3 dead letter(s) of order_service") && out.contains("dry run"), "{out}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(orders.requests().len(), 3, "a dry run sends nothing");

    let (ok, out, err) = redrive(&gw, &group, &[]).await;
    assert!(ok, "{out}{err}");
    assert_eq!(out.lines().filter(|l| l.starts_with("-> partition=")).count(), 3, "{out}");
    assert!(
        out.contains(&format!("3 dead letter(s) of order_service in {} sent back to {}", gw.dlq, gw.topic)),
        "{out}"
    );
    let seen = orders.wait_for(6, WAIT).await;
    assert_eq!(seen.len(), 6, "{seen:?}");
    let again = &seen[3..];
    assert_eq!(sequences(again)["a"], vec![0, 1], "the key's order holds: {again:?}");
    assert_eq!(sequences(again)["b"], vec![0]);
    assert!(again.iter().all(|s| s.headers["idempotency-key"].starts_with("evt_")), "{again:?}");

    // Committed: the next run finds nothing, and nothing was dead-lettered again.
    let (ok, out, err) = redrive(&gw, &group, &[]).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("0 dead letter(s) of order_service"), "{out}");
    assert_eq!(read_topic(&gw.dlq, 4, Duration::from_millis(1500)).len(), 3);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_redrive_leaves_the_rest_for_the_next_run() {
    let orders = OrderService::start(|_, i| (if i < 3 { 400 } else { 200 }, vec![])).await;
    let (url, group) = (orders.url(), unique("group"));
    let env = [("ORDER_SERVICE_URL", url.as_str()), ("DISPATCH_GROUP", group.as_str())];
    let gw = start_with(&repo().join("routes.yaml"), Role::Dispatch, &unique("payments"), &env).await;
    produce(&gw.topic, &[payment("a", 0), payment("a", 1), payment("a", 2)]).await;
    assert_eq!(read_topic(&gw.dlq, 3, WAIT).len(), 3);

    let (ok, out, err) = redrive(&gw, &group, &["--limit", "2"]).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("2 dead letter(s)") && out.contains("more are waiting"), "{out}");
    assert_eq!(sequences(&orders.wait_for(5, WAIT).await[3..])["a"], vec![0, 1]);
    let (ok, out, err) = redrive(&gw, &group, &[]).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("1 dead letter(s)"), "{out}");
    assert_eq!(sequences(&orders.wait_for(6, WAIT).await[5..])["a"], vec![2]);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redrive_names_what_it_cannot_do() {
    let gw = start(Role::Ingress, &[]).await;
    let (ok, _, err) = redrive(&gw, "g", &["--dispatcher", "nope"]).await;
    assert!(!ok);
    assert!(err.contains("no dispatcher named 'nope' (the config has: order_service)"), "{err}");
    let (ok, _, err) = redrive(&gw, "g", &["--limit", "0"]).await;
    assert!(!ok);
    assert!(err.contains("--limit must be at least 1"), "{err}");
    // Nothing dead-lettered yet: the topic has no letters (here it does not even exist).
    let (ok, out, err) = run_redrive(&[("PAYMENTS_DLQ_TOPIC", &unique("never")), ("DISPATCH_GROUP", "g")], &[]).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("0 dead letter(s) of order_service"), "{out}");
    gw.stop().await;
}

/// A copy the broker does not take (here: the dispatcher's topic does not exist on a cluster
/// that creates none) fails the run, and its letter stays uncommitted for the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_letter_whose_copy_is_not_taken_stays_for_the_next_run() {
    let (dlq, missing, group) = (unique("letters"), unique("never-created"), unique("group"));
    create_topic(&dlq, 1);
    let (key, value) = payment("m", 0);
    let dead = [
        ("event_id", "evt_m"),
        ("switchyard.dlq.dispatcher", "order_service"),
        ("switchyard.dlq.reason", "http_status"),
    ];
    produce_with_headers(&dlq, &key, &value, &dead).await;
    let (_dir, config) = shipped_with(&[
        ("compression.type: lz4", "compression.type: lz4\n    allow.auto.create.topics: false"),
        ("publish_timeout_ms: 10000", "publish_timeout_ms: 1000"),
    ]);
    let config = config.to_str().unwrap();
    let env = [("PAYMENTS_TOPIC", missing.as_str()), ("PAYMENTS_DLQ_TOPIC", dlq.as_str()), ("DISPATCH_GROUP", &group)];
    let (ok, out, err) = run_redrive(&env, &["-c", config]).await;
    assert!(!ok, "{out}{err}");
    assert!(err.contains("what the letter at partition 0 offset 0 became was not taken"), "{err}");
    let (ok, out, err) = run_redrive(&env, &["-c", config, "--dry-run"]).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("1 dead letter(s) of order_service"), "still waiting: {out}");
}

/// Two dispatchers on one topic, sharing a dead-letter topic: `order_service` (rules
/// `mark_order_processing` and `notify`) and `audit`, whose calls all fail. A redriven event
/// addressed to `order_service`'s `notify` makes that one call; a plain event makes all three.
/// Redriving `order_service` passes over `audit`'s letter; redriving `audit` sends it to
/// `audit` alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redriven_event_is_for_its_dispatcher_and_rule_alone() {
    let more = r#"          max_elapsed_secs: 900
      - name: notify
        when: { event_type: payment_successful }
        request:
          method: POST
          url: ${ORDER_SERVICE_URL:-http://localhost:8081}/notify/{order_id}
  - name: audit
    topic: ${PAYMENTS_TOPIC:-payments}
    group: ${AUDIT_GROUP:-audit}
    dead_letter_topic: ${PAYMENTS_DLQ_TOPIC:-payments.dlq}
    rules:
      - name: audit_call
        when: { event_type: payment_successful }
        request:
          method: POST
          url: ${ORDER_SERVICE_URL:-http://localhost:8081}/audit/{order_id}
"#;
    let (_dir, config) = shipped_with(&[("          max_elapsed_secs: 900\n", more)]);
    let orders = OrderService::start(|s, _| (if s.path.starts_with("/audit/") { 400 } else { 200 }, vec![])).await;
    let (url, group, audit) = (orders.url(), unique("group"), unique("audit"));
    let env = [("ORDER_SERVICE_URL", url.as_str()), ("DISPATCH_GROUP", group.as_str()), ("AUDIT_GROUP", &audit)];
    let gw = start_with(&config, Role::Dispatch, &unique("payments"), &env).await;

    let (key, value) = payment("r", 0);
    let redriven = [(FOR_DISPATCHER, "order_service"), (FOR_RULE, "notify"), ("event_id", "evt_r")];
    produce_with_headers(&gw.topic, &key, &value, &redriven).await;
    let (key, value) = payment("p", 0);
    produce_with_headers(&gw.topic, &key, &value, &[("event_id", "evt_p")]).await;
    orders.wait_for(4, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut paths: Vec<String> = orders.requests().into_iter().map(|s| s.path).collect();
    paths.sort();
    assert_eq!(paths, ["/audit/p", "/notify/p", "/notify/r", "/orders/p"]);

    let dead = read_topic(&gw.dlq, 1, WAIT);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].headers["switchyard.dlq.dispatcher"], "audit");
    let env = [("DISPATCH_GROUP", group.as_str()), ("AUDIT_GROUP", audit.as_str())];
    let config = config.to_str().unwrap();
    let (ok, out, err) = redrive_with(&gw, &env, &["-c", config, "--dispatcher", "order_service"]).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("0 dead letter(s) of order_service") && out.contains("; 1 of other dispatchers passed over"),
        "{out}"
    );
    let (ok, out, err) = redrive_with(&gw, &env, &["-c", config, "--dispatcher", "audit"]).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("1 dead letter(s) of audit"), "{out}");
    orders.wait_for(5, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again: Vec<String> = orders.requests()[4..].iter().map(|s| s.path.clone()).collect();
    assert_eq!(again, ["/audit/p"], "audit alone, once");
    gw.stop().await;
}

async fn produce_with_headers(topic: &str, key: &str, value: &Json, headers: &[(&str, &str)]) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", broker().bootstrap_servers()).create().unwrap();
    let mut kafka_headers = OwnedHeaders::new();
    for (k, v) in headers {
        kafka_headers = kafka_headers.insert(Header { key: k, value: Some(*v) });
    }
    let payload = serde_json::to_vec(value).unwrap();
    let record = FutureRecord::to(topic).key(key).payload(&payload).headers(kafka_headers);
    producer.send(record, Duration::from_secs(5)).await.expect("produced");
}
