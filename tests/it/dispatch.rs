//! Issue 3: the dispatcher against a real local HTTP server playing the order service, with
//! the shipped dispatch rule, on the embedded broker.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::*;
use serde_json::json;
use switchyard::app::Role;

const WAIT: Duration = Duration::from_secs(20);

async fn dispatcher(orders: &OrderService, topic: &str) -> Gateway {
    let (url, group) = (orders.url(), unique("group"));
    start_with(
        &repo().join("routes.yaml"),
        Role::Dispatch,
        topic,
        &[("ORDER_SERVICE_URL", &url), ("DISPATCH_GROUP", &group)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_checkout_ends_as_the_exact_patch_on_the_order_service() {
    let orders = OrderService::start(|_, _| (200, vec![])).await;
    let gw = start_for(&orders, Role::All).await;
    let event = checkout(|_| {});
    let res = post_signed(&gw.url("/webhooks/stripe"), &serde_json::to_vec(&event).unwrap()).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let seen = orders.wait_for(1, WAIT).await;
    assert_eq!(seen.len(), 1);
    let call = &seen[0];
    assert_eq!(call.method, "PATCH");
    assert_eq!(call.path, "/orders/12345");
    assert_eq!(call.headers["content-type"], "application/json");
    assert_eq!(call.headers["idempotency-key"], event["id"].as_str().unwrap());
    assert!(!call.headers.contains_key("authorization"), "no token configured");
    assert_eq!(
        call.body,
        json!({"order_status": "processing", "transaction_id": "ABC123XYZ", "payment_amount": 100.0,
               "currency": "USD", "payment_method": "Credit Card", "paid_at": "2023-11-06T14:30:00Z"})
    );
    // Exactly once here: nothing more arrives.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(orders.requests().len(), 1);
    gw.stop().await;
}

/// A dispatcher-only process still answers the operational endpoints (a container's health
/// check, readiness, Prometheus's scrape of its lag and attempts), and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_only_process_serves_health_readiness_and_metrics() {
    let orders = OrderService::start(|_, _| (200, vec![])).await;
    let topic = unique("payments");
    let gw = dispatcher(&orders, &topic).await;
    produce(&topic, &[payment("ops-1", 0)]).await;
    orders.wait_for(1, WAIT).await;
    let get = |path: &str| {
        let url = gw.url(path);
        async move {
            let res = reqwest::get(url).await.expect("the dispatcher listens");
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    assert_eq!(get("/healthz").await.0, 200);
    let (status, ready) = get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    // The attempt is counted when the answer is back, just after the order service saw the
    // call; the lag comes with librdkafka's periodic statistics.
    let attempts = r#"switchyard_dispatch_attempts_total{dispatcher="order_service",rule="mark_order_processing",outcome="success"}"#;
    // Recorded for every attempt; the recorder is the process's, so this binary's other tests
    // add their calls to the count.
    let took =
        r#"switchyard_dispatch_duration_seconds_count{dispatcher="order_service",rule="mark_order_processing"} "#;
    let lag = "switchyard_consumer_lag{";
    let deadline = std::time::Instant::now() + WAIT;
    let metrics = loop {
        let (status, metrics) = get("/metrics").await;
        assert_eq!(status, 200);
        if (metrics.contains(attempts) && metrics.contains(lag)) || std::time::Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(metrics.contains(attempts), "{metrics}");
    assert!(metrics.contains(took), "{metrics}");
    assert!(metrics.contains(lag), "{metrics}");
    let refused = post_signed(&gw.url("/webhooks/stripe"), &serde_json::to_vec(&checkout(|_| {})).unwrap()).await;
    assert_eq!(refused.status, 404, "{}", refused.body);
    assert!(refused.body["message"].as_str().unwrap().contains("only the dispatcher"), "{}", refused.body);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_5xx_then_200_is_four_attempts_with_backoff() {
    let orders = OrderService::start(|_, i| (if i < 3 { 503 } else { 200 }, vec![])).await;
    let topic = unique("payments");
    let gw = dispatcher(&orders, &topic).await;
    produce(&topic, &[payment("ord-1", 0)]).await;
    let seen = orders.wait_for(4, WAIT).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let seen_after = orders.requests();
    assert_eq!(seen_after.len(), 4, "exactly four attempts: {seen:?}");
    // Full jitter: each gap is at most its ceiling (200, 400, 800 ms), which doubles.
    for (i, pair) in seen_after.windows(2).enumerate() {
        let gap = pair[1].at - pair[0].at;
        let ceiling = Duration::from_millis(200 << i) + Duration::from_millis(250);
        assert!(gap <= ceiling, "gap {i} was {gap:?}, over {ceiling:?}");
    }
    assert!(seen_after.iter().all(|s| s.path == "/orders/ord-1"));
    assert_empty(&gw.dlq);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_is_dead_lettered_at_once_and_later_events_still_flow() {
    let orders = OrderService::start(|s, _| match s.path.ends_with("/bad") {
        true => (400, vec![("x-test-body".into(), "{\"error\":\n  \"order is cancelled\"}\n".into())]),
        false => (200, vec![]),
    })
    .await;
    let topic = unique("payments");
    let gw = dispatcher(&orders, &topic).await;
    produce(&topic, &[payment("bad", 0), payment("bad", 1), payment("good", 0)]).await;
    let dead = read_topic(&gw.dlq, 2, WAIT);
    assert_eq!(dead.len(), 2, "{dead:?}");
    let d = &dead[0];
    assert_eq!(d.key.as_deref(), Some("bad"));
    assert_eq!(d.value["transaction_id"], "bad#0");
    assert_eq!(d.headers["event_id"], "evt_bad#0");
    assert_eq!(d.headers["switchyard.dlq.status"], "400");
    assert_eq!(
        d.headers["switchyard.dlq.error"], r#"HTTP 400: {"error": "order is cancelled"}"#,
        "the service's answer, on one line"
    );
    assert_eq!(d.headers["switchyard.dlq.reason"], "http_status");
    assert_eq!(d.headers["switchyard.dlq.attempts"], "1");
    assert_eq!(d.headers["switchyard.dlq.rule"], "mark_order_processing");
    assert_eq!(d.headers["switchyard.dlq.topic"], topic);
    assert_eq!(d.headers["switchyard.dlq.offset"], "0");
    assert_eq!(dead[1].value["transaction_id"], "bad#1", "the key's next event is processed after it");
    let seen = orders.wait_for(3, WAIT).await;
    let bad_calls = seen.iter().filter(|s| s.path == "/orders/bad").count();
    assert_eq!(bad_calls, 2, "one attempt each, no retry");
    assert!(seen.iter().any(|s| s.path == "/orders/good"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_listed_in_done_on_count_as_done() {
    // The order service answers a repeated call with 409: at-least-once delivery repeats some.
    let orders = OrderService::start(|s, _| (if s.path.ends_with("/dup") { 409 } else { 200 }, vec![])).await;
    let (_dir, path) = shipped_with(&[("max_elapsed_secs: 900", "max_elapsed_secs: 900\n          done_on: [409]")]);
    let (topic, group, url) = (unique("payments"), unique("group"), orders.url());
    let gw =
        start_with(&path, Role::Dispatch, &topic, &[("ORDER_SERVICE_URL", &url), ("DISPATCH_GROUP", &group)]).await;
    produce(&topic, &[payment("dup", 0), payment("dup", 1), payment("fine", 0)]).await;
    assert!(orders.wait_for_all(&["dup", "fine"], 1, WAIT).await);
    assert!(orders.wait_for_all(&["dup"], 2, WAIT).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(orders.requests().len(), 3, "one call each: a 409 is not retried");
    assert_empty(&gw.dlq);
    gw.stop().await;
}

/// A service that answers 404 until it knows the order: with `retry_on: [404]` the call is
/// tried again (not dead-lettered at once), and a 404 that never ends is `retries_exhausted`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_listed_in_retry_on_are_retried() {
    let orders = OrderService::start(|s, i| match s.path.ends_with("/late") && i < 2 {
        true => (404, vec![]),
        false => (if s.path.ends_with("/never") { 404 } else { 200 }, vec![]),
    })
    .await;
    let (_dir, path) = shipped_with(&[
        ("initial_delay_ms: 200", "initial_delay_ms: 50"),
        ("max_elapsed_secs: 900", "max_elapsed_secs: 2\n          retry_on: [404]"),
    ]);
    let (topic, group, url) = (unique("payments"), unique("group"), orders.url());
    let gw =
        start_with(&path, Role::Dispatch, &topic, &[("ORDER_SERVICE_URL", &url), ("DISPATCH_GROUP", &group)]).await;
    produce(&topic, &[payment("late", 0)]).await;
    let seen = orders.wait_for(3, WAIT).await;
    assert_eq!(seen.iter().filter(|s| s.path == "/orders/late").count(), 3, "two 404s, then 200: {seen:?}");
    produce(&topic, &[payment("never", 0)]).await;
    let dead = read_topic(&gw.dlq, 1, WAIT);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].key.as_deref(), Some("never"));
    assert_eq!(dead[0].headers["switchyard.dlq.reason"], "retries_exhausted");
    assert_eq!(dead[0].headers["switchyard.dlq.status"], "404");
    assert!(orders.requests().iter().filter(|s| s.path == "/orders/never").count() > 1, "retried");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_reuse_the_connection_when_the_service_answers_with_a_body() {
    // An order service that returns the updated order, as most do: unless its body is read,
    // every call needs a new connection (and, over HTTPS, a new handshake).
    let order = format!("{{\"order_status\":\"processing\",\"lines\":\"{}\"}}", "x".repeat(2000));
    let orders = OrderService::start(move |_, _| (200, vec![("x-test-body".into(), order.clone())])).await;
    let topic = unique("payments");
    let gw = dispatcher(&orders, &topic).await;
    let events: Vec<_> = (0..8).map(|seq| payment("one-key", seq)).collect();
    produce(&topic, &events).await;
    assert!(orders.wait_for_all(&["one-key"], 8, WAIT).await);
    // The calls of one key go one after another, so kept-alive connections carry them: the
    // second call may open a second one, as the client's pool takes the first back only once
    // its task has seen the answer end; from then on the two alternate.
    let connections = orders.connections.load(Ordering::SeqCst);
    assert!(connections <= 2, "{connections} connections for 8 calls");
    gw.stop().await;
}

/// A backlog of ten events for ten keys (which could all go at once) reaches a service that
/// takes 20 calls a second at 50 ms spacing, all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_calls_per_second_spaces_the_calls_of_a_backlog() {
    let orders = OrderService::start(|_, _| (200, vec![])).await;
    let (_dir, config) =
        shipped_with(&[("    max_in_flight: 64\n", "    max_in_flight: 64\n    max_calls_per_second: 20\n")]);
    let (url, group) = (orders.url(), unique("group"));
    let env = [("ORDER_SERVICE_URL", url.as_str()), ("DISPATCH_GROUP", group.as_str())];
    let topic = unique("payments");
    create_topic(&topic, PARTITIONS);
    let backlog: Vec<_> = (0..10).map(|i| payment(&format!("k{i}"), 0)).collect();
    produce(&topic, &backlog).await;
    let gw = start_with(&config, Role::Dispatch, &topic, &env).await;
    let seen = orders.wait_for(10, WAIT).await;
    assert_eq!(seen.len(), 10);
    let span = seen[9].at - seen[0].at;
    assert!(span >= Duration::from_millis(400), "ten calls at 20/s span at least 450 ms, took {span:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_one_key_arrive_in_publish_order() {
    // A slow service, so that keys overlap in time.
    let orders = OrderService::start(|_, i| (200, delay(if i % 3 == 0 { 30 } else { 5 }))).await;
    let topic = unique("payments");
    let gw = dispatcher(&orders, &topic).await;
    let keys = ["k-a", "k-b", "k-c", "k-d"];
    let events: Vec<_> = (0..6).flat_map(|seq| keys.iter().map(move |k| payment(k, seq))).collect();
    produce(&topic, &events).await;
    let seen = orders.wait_for(24, WAIT).await;
    assert_eq!(seen.len(), 24);
    for (key, seqs) in sequences(&seen) {
        assert_eq!(seqs, (0..6).collect::<Vec<_>>(), "order of {key}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_characters_stay_in_one_path_segment() {
    let orders = OrderService::start(|_, _| (200, vec![])).await;
    let topic = unique("payments");
    let gw = dispatcher(&orders, &topic).await;
    let events = [payment("A/B 7?x", 0), payment("../admin#frag", 0), payment("@evil.example:80", 0), payment("..", 0)];
    produce(&topic, &events).await;
    let seen = orders.wait_for(3, WAIT).await;
    let mut paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    paths.sort();
    assert_eq!(paths, ["/orders/%40evil.example%3A80", "/orders/..%2Fadmin%23frag", "/orders/A%2FB%207%3Fx"]);
    // ".." would be resolved away by URL parsers: never sent, dead-lettered instead.
    let dead = read_topic(&gw.dlq, 1, WAIT);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].headers["switchyard.dlq.reason"], "unroutable");
    assert_eq!(dead[0].key.as_deref(), Some(".."));
    // Every call went to the configured host.
    assert!(seen.iter().all(|s| s.headers["host"] == orders.addr.to_string()));
    gw.stop().await;
}

/// A record another producer could write onto the topic: key, raw value, headers.
type RawRecord<'a> = (&'a str, Option<&'a [u8]>, Vec<(&'a str, &'a [u8])>);

async fn produce_raw(topic: &str, records: &[RawRecord<'_>]) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", broker().bootstrap_servers()).create().unwrap();
    for (key, value, headers) in records {
        let mut owned = OwnedHeaders::new();
        for (k, v) in headers {
            owned = owned.insert(Header { key: k, value: Some(*v) });
        }
        let mut record = FutureRecord::to(topic).key(*key).headers(owned);
        if let Some(v) = value {
            record = record.payload(*v);
        }
        producer.send(record, Duration::from_secs(5)).await.expect("produced");
    }
}

/// Records that are no event of the routes are dead-lettered with the reason, and counted; an
/// event no rule takes makes no call and no dead letter, and is counted as unmatched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_the_routes_never_publish_are_dead_lettered_with_the_reason_and_counted() {
    let orders = OrderService::start(|_, _| (200, vec![])).await;
    let topic = unique("payments");
    let gw = dispatcher(&orders, &topic).await;
    let good = serde_json::to_vec(&payment("fine", 0).1).unwrap();
    let mut numeric = payment("x", 0).1;
    numeric["order_id"] = json!(12345);
    numeric["payment_amount"] = json!("lots");
    let numeric = serde_json::to_vec(&numeric).unwrap();
    // A producer upgraded before this dispatcher may add a property: not refused.
    let mut added = payment("added", 0).1;
    added["loyalty_points"] = json!(120);
    let added = serde_json::to_vec(&added).unwrap();
    // An event no rule takes is done without a call or a dead letter, and counted.
    let mut failed = payment("failed", 0).1;
    failed["event_type"] = json!("payment_failed");
    let failed = serde_json::to_vec(&failed).unwrap();
    let typed = |id: &'static [u8]| vec![("event_type", &b"payment_successful"[..]), ("event_id", id)];
    produce_raw(
        &topic,
        &[
            ("not-json", Some(b"not json"), typed(b"evt_1")),
            ("array", Some(b"[1, 2]"), typed(b"evt_2")),
            ("no-value", None, typed(b"evt_3")),
            ("numeric", Some(&numeric), typed(b"evt_4")),
            ("binary-id", Some(&good), typed(b"\xff\xfe")),
            ("fine", Some(&good), typed(b"evt_6")),
            ("added", Some(&added), typed(b"evt_7")),
            ("failed", Some(&failed), typed(b"evt_8")),
        ],
    )
    .await;
    let dead = read_topic(&gw.dlq, 5, WAIT);
    let by_key = |k: &str| dead.iter().find(|d| d.key.as_deref() == Some(k)).unwrap_or_else(|| panic!("{k}: {dead:?}"));
    let says = |k: &str, reason: &str, rule: &str, error: &str| {
        let h = &by_key(k).headers;
        assert_eq!((h["switchyard.dlq.reason"].as_str(), h["switchyard.dlq.rule"].as_str()), (reason, rule), "{k}");
        assert!(h["switchyard.dlq.error"].contains(error), "{k}: {}", h["switchyard.dlq.error"]);
    };
    says("not-json", "unroutable", "", "value is not JSON");
    says("array", "unroutable", "", "value is not a JSON object");
    says("no-value", "unroutable", "", "value is not JSON");
    says(
        "numeric",
        "schema",
        "mark_order_processing",
        "the event does not match the dispatcher's schema 'schemas/payment_successful.schema.json': /order_id: value is \
         not of type \"string\"; /payment_amount: value is not of type \"number\"",
    );
    says("binary-id", "unroutable", "mark_order_processing", "the Kafka header 'event_id' is not UTF-8 text");
    // Only the valid events made a call, and every dead letter is counted.
    let seen = orders.wait_for(2, WAIT).await;
    let mut paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    paths.sort();
    assert_eq!(paths, ["/orders/added", "/orders/fine"]);
    assert_eq!(dead.len(), 5, "{dead:?}");
    let metrics = reqwest::get(gw.url("/metrics")).await.unwrap().text().await.unwrap();
    let counted = |labels: &str| {
        let line = metrics.lines().find(|l| l.starts_with("switchyard_dead_letters_total{") && l.contains(labels));
        line.and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).unwrap_or(0.0)
    };
    assert!(counted(r#"rule="",reason="unroutable""#) >= 3.0, "{metrics}");
    assert!(counted(r#"rule="mark_order_processing",reason="schema""#) >= 1.0, "{metrics}");
    let unmatched = r#"switchyard_dispatch_unmatched_total{dispatcher="order_service"} 1"#;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut metrics = String::new();
    while !metrics.lines().any(|l| l == unmatched) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        metrics = reqwest::get(gw.url("/metrics")).await.unwrap().text().await.unwrap();
    }
    assert!(metrics.lines().any(|l| l == unmatched), "{metrics}");
    assert_eq!(orders.requests().len(), 2, "no call for the event no rule takes");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_in_one_group_share_the_work_and_keep_order_across_the_rebalance() {
    let orders = OrderService::start(|_, _| (200, delay(10))).await;
    let topic = unique("payments");
    let group = unique("group");
    let url = orders.url();
    let env = [("ORDER_SERVICE_URL", url.as_str()), ("DISPATCH_GROUP", group.as_str())];
    let config = repo().join("routes.yaml");
    let first = start_with(&config, Role::Dispatch, &topic, &env).await;
    let second = start_with(&config, Role::Dispatch, &topic, &env).await;
    let keys: Vec<String> = (0..8).map(|k| format!("key-{k}")).collect();
    let batch = |range: std::ops::Range<usize>| -> Vec<_> {
        range.flat_map(|seq| keys.iter().map(move |k| payment(k, seq))).collect()
    };
    produce(&topic, &batch(0..10)).await;
    orders.wait_for(30, WAIT).await;
    // One member leaves mid-stream: the other takes its partitions.
    first.stop().await;
    produce(&topic, &batch(10..20)).await;
    orders.wait_for_all(&keys, 20, Duration::from_secs(40)).await;
    let seen = orders.requests();
    let mut duplicates = 0;
    for (key, seqs) in sequences(&seen) {
        // First deliveries come in publish order; a redelivery repeats an earlier event.
        let mut first_seen = Vec::new();
        for n in &seqs {
            if first_seen.contains(n) {
                duplicates += 1;
            } else {
                first_seen.push(*n);
            }
        }
        assert_eq!(first_seen, (0..20).collect::<Vec<_>>(), "order of {key}: {seqs:?}");
    }
    // A graceful leave drains and commits before handing over, so redeliveries are rare; when
    // the broker refuses that commit mid-rebalance, at most one auto-commit interval (1 s of
    // this test's ~100 calls/s, across both members) is replayed.
    eprintln!("{duplicates} duplicates after the rebalance");
    assert!(duplicates <= 40, "{duplicates} redelivered after a graceful rebalance: {:?}", sequences(&seen));
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_stuck_in_retries_does_not_stall_other_keys() {
    let orders = OrderService::start(|s, _| (if s.path.ends_with("/stuck") { 503 } else { 200 }, vec![])).await;
    let topic = unique("payments");
    let gw = dispatcher(&orders, &topic).await;
    let mut events = vec![payment("stuck", 0)];
    events.extend((0..5).flat_map(|seq| ["free-a", "free-b", "free-c"].map(|k| payment(k, seq))));
    produce(&topic, &events).await;
    let deadline = std::time::Instant::now() + WAIT;
    while sequences(&orders.requests()).iter().filter(|(k, s)| k.starts_with("free") && s.len() == 5).count() < 3 {
        assert!(std::time::Instant::now() < deadline, "free keys stalled: {:?}", sequences(&orders.requests()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stuck_attempts = orders.requests().iter().filter(|s| s.path == "/orders/stuck").count();
    assert!(stuck_attempts >= 1, "the stuck key is still being retried");
    assert_empty(&gw.dlq);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_stays_down_gets_the_event_dead_lettered_without_the_query_in_the_error() {
    let addr = free_address();
    let (_dir, path) = shipped_with(&[
        ("          timeout_ms: 10000", "          timeout_ms: 300\n          query: { api_key: \"${ORDERS_KEY}\" }"),
        ("max_elapsed_secs: 900", "max_elapsed_secs: 1"),
    ]);
    let (topic, group, url) = (unique("payments"), unique("group"), format!("http://{addr}"));
    let env = [("ORDER_SERVICE_URL", url.as_str()), ("DISPATCH_GROUP", &group), ("ORDERS_KEY", "k-s3cret")];
    let gw = start_with(&path, Role::Dispatch, &topic, &env).await;
    produce(&topic, &[payment("down", 0)]).await;
    let dead = read_topic(&gw.dlq, 1, WAIT);
    assert_eq!(dead.len(), 1);
    let h = &dead[0].headers;
    assert_eq!(h["switchyard.dlq.reason"], "retries_exhausted");
    let error = &h["switchyard.dlq.error"];
    assert!(error.contains(&format!("PATCH http://{addr}/orders/down: error sending request")), "{error}");
    assert!(error.to_lowercase().contains("connect"), "{error}");
    assert!(!error.contains("s3cret"), "the query may carry a key: {error}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_service_down_failing_and_slow_for_a_while_gets_everything_in_order() {
    // The service's port is reserved now but nothing listens yet: connection refused.
    let addr = free_address();
    let (_dir, path) = shipped_with(&[("timeout_ms: 10000", "timeout_ms: 300")]);
    let topic = unique("payments");
    let url = format!("http://{addr}");
    let group = unique("group");
    let gw =
        start_with(&path, Role::Dispatch, &topic, &[("ORDER_SERVICE_URL", &url), ("DISPATCH_GROUP", &group)]).await;
    let keys = ["o-1", "o-2", "o-3", "o-4"];
    let events: Vec<_> = (0..3).flat_map(|seq| keys.map(|k| payment(k, seq))).collect();
    produce(&topic, &events).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Then it answers 503 for a second, then times out (600 ms > the 300 ms call timeout)
    // for a second, then works.
    let up = std::time::Instant::now();
    let orders = OrderService::start_on(addr, move |_, _| match up.elapsed().as_millis() {
        0..1000 => (503, vec![]),
        1000..2000 => (200, delay(600)),
        _ => (200, vec![]),
    })
    .await;
    let all = orders.wait_for_all(&keys, 3, Duration::from_secs(40)).await;
    // The calls the service saw succeed (after it recovered) come in publish order per key.
    let succeeded: Vec<Seen> =
        orders.requests().into_iter().filter(|s| s.at.duration_since(up) >= Duration::from_millis(2000)).collect();
    for (key, seqs) in sequences(&succeeded) {
        let mut first = Vec::new();
        for n in seqs {
            if !first.contains(&n) {
                first.push(n);
            }
        }
        assert!(first.windows(2).all(|w| w[0] < w[1]), "order of {key}: {first:?}");
    }
    assert!(all, "not everything delivered: {:?}", sequences(&orders.requests()));
    assert_empty(&gw.dlq);
    gw.stop().await;
}

/// Calls that cannot finish (the order service answers 503 throughout) are abandoned when the
/// grace period ends, and the dispatcher is gone then: leaving the group does not wait for
/// them a second time. Nothing of theirs is committed, so the group's next member delivers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_that_cannot_finish_are_abandoned_within_the_grace_period_and_redelivered() {
    let (topic, group) = (unique("payments"), unique("group"));
    let member = |orders: &OrderService| {
        let env = [("ORDER_SERVICE_URL", orders.url()), ("DISPATCH_GROUP", group.clone())];
        let topic = topic.clone();
        async move {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            start_with(&repo().join("routes.yaml"), Role::Dispatch, &topic, &env).await
        }
    };
    let failing = OrderService::start(|_, _| (503, vec![])).await;
    let gw = member(&failing).await;
    produce(&topic, &[payment("stuck-a", 0), payment("stuck-b", 0)]).await;
    assert!(failing.wait_for(2, WAIT).await.len() >= 2, "both calls were tried");
    let stopping = std::time::Instant::now();
    gw.stop().await;
    // The grace period of these gateways is 5 s; waiting for the abandoned calls again on the
    // way out of the group took 5 s more.
    let took = stopping.elapsed();
    assert!(took < Duration::from_millis(8_500), "stopping took {took:?}");

    let orders = OrderService::start(|_, _| (200, vec![])).await;
    let gw = member(&orders).await;
    assert!(orders.wait_for_all(&["stuck-a", "stuck-b"], 1, WAIT).await, "{:?}", sequences(&orders.requests()));
    gw.stop().await;
}

/// With `sign:`, every call carries a Standard Webhooks signature the service can check with
/// its own copy of the secret (computed here by hand, as a receiver would): over the body as
/// it arrived, signed at each attempt's own time, under one `webhook-id` for all of them.
/// The secret's second value (a rotation) signs too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_calls_carry_a_standard_webhooks_signature_the_service_can_check() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let orders = OrderService::start(|_, i| (if i < 1 { 503 } else { 200 }, vec![])).await;
    let (topic, group) = (unique("payments"), unique("group"));
    let sign = "          bearer_token: ${ORDER_SERVICE_TOKEN:-}
          sign: { kind: standard-webhooks, secrets: [\"${ORDERS_SIGNING_SECRET}\", \"${ORDERS_SIGNING_SECRET_NEXT}\"] }";
    let (_dir, config) = shipped_with(&[("          bearer_token: ${ORDER_SERVICE_TOKEN:-}", sign)]);
    let (secret, next) = ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2Vjb25kLXNpZ25pbmctc2VjcmV0LTEyMzQ1Ng==");
    let url = orders.url();
    let env = [
        ("ORDER_SERVICE_URL", url.as_str()),
        ("DISPATCH_GROUP", group.as_str()),
        ("ORDERS_SIGNING_SECRET", secret),
        ("ORDERS_SIGNING_SECRET_NEXT", next),
    ];
    let gw = start_with(&config, Role::Dispatch, &topic, &env).await;
    produce(&topic, &[payment("ord-s", 0)]).await;
    let seen = orders.wait_for(2, WAIT).await;
    assert_eq!(seen.len(), 2, "a 503, then the retry: {seen:?}");
    let ids: Vec<&str> = seen.iter().map(|s| s.headers["webhook-id"].as_str()).collect();
    assert!(ids[0].starts_with("msg_") && ids[0] == ids[1], "one id for every attempt: {ids:?}");
    for call in &seen {
        let (id, t) = (&call.headers["webhook-id"], &call.headers["webhook-timestamp"]);
        let t: i64 = t.parse().unwrap();
        assert!((unix_now() - t).abs() <= 5, "signed at send time: {t}");
        let signed = [id.as_bytes(), b".", t.to_string().as_bytes(), b".", &call.raw].concat();
        let expected: Vec<String> = [secret, next]
            .iter()
            .map(|s| {
                let key = b64.decode(s.trim_start_matches("whsec_")).unwrap();
                let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key);
                format!("v1,{}", b64.encode(aws_lc_rs::hmac::sign(&key, &signed)))
            })
            .collect();
        assert_eq!(call.headers["webhook-signature"], expected.join(" "));
        assert_eq!(call.body["order_status"], "processing");
    }
    assert_empty(&gw.dlq);
    gw.stop().await;
}

/// `sign: { kind: basic }`: calls to a service behind HTTP Basic authentication carry the
/// first credentials, in place of the rule's bearer token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_service_behind_basic_authentication_carry_its_credentials() {
    use base64::Engine;
    let orders = OrderService::start(|_, _| (200, vec![])).await;
    let (topic, group) = (unique("payments"), unique("group"));
    let sign = "          bearer_token: ${ORDER_SERVICE_TOKEN:-}
          sign: { kind: basic, secrets: [\"switchyard:${ORDERS_PASSWORD}\", \"${ORDERS_OLD_CREDENTIALS:-}\"] }";
    let (_dir, config) = shipped_with(&[("          bearer_token: ${ORDER_SERVICE_TOKEN:-}", sign)]);
    let url = orders.url();
    let env = [
        ("ORDER_SERVICE_URL", url.as_str()),
        ("DISPATCH_GROUP", group.as_str()),
        ("ORDER_SERVICE_TOKEN", "a-bearer-token-the-basic-credentials-replace"),
        ("ORDERS_PASSWORD", "pässword-0123456789"),
    ];
    let gw = start_with(&config, Role::Dispatch, &topic, &env).await;
    produce(&topic, &[payment("ord-b", 0)]).await;
    let seen = orders.wait_for(1, WAIT).await;
    let credentials = base64::engine::general_purpose::STANDARD.encode("switchyard:pässword-0123456789");
    assert_eq!(seen[0].headers["authorization"], format!("Basic {credentials}"));
    assert_eq!(seen[0].body["order_status"], "processing");
    assert_empty(&gw.dlq);
    gw.stop().await;
}

/// `form:` sends the fields form-encoded, as Twilio's and Stripe's APIs take them: an object's
/// members in brackets, an array as its field repeated; the signature covers the text as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_calls_send_form_fields_signed_over_the_text_sent() {
    let orders = OrderService::start(|_, _| (200, vec![])).await;
    let (topic, group) = (unique("payments"), unique("group"));
    let body = "          body:
            order_status: { const: processing }
            transaction_id: { path: $.transaction_id }
            payment_amount: { path: $.payment_amount }
            currency: { path: $.currency }
            payment_method: { path: $.payment_method }
            paid_at: { path: $.event_timestamp }
";
    let form = "          sign: { kind: hmac-sha256, secrets: [\"${ORDERS_SIGNING_SECRET}\"] }
          form:
            order_status: { const: processing }
            amount: { path: $.payment_amount }
            metadata: { object: { transaction_id: { path: $.transaction_id }, note: { const: \"paid & ready\" } } }
            tags: { const: [paid, card] }
";
    let (_dir, config) = shipped_with(&[(body, form)]);
    let secret = "form-signing-secret-0123456789";
    let url = orders.url();
    let env =
        [("ORDER_SERVICE_URL", url.as_str()), ("DISPATCH_GROUP", group.as_str()), ("ORDERS_SIGNING_SECRET", secret)];
    let gw = start_with(&config, Role::Dispatch, &topic, &env).await;
    produce(&topic, &[payment("ord f/1", 0)]).await;
    let seen = orders.wait_for(1, WAIT).await;
    let call = &seen[0];
    assert_eq!(call.path, "/orders/ord%20f%2F1");
    assert_eq!(call.headers["content-type"], "application/x-www-form-urlencoded");
    let fields: Vec<(String, String)> =
        form_urlencoded::parse(&call.raw).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let want = [
        ("order_status", "processing"),
        ("amount", "100.0"),
        ("metadata[note]", "paid & ready"),
        ("metadata[transaction_id]", "ord f/1#0"),
        ("tags", "paid"),
        ("tags", "card"),
    ];
    let want: Vec<(String, String)> = want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(fields, want, "{}", String::from_utf8_lossy(&call.raw));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let mac = hex::encode(aws_lc_rs::hmac::sign(&key, &call.raw));
    assert_eq!(call.headers["x-hub-signature-256"], format!("sha256={mac}"));
    assert_empty(&gw.dlq);
    gw.stop().await;
}

/// An OAuth2 token server (the fake service, answering tokens): `tok-0`, `tok-1`, … in turn,
/// each for an hour.
async fn token_server() -> OrderService {
    OrderService::start(|_, i| {
        let token = serde_json::json!({"access_token": format!("tok-{i}"), "token_type": "Bearer", "expires_in": 3600});
        (200, vec![("content-type".into(), "application/json".into()), ("x-test-body".into(), token.to_string())])
    })
    .await
}

fn with_oauth2(token_url: &str, more: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let oauth2 = format!(
        "          oauth2:
            token_url: {token_url}/oauth/token
            client_id: switchyard
            client_secret: ${{ORDERS_CLIENT_SECRET}}
            scopes: [orders.write]
            params: {{ audience: https://orders.internal }}{more}"
    );
    shipped_with(&[("          bearer_token: ${ORDER_SERVICE_TOKEN:-}", &oauth2)])
}

/// `oauth2:` on a rule: its calls carry an access token the authorization server issued to
/// the dispatcher (client credentials, the client authenticated with HTTP Basic), kept for
/// the next calls; a token the service refuses (401) is replaced and the call made again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_carry_an_oauth2_token_kept_until_a_service_refuses_it() {
    use base64::Engine;
    let tokens = token_server().await;
    // The service takes the second token only (the first was revoked).
    let orders = OrderService::start(|seen, _| {
        (if seen.headers.get("authorization").map(String::as_str) == Some("Bearer tok-1") { 200 } else { 401 }, vec![])
    })
    .await;
    let (topic, group) = (unique("payments"), unique("group"));
    let (_dir, config) = with_oauth2(&tokens.url(), "");
    let url = orders.url();
    let env = [
        ("ORDER_SERVICE_URL", url.as_str()),
        ("DISPATCH_GROUP", group.as_str()),
        ("ORDERS_CLIENT_SECRET", "a secret: with & odd + characters"),
    ];
    let gw = start_with(&config, Role::Dispatch, &topic, &env).await;
    produce(&topic, &[payment("ord-o1", 0)]).await;
    assert_eq!(orders.wait_for(2, WAIT).await.len(), 2, "refused with tok-0, then taken with tok-1");
    produce(&topic, &[payment("ord-o2", 0)]).await;
    let calls = orders.wait_for(3, WAIT).await;
    let used: Vec<&str> = calls.iter().map(|c| c.headers["authorization"].as_str()).collect();
    assert_eq!(used, ["Bearer tok-0", "Bearer tok-1", "Bearer tok-1"], "the kept token serves the next call");
    let asked = tokens.requests();
    assert_eq!(asked.len(), 2, "one token request per token");
    // RFC 6749: the id and secret form-encoded, then HTTP Basic; the grant in the form.
    let basic = base64::engine::general_purpose::STANDARD.encode("switchyard:a+secret%3A+with+%26+odd+%2B+characters");
    assert_eq!(asked[0].headers["authorization"], format!("Basic {basic}"));
    assert_eq!(asked[0].path, "/oauth/token");
    assert_eq!(
        String::from_utf8_lossy(&asked[0].raw),
        "grant_type=client_credentials&scope=orders.write&audience=https%3A%2F%2Forders.internal"
    );
    assert_empty(&gw.dlq);
    gw.stop().await;
}

/// A token endpoint that refuses the client: the call is retried like a connection error and,
/// past the retry budget, dead-lettered saying why, without the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_that_refuses_the_client_dead_letters_the_event_saying_why() {
    let tokens =
        OrderService::start(|_, _| (401, vec![("x-test-body".into(), r#"{"error":"invalid_client"}"#.into())])).await;
    let orders = OrderService::start(|_, _| (200, vec![])).await;
    let (topic, group) = (unique("payments"), unique("group"));
    let (_dir, config) = with_oauth2(&tokens.url(), "\n            client_auth: body");
    let text = std::fs::read_to_string(&config).unwrap().replace("max_elapsed_secs: 900", "max_elapsed_secs: 1");
    std::fs::write(&config, text).unwrap();
    let url = orders.url();
    let env = [
        ("ORDER_SERVICE_URL", url.as_str()),
        ("DISPATCH_GROUP", group.as_str()),
        ("ORDERS_CLIENT_SECRET", "the-client-secret"),
    ];
    let gw = start_with(&config, Role::Dispatch, &topic, &env).await;
    produce(&topic, &[payment("ord-o3", 0)]).await;
    let letters = read_topic(&gw.dlq, 1, WAIT);
    assert_eq!(letters.len(), 1);
    let error = &letters[0].headers["switchyard.dlq.error"];
    assert!(error.contains("no OAuth2 token from http://"), "{error}");
    assert!(error.contains(r#"the token endpoint answered HTTP 401: {"error":"invalid_client"}"#), "{error}");
    assert!(!error.contains("the-client-secret"));
    assert!(orders.requests().is_empty(), "no call without a token");
    // `client_auth: body`: the id and secret in the form, no Basic.
    let asked = &tokens.requests()[0];
    assert!(!asked.headers.contains_key("authorization"));
    assert!(String::from_utf8_lossy(&asked.raw).ends_with("&client_id=switchyard&client_secret=the-client-secret"));
    gw.stop().await;
}

/// Behind an egress proxy, as curl: a dispatcher process with `HTTP_PROXY` set sends its calls
/// to the proxy (the request line names the service's whole URL, whose host need not resolve
/// here), and a host in `NO_PROXY` is called directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_go_through_the_proxy_the_environment_names() {
    let proxy = OrderService::start(|_, _| (200, vec![])).await;
    let orders = OrderService::start(|_, _| (200, vec![])).await;
    let mut runs = Vec::new();
    for (service, no_proxy) in [("http://orders.invalid", ""), (orders.url().as_str(), "127.0.0.1")] {
        let (topic, group) = (unique("payments"), unique("group"));
        create_topic(&topic, PARTITIONS);
        let cmd = switchyard_command(
            &["serve", "--role", "dispatch", "--listen", "127.0.0.1:0"],
            &[
                ("PAYMENTS_TOPIC", &topic),
                ("DISPATCH_GROUP", &group),
                ("ORDER_SERVICE_URL", service),
                ("HTTP_PROXY", &proxy.url()),
                ("NO_PROXY", no_proxy),
            ],
        );
        let (child, _, _logs) = tokio::task::block_in_place(|| spawn_listening(cmd));
        runs.push(child);
        produce(&topic, &[payment("4711", 0)]).await;
    }
    let through = proxy.wait_for(1, WAIT).await;
    let direct = orders.wait_for(1, WAIT).await;
    for mut child in runs {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(through.len(), 1, "{through:?}");
    assert_eq!(through[0].path, "http://orders.invalid/orders/4711");
    assert_eq!(through[0].headers["host"], "orders.invalid");
    assert_eq!((direct.len(), direct[0].path.as_str()), (1, "/orders/4711"), "{direct:?}");
    assert_eq!(proxy.requests().len(), 1, "the NO_PROXY host is called directly");
}

/// Every rule whose filter holds makes its call, in config order, each with its own retries:
/// the second rule's service failing once is retried without calling the first one again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_matching_rule_makes_its_call_in_order() {
    let orders =
        OrderService::start(|s, i| (if s.path.starts_with("/audit/") && i == 1 { 503 } else { 200 }, vec![])).await;
    let (topic, group) = (unique("payments"), unique("group"));
    let audit = "        retry:
          initial_delay_ms: 200
          max_delay_ms: 30000
          max_elapsed_secs: 900
      - name: audit
        when: { all: [{ path: $.payment_amount, gte: 50 }] }
        request:
          method: POST
          url: ${ORDER_SERVICE_URL}/audit/{order_id}
          body: { amount: { path: $.payment_amount } }
        retry: { initial_delay_ms: 50, max_delay_ms: 100, max_elapsed_secs: 30 }";
    let (_dir, config) = shipped_with(&[(
        "        retry:\n          initial_delay_ms: 200\n          max_delay_ms: 30000\n          max_elapsed_secs: 900",
        audit,
    )]);
    let url = orders.url();
    let env = [("ORDER_SERVICE_URL", url.as_str()), ("DISPATCH_GROUP", group.as_str())];
    let gw = start_with(&config, Role::Dispatch, &topic, &env).await;
    // payment() carries 100.0: both rules hold.
    produce(&topic, &[payment("both", 0)]).await;
    let seen = orders.wait_for(3, WAIT).await;
    let calls: Vec<(&str, &str)> = seen.iter().map(|s| (s.method.as_str(), s.path.as_str())).collect();
    assert_eq!(calls, [("PATCH", "/orders/both"), ("POST", "/audit/both"), ("POST", "/audit/both")]);
    assert_eq!(seen[2].body["amount"], 100.0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(orders.requests().len(), 3, "nothing is called again");
    assert_empty(&gw.dlq);
    gw.stop().await;
}
