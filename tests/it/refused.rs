//! A source's `dead_letter_topic`: signed webhooks the routes refuse are kept as they came and
//! answered 200 `dead_lettered` once the broker holds them (unsigned ones are not kept, nor one
//! too large for the broker: those get the refusal); once
//! the routes are fixed, `switchyard redrive --source` publishes what they now give, writes
//! those still refused back for a later run, and remembers how far it got.

use std::time::Duration;

use crate::common::*;
use serde_json::json;
use switchyard::app::Role;

const READ: Duration = Duration::from_secs(10);

/// The shipped routes, keeping refused Stripe webhooks in `$WEBHOOK_DLQ_TOPIC`; `fixed` also
/// finds the order id where this shop's checkouts put it (`metadata.order_ref`).
fn routes(fixed: bool) -> (tempfile::TempDir, std::path::PathBuf) {
    let order_ref = if fixed { "$.data.object.metadata.order_ref, " } else { "" };
    shipped_with(&[
        ("    event_id: $.id\n", "    event_id: $.id\n    dead_letter_topic: ${WEBHOOK_DLQ_TOPIC}\n"),
        (
            "order_id: { path: [$.data.object.metadata.order_id, ",
            &format!("order_id: {{ path: [$.data.object.metadata.order_id, {order_ref}"),
        ),
    ])
}

async fn redrive(config: &std::path::Path, env: &[(&str, &str)], more: &[&str]) -> (bool, String) {
    let mut args = vec!["redrive", "-c", config.to_str().unwrap(), "--source", "stripe"];
    args.extend_from_slice(more);
    let mut cmd = switchyard_command(&args, env);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_webhooks_are_kept_and_go_through_the_fixed_routes_again() {
    let (topic, dlq) = (unique("payments"), unique("stripe.refused"));
    create_topic(&dlq, 1);
    let (_dir, broken) = routes(false);
    let gw = start_with(&broken, Role::Ingress, &topic, &[("WEBHOOK_DLQ_TOPIC", &dlq)]).await;
    let url = gw.url("/webhooks/stripe");

    // An order id where the routes do not look yet: refused (422), kept, and the sender told so.
    let unseen = checkout(|d| {
        d["data"]["object"]["metadata"] = json!({"order_ref": "A-7"});
        d["data"]["object"]["client_reference_id"] = json!(null);
    });
    let body = serde_json::to_vec(&unseen).unwrap();
    let signature = stripe_header(SECRET, unix_now(), &body);
    let headers =
        [("content-type", "application/json"), ("stripe-signature", &signature), ("authorization", "Bearer s3cret")];
    let res = post(&url, &headers, body).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["status"], "dead_lettered");
    assert_eq!(res.body["reason"], "mapping");
    assert_eq!(res.body["event_id"], unseen["id"]);
    assert_eq!(res.body["dead_letter"], json!({"topic": dlq, "partition": 0, "offset": 0}));
    // Signed but not JSON: kept too. Unsigned: refused and not kept (anyone could send it).
    let res = post_signed(&url, b"{\"id\": ").await;
    assert_eq!((res.status, res.body["status"].as_str()), (200, Some("dead_lettered")), "{}", res.body);
    let res = post(&url, &[("content-type", "application/json")], b"{}".to_vec()).await;
    assert_eq!(res.status, 401);

    // A body larger than the broker takes (librdkafka's 1 MB `message.max.bytes`, under the
    // 1 MiB body limit) cannot be kept: the refusal itself is the answer, not a 503 for ever.
    let huge = serde_json::to_vec(&json!({"id": "evt_huge", "pad": "x".repeat(1_040_000)})).unwrap();
    let res = post_signed(&url, &huge).await;
    assert_eq!((res.status, res.body["status"].as_str()), (422, Some("rejected")), "{}", res.body["message"]);

    let letters = read_topic(&dlq, 2, READ);
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0].key.as_deref(), unseen["id"].as_str());
    assert_eq!(letters[0].value, unseen, "the body as it came");
    let h = &letters[0].headers;
    assert_eq!((h["switchyard.dlq.source"].as_str(), h["switchyard.dlq.reason"].as_str()), ("stripe", "mapping"));
    assert_eq!(h["switchyard.dlq.status"], "422");
    assert!(h["switchyard.dlq.error"].contains("no value at $.data.object.metadata.order_id"), "{h:?}");
    assert_eq!(h["stripe-signature"], signature);
    assert!(!h.contains_key("authorization"), "credentials are not kept: {h:?}");
    assert_eq!(letters[1].headers["switchyard.dlq.reason"], "json");
    let metrics = reqwest::get(gw.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"switchyard_webhooks_total{source="stripe",outcome="dead_lettered",status="200"} 2"#),
        "{metrics}"
    );
    gw.stop().await;

    // Another source's letter on the same topic is not this source's to redrive.
    let producer: rdkafka::producer::FutureProducer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", broker().bootstrap_servers()).create().unwrap();
    let headers = rdkafka::message::OwnedHeaders::new()
        .insert(rdkafka::message::Header { key: "switchyard.dlq.source", value: Some("github") });
    let record = rdkafka::producer::FutureRecord::<(), _>::to(&dlq).payload("{}").headers(headers);
    producer.send(record, Duration::from_secs(5)).await.unwrap();

    // The routes fixed: a dry run shows what each letter would become, and changes nothing.
    let (_fixed_dir, fixed) = routes(true);
    let env = [("PAYMENTS_TOPIC", topic.as_str()), ("WEBHOOK_DLQ_TOPIC", dlq.as_str())];
    let (ok, out) = redrive(&fixed, &env, &["--dry-run"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("partition=0 offset=0 event_id=") && out.contains(": 1 event(s), rules checkout_paid"),
        "{out}"
    );
    assert!(out.contains("partition=0 offset=1: refused again, 400: body is not valid JSON"), "{out}");
    assert!(out.contains("2 dead letter(s) of source stripe in"), "{out}");
    assert!(out.contains("; 1 of other sources passed over"), "{out}");
    assert!(!out.contains("offset=2"), "{out}");
    assert!(out.contains("(dry run: nothing sent or committed)"), "{out}");
    assert_empty(&topic);

    // For real: the event is published, the broken body written back for a later run.
    let (ok, out) = redrive(&fixed, &env, &[]).await;
    assert!(ok, "{out}");
    assert!(out.contains(": 1 published as 1 event(s), 0 ignored or replied to, 1 refused again"), "{out}");
    let events = read_topic(&topic, 1, READ);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].value["order_id"], "A-7");
    assert_eq!(events[0].key.as_deref(), Some("A-7"));
    let letters = read_topic(&dlq, 4, READ);
    assert_eq!(letters.len(), 4);
    assert_eq!(letters[3].headers["switchyard.dlq.reason"], "json");

    // The next run starts where this one stopped: only the letter written back is left.
    let (ok, out) = redrive(&fixed, &env, &[]).await;
    assert!(ok, "{out}");
    assert!(out.contains("1 dead letter(s) of source stripe") && out.contains("1 refused again"), "{out}");
    assert_eq!(read_topic(&topic, 2, Duration::from_secs(2)).len(), 1, "nothing published twice");

    // A source that keeps nothing is named.
    let (ok, out) = redrive(&repo().join("routes.yaml"), &[], &[]).await;
    assert!(!ok);
    assert!(out.contains("source 'stripe' keeps no refused webhooks: give it a dead_letter_topic"), "{out}");
}
