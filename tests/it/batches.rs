//! One webhook, many events (`for_each`): a batch as SendGrid's event webhook posts it (a JSON
//! array, signed with ECDSA P-256, `kind: sendgrid`), each value filtered and mapped on its own
//! and published; a value that cannot be mapped refuses the whole batch, naming which; a batch
//! beyond `MAX_EVENTS` is refused, and nothing of a refused batch is published.

use std::time::Duration;

use crate::common::*;
use serde_json::{Value as Json, json};
use switchyard::app::Role;
use switchyard::pipeline::MAX_EVENTS;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;

/// Signed as SendGrid signs: ECDSA P-256 over the timestamp and the body, base64 DER.
async fn send(url: &str, key: &EcdsaKeyPair, batch: &Json) -> Answer {
    let body = serde_json::to_vec(batch).unwrap();
    let t = unix_now().to_string();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let signature = key.sign(&rng, &[t.as_bytes(), &body].concat()).unwrap();
    let signature = base64::engine::general_purpose::STANDARD.encode(signature.as_ref());
    let headers = [
        ("content-type", "application/json"),
        ("x-twilio-email-event-webhook-timestamp", t.as_str()),
        ("x-twilio-email-event-webhook-signature", signature.as_str()),
    ];
    post(url, &headers, body).await
}

fn event(id: usize, kind: &str) -> Json {
    json!({"email": format!("user{id}@example.com"), "timestamp": 1_700_000_000 + id, "event": kind,
           "sg_event_id": format!("ev-{id}"), "sg_message_id": "msg-1", "reason": "550 no such user"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_becomes_one_event_per_value_its_rules_take() {
    let topic = unique("bounces");
    let (_dir, config) = config_file(&format!(
        r#"
kafka: {{ brokers: "${{KAFKA_BROKERS}}" }}
sources:
  - name: email
    path: /webhooks/email
    verify: {{ kind: sendgrid, public_keys: ["${{SENDGRID_WEBHOOK_PUBLIC_KEY}}"] }}
    schema: batch.json
    event_type: $.event
    rules:
      - name: bounced
        for_each: $[*]
        when: {{ event_type: [bounce, dropped] }}
        emit:
          topic: {topic}
          schema: bounce.json
          key: {{ field: email }}
          value:
            email: {{ path: $.email }}
            kind: {{ path: $.event }}
            reason: {{ path: $.reason }}
            id: {{ path: $.sg_event_id }}
"#
    ));
    std::fs::write(
        config.with_file_name("batch.json"),
        r#"{"type": "array", "items": {"type": "object", "required": ["email", "event", "sg_event_id"]}}"#,
    )
    .unwrap();
    std::fs::write(
        config.with_file_name("bounce.json"),
        r#"{"type": "object", "required": ["email", "kind", "reason", "id"],
            "properties": {"reason": {"type": "string"}}}"#,
    )
    .unwrap();
    // SendGrid's key pair; the gateway has the public key, as SendGrid shows it (base64 DER).
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
    let public = base64::engine::general_purpose::STANDARD.encode(key.public_key().as_der().unwrap().as_ref());
    let gw = start_with(&config, Role::Ingress, &topic, &[("SENDGRID_WEBHOOK_PUBLIC_KEY", &public)]).await;
    let url = gw.url("/webhooks/email");
    let other = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();

    // Four values, two of which the rule takes: two events, in the batch's order.
    let batch = json!([event(1, "delivered"), event(2, "bounce"), event(3, "open"), event(4, "dropped")]);
    let res = send(&url, &key, &batch).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["status"], "accepted");
    assert_eq!(res.body["events"].as_array().map(Vec::len), Some(2), "{}", res.body);
    // Nothing the rule wants: ignored.
    let res = send(&url, &key, &json!([event(5, "open")])).await;
    assert_eq!(res.body["status"], "ignored", "{}", res.body);

    // One value the rule takes but cannot map refuses the batch, naming the value.
    let mut broken = event(7, "bounce");
    broken["reason"] = json!(550);
    let res = send(&url, &key, &json!([event(6, "bounce"), broken])).await;
    assert_eq!(res.status, 500, "{}", res.body);
    assert!(res.body["message"].as_str().unwrap().ends_with(" (in value 1 of $[*])"), "{}", res.body);
    let mut missing = event(8, "bounce");
    missing.as_object_mut().unwrap().remove("reason");
    let res = send(&url, &key, &json!([missing])).await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert_eq!(
        res.body["message"],
        "rule 'bounced' cannot map this payload: value.reason: required data is missing: no value at $.reason (in value 0 of $[*])"
    );
    // Signed with another key: refused.
    let res = send(&url, &other, &json!([event(9, "bounce")])).await;
    assert_eq!(res.status, 401, "{}", res.body);
    // More events than one webhook may make: refused whole.
    let huge: Vec<Json> = (0..=MAX_EVENTS)
        .map(|i| json!({"email": "a@b", "event": "bounce", "sg_event_id": i.to_string(), "reason": "r"}))
        .collect();
    let res = send(&url, &key, &Json::Array(huge)).await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert_eq!(res.body["message"], format!("rule 'bounced' would make more than {MAX_EVENTS} events of this webhook"));

    let records = read_topic(&topic, 3, Duration::from_secs(3));
    // Keyed by address, so on partitions of their own: in batch order per address only.
    let mut got: Vec<&Json> = records.iter().map(|r| &r.value).collect();
    got.sort_by_key(|v| v["id"].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        got,
        [
            &json!({"email": "user2@example.com", "kind": "bounce", "reason": "550 no such user", "id": "ev-2"}),
            &json!({"email": "user4@example.com", "kind": "dropped", "reason": "550 no such user", "id": "ev-4"}),
        ],
        "only the first batch's two bounces"
    );
    gw.stop().await;
}
