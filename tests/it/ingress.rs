//! Issue 2: the ingress end to end over real HTTP, with the embedded Kafka broker. Every
//! answer is checked with its status and body, and the topic is read back: accepted
//! webhooks are there exactly as mapped, rejected ones are not.

use std::time::Duration;

use crate::common::*;
use serde_json::{Value as Json, json};
use switchyard::app::Role;

const READ: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_checkout_lands_on_kafka_as_the_canonical_event() {
    let gw = start(Role::Ingress, &[]).await;
    let event = checkout(|_| {});
    let body = serde_json::to_vec(&event).unwrap();
    let res = post_signed(&gw.url("/webhooks/stripe"), &body).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["status"], "accepted");
    assert_eq!(res.body["event_id"], event["id"]);
    let listed = &res.body["events"][0];
    assert_eq!(listed["topic"], gw.topic.as_str());
    assert_eq!(listed["rule"], "checkout_paid");

    let records = read_topic(&gw.topic, 1, READ);
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!((json!(r.partition), json!(r.offset)), (listed["partition"].clone(), listed["offset"].clone()));
    assert_eq!(r.key.as_deref(), Some("12345"));
    assert_eq!(r.headers["event_id"], event["id"].as_str().unwrap());
    assert_eq!(r.headers["event_type"], "payment_successful");
    assert_eq!(
        r.value,
        json!({
            "event_type": "payment_successful",
            "event_timestamp": "2023-11-06T14:30:00Z",
            "order_id": "12345",
            "customer_id": "789",
            "payment_amount": 100.0,
            "payment_method": "Credit Card",
            "transaction_id": "ABC123XYZ",
            "currency": "USD",
            "payment_status": "Success"
        })
    );
    // The amount is a JSON number, not a string.
    assert!(r.value["payment_amount"].is_f64());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallbacks_currencies_and_lookup_defaults() {
    let gw = start(Role::Ingress, &[]).await;
    let cases = [
        // No metadata order id: falls back to client_reference_id; JPY has no minor unit.
        (
            checkout(|e| {
                let o = &mut e["data"]["object"];
                o["metadata"] = json!({});
                o["client_reference_id"] = json!("ref-77");
                o["currency"] = json!("jpy");
                o["amount_total"] = json!(5000);
                o["payment_method_types"] = json!(["paypal"]);
                o["customer"] = Json::Null;
            }),
            json!({"order_id": "ref-77", "payment_amount": 5000, "currency": "JPY", "payment_method": "PayPal", "customer_id": null}),
        ),
        (
            checkout(|e| {
                let o = &mut e["data"]["object"];
                o["currency"] = json!("kwd");
                o["amount_total"] = json!(1000);
                o["payment_method_types"] = json!(["some_new_method"]);
            }),
            json!({"order_id": "12345", "payment_amount": 1.0, "currency": "KWD", "payment_method": "Other", "customer_id": "789"}),
        ),
        (
            checkout(|e| {
                let o = &mut e["data"]["object"];
                o["currency"] = json!("eur");
                o["amount_total"] = json!(1234);
            }),
            json!({"order_id": "12345", "payment_amount": 12.34, "currency": "EUR", "payment_method": "Credit Card", "customer_id": "789"}),
        ),
    ];
    for (event, _) in &cases {
        let res = post_signed(&gw.url("/webhooks/stripe"), &serde_json::to_vec(event).unwrap()).await;
        assert_eq!(res.status, 200, "{}", res.body);
    }
    let records = read_topic(&gw.topic, cases.len(), READ);
    assert_eq!(records.len(), cases.len());
    for (event, want) in &cases {
        let r = records.iter().find(|r| r.headers["event_id"] == event["id"].as_str().unwrap()).expect("record");
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(&r.value[k], v, "{k} of {}", event["id"]);
        }
        assert_eq!(r.key.as_deref(), want["order_id"].as_str());
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_intent_succeeded_is_a_second_rule_to_the_same_event() {
    let gw = start(Role::Ingress, &[]).await;
    let intent = json!({
        "id": unique("evt_pi"), "object": "event", "type": "payment_intent.succeeded", "created": 1699281000,
        "data": {"object": {"id": "pi_3Abc", "object": "payment_intent", "amount_received": 2599, "currency": "gbp",
            "status": "succeeded", "customer": "cus_9", "metadata": {"order_id": "A-1"}, "payment_method_types": ["card"]}}
    });
    let res = post_signed(&gw.url("/webhooks/stripe"), &serde_json::to_vec(&intent).unwrap()).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["events"][0]["rule"], "payment_intent_succeeded");
    let r = &read_topic(&gw.topic, 1, READ)[0];
    assert_eq!(
        r.value,
        json!({"event_type": "payment_successful", "event_timestamp": "2023-11-06T14:30:00Z", "order_id": "A-1",
               "customer_id": "cus_9", "payment_amount": 25.99, "payment_method": "Credit Card",
               "transaction_id": "pi_3Abc", "currency": "GBP", "payment_status": "Success"})
    );
    assert_eq!(r.key.as_deref(), Some("A-1"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmapped_and_unpaid_events_are_ignored_with_200() {
    let gw = start(Role::Ingress, &[]).await;
    let unpaid = checkout(|e| e["data"]["object"]["payment_status"] = json!("unpaid"));
    let other = json!({"id": unique("evt_c"), "object": "event", "type": "customer.created", "created": 1, "data": {"object": {}}});
    let intent_without_order = json!({
        "id": unique("evt_pi"), "object": "event", "type": "payment_intent.succeeded", "created": 1,
        "data": {"object": {"id": "pi_1", "amount_received": 1, "currency": "usd", "status": "succeeded", "metadata": {}}}
    });
    for event in [unpaid, other, intent_without_order] {
        let res = post_signed(&gw.url("/webhooks/stripe"), &serde_json::to_vec(&event).unwrap()).await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["status"], "ignored");
        assert!(res.body["reason"].as_str().unwrap().contains(event["type"].as_str().unwrap()), "{}", res.body);
    }
    // A sender's long event type and event id are quoted clipped, not written back whole.
    let id = format!("evt_{}", "i".repeat(100_000));
    let long = json!({"id": id, "object": "event", "type": "t".repeat(100_000), "created": 1, "data": {"object": {}}});
    let res = post_signed(&gw.url("/webhooks/stripe"), &serde_json::to_vec(&long).unwrap()).await;
    assert_eq!((res.status, res.body["status"].as_str()), (200, Some("ignored")), "{}", res.body);
    let clipped = format!("no rule of source 'stripe' matches this '{}…' event", "t".repeat(64));
    assert_eq!(res.body["reason"], clipped);
    assert_eq!(res.body["event_id"], format!("{}…", &id[..128]));
    assert_empty(&gw.topic);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_get_401_and_publish_nothing() {
    let gw = start(Role::Ingress, &[]).await;
    let url = gw.url("/webhooks/stripe");
    let body = serde_json::to_vec(&checkout(|_| {})).unwrap();
    let now = unix_now();
    let wrong = stripe_header("whsec_not_the_secret", now, &body);
    let stale = stripe_header(SECRET, now - 301, &body);
    let future = stripe_header(SECRET, now + 330, &body);
    let other_body = stripe_header(SECRET, now, b"{}");
    let cases: Vec<(&str, Option<&str>)> = vec![
        ("missing", None),
        ("empty", Some("")),
        ("malformed", Some("not-a-signature")),
        ("no timestamp", Some("v1=abcdef")),
        ("non-numeric t", Some("t=soon,v1=abcdef")),
        ("overflowing t", Some("t=99999999999999999999999999,v1=ab")),
        ("wrong secret", Some(&wrong)),
        ("stale", Some(&stale)),
        ("future", Some(&future)),
        ("signature of another body", Some(&other_body)),
    ];
    for (name, sig) in cases {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(s) = sig {
            headers.push(("stripe-signature", s));
        }
        let res = post(&url, &headers, body.clone()).await;
        assert_eq!(res.status, 401, "{name}: {}", res.body);
        assert_eq!(res.body["status"], "rejected", "{name}");
        assert_eq!(res.body["reason"], "signature", "{name}");
        // The answer never echoes the secret or the signature it was sent.
        let text = res.body.to_string();
        assert!(!text.contains(SECRET), "{name}: {text}");
        if let Some(s) = sig.filter(|s| s.len() > 20) {
            assert!(!text.contains(&s[s.len() - 20..]), "{name}: {text}");
        }
    }
    assert_empty(&gw.topic);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_secrets_are_all_accepted() {
    let gw = start(Role::Ingress, &[("STRIPE_WEBHOOK_SECRET_PREVIOUS", "whsec_previous")]).await;
    let body = serde_json::to_vec(&checkout(|_| {})).unwrap();
    let sig = stripe_header("whsec_previous", unix_now(), &body);
    let res = post(&gw.url("/webhooks/stripe"), &[("stripe-signature", &sig)], body).await;
    assert_eq!(res.status, 200, "{}", res.body);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_schema_violations_and_missing_data_are_refused() {
    let gw = start(Role::Ingress, &[]).await;
    let url = gw.url("/webhooks/stripe");

    let res = post_signed(&url, b"{\"id\": \"evt_1\", ").await;
    assert_eq!((res.status, res.body["reason"].as_str()), (400, Some("json")), "{}", res.body);

    // Two violations at once, each listed with its instance path.
    let bad = checkout(|e| {
        e["data"]["object"]["amount_total"] = json!("100.00");
        e["data"]["object"]["currency"] = json!("US Dollar");
    });
    let res = post_signed(&url, &serde_json::to_vec(&bad).unwrap()).await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert_eq!(res.body["reason"], "schema");
    let violations = res.body["violations"].as_array().unwrap();
    let paths: Vec<&str> = violations.iter().map(|v| v["path"].as_str().unwrap()).collect();
    assert!(paths.contains(&"/data/object/amount_total"), "{paths:?}");
    assert!(paths.contains(&"/data/object/currency"), "{paths:?}");
    assert!(violations.iter().all(|v| !v["message"].as_str().unwrap().is_empty()));

    // Valid per schema, but no order id anywhere: 422 naming the paths it looked at.
    let no_order = checkout(|e| {
        e["data"]["object"]["metadata"] = json!({});
        e["data"]["object"]["client_reference_id"] = Json::Null;
    });
    let res = post_signed(&url, &serde_json::to_vec(&no_order).unwrap()).await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert_eq!(res.body["reason"], "mapping");
    let msg = res.body["message"].as_str().unwrap();
    assert!(msg.contains("value.order_id") && msg.contains("$.data.object.metadata.order_id"), "{msg}");
    assert!(msg.contains("$.data.object.client_reference_id"), "{msg}");
    assert_empty(&gw.topic);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_level_refusals() {
    let gw = start(Role::Ingress, &[]).await;
    let client = reqwest::Client::new();
    let health = answer(client.get(gw.url("/healthz")).send().await.unwrap()).await;
    assert_eq!((health.status, health.body["status"].as_str()), (200, Some("ok")));

    let res = post_signed(&gw.url("/webhooks/nope"), b"{}").await;
    assert_eq!((res.status, res.body["reason"].as_str()), (404, Some("not_found")));
    let res = post_signed(&gw.url("/webhooks/stripe//"), b"{}").await;
    assert_eq!((res.status, res.body["reason"].as_str()), (404, Some("not_found")));

    let res = answer(client.get(gw.url("/webhooks/stripe")).send().await.unwrap()).await;
    assert_eq!((res.status, res.body["reason"].as_str()), (405, Some("method")));
    assert_eq!(res.headers["allow"], "POST");

    let body = serde_json::to_vec(&checkout(|_| {})).unwrap();
    let sig = stripe_header(SECRET, unix_now(), &body);
    let res =
        post(&gw.url("/webhooks/stripe"), &[("content-type", "text/plain"), ("stripe-signature", &sig)], body.clone())
            .await;
    assert_eq!((res.status, res.body["reason"].as_str()), (415, Some("content_type")));
    assert_eq!(res.body["message"], "Content-Type 'text/plain' is not JSON: send the body as application/json");
    let long_type = format!("text/{}", "x".repeat(10_000));
    let res = post(&gw.url("/webhooks/stripe"), &[("content-type", &long_type)], body.clone()).await;
    let quoted = format!("Content-Type '{}…' is not JSON: send the body as application/json", &long_type[..64]);
    assert_eq!((res.status, res.body["message"].as_str()), (415, Some(quoted.as_str())));
    let gzipped = [("content-encoding", "gzip"), ("stripe-signature", sig.as_str())];
    let res = post(&gw.url("/webhooks/stripe"), &gzipped, body.clone()).await;
    assert_eq!((res.status, res.body["reason"].as_str()), (415, Some("content_encoding")));
    assert_eq!(res.body["message"], "Content-Encoding 'gzip' is not accepted: send the body uncompressed");
    let identity = [("content-encoding", "identity"), ("stripe-signature", sig.as_str())];
    assert_eq!(post(&gw.url("/webhooks/stripe"), &identity, body.clone()).await.status, 200);
    // One trailing slash is forgiven.
    let res = post(&gw.url("/webhooks/stripe/"), &[("stripe-signature", &sig)], body.clone()).await;
    assert_eq!(res.status, 200, "{}", res.body);
    // No content type at all is accepted, and so is JSON with a charset.
    let res = post(&gw.url("/webhooks/stripe"), &[("stripe-signature", &sig)], body.clone()).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let res = post(
        &gw.url("/webhooks/stripe"),
        &[("content-type", "application/json; charset=utf-8"), ("stripe-signature", &sig)],
        body,
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);

    // Over the 1 MiB limit: declared, and streamed without a length.
    let big = vec![b' '; (1 << 20) + 1];
    let res = post_signed(&gw.url("/webhooks/stripe"), &big).await;
    assert_eq!((res.status, res.body["reason"].as_str()), (413, Some("size")));
    let chunks = futures::stream::iter((0..17).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])));
    let res = client
        .post(gw.url("/webhooks/stripe"))
        .header("stripe-signature", "t=1,v1=00")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    // Only the four accepted webhooks reached the topic; every refusal left nothing.
    let records = read_topic(&gw.topic, 5, Duration::from_secs(3));
    assert_eq!(records.len(), 4, "{records:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_that_breaks_the_canonical_schema_is_refused_loudly() {
    // Drop the upper-casing of the currency: "usd" violates the canonical pattern.
    let (_dir, path) = shipped_with(&[(
        "currency: { path: $.data.object.currency, then: [upper] }\n            payment_status: { const: Success }\n\n      # Payments",
        "currency: { path: $.data.object.currency }\n            payment_status: { const: Success }\n\n      # Payments",
    )]);
    let gw = start_with(&path, Role::Ingress, &unique("payments"), &[]).await;
    let res = post_signed(&gw.url("/webhooks/stripe"), &serde_json::to_vec(&checkout(|_| {})).unwrap()).await;
    assert_eq!(res.status, 500, "{}", res.body);
    assert_eq!(res.body["reason"], "canonical");
    assert!(res.body["message"].as_str().unwrap().contains("checkout_paid"));
    assert_eq!(res.body["violations"][0]["path"], "/currency");
    assert_empty(&gw.topic);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_webhook_fans_out_to_several_topics() {
    let audit = unique("audit");
    broker().create_topic(&audit, 1).unwrap();
    let extra_rule = format!(
        r#"
      - name: audit_copy
        when:
          event_type: checkout.session.completed
        emit:
          topic: {audit}
          schema: schemas/payment_successful.schema.json
          value:
            event_type: {{ const: payment_successful }}
            event_timestamp: {{ path: $.created, then: [epoch_to_rfc3339] }}
            order_id: {{ template: "stripe-{{$.data.object.id}}" }}
            customer_id: {{ const: null }}
            payment_amount: {{ const: 0 }}
            payment_method: {{ const: audit }}
            transaction_id: {{ path: $.id }}
            currency: {{ path: $.data.object.currency, then: [upper] }}
            payment_status: {{ const: Success }}

dispatch:"#
    );
    let (_dir, path) = shipped_with(&[("\ndispatch:", &extra_rule)]);
    let gw = start_with(&path, Role::Ingress, &unique("payments"), &[]).await;
    let event = checkout(|_| {});
    let res = post_signed(&gw.url("/webhooks/stripe"), &serde_json::to_vec(&event).unwrap()).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let topics: Vec<&str> =
        res.body["events"].as_array().unwrap().iter().map(|e| e["topic"].as_str().unwrap()).collect();
    assert_eq!(topics, [gw.topic.as_str(), audit.as_str()]);
    assert_eq!(read_topic(&gw.topic, 1, READ).len(), 1);
    let copy = &read_topic(&audit, 1, READ)[0];
    assert_eq!(copy.value["order_id"], format!("stripe-{}", event["data"]["object"]["id"].as_str().unwrap()));
    assert_eq!(copy.key, None);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_a_topic_the_broker_does_not_have() {
    // A cluster that does not create topics on first use (as production clusters are set up).
    let missing = unique("never-created");
    let (_dir, path) = shipped_with(&[
        ("compression.type: lz4", "compression.type: lz4\n    allow.auto.create.topics: false"),
        ("topic: ${PAYMENTS_TOPIC:-payments}", &format!("topic: {missing}")),
    ]);
    let gw = start_with(&path, Role::Ingress, &unique("payments"), &[]).await;
    let ready = answer(reqwest::get(gw.url("/readyz")).await.unwrap()).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.body["status"], "not_ready");
    let reason = ready.body["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("topic '{missing}'")) && reason.contains("Unknown topic"), "{reason}");
    gw.stop().await;

    // Once the topic exists, the same routes are ready.
    create_topic(&missing, 1);
    let gw = start_with(&path, Role::Ingress, &unique("payments"), &[]).await;
    let ready = answer(reqwest::get(gw.url("/readyz")).await.unwrap()).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    gw.stop().await;
}

/// A sender that names the event in a header, as GitHub does (`X-GitHub-Event`,
/// `X-GitHub-Delivery`, `X-Hub-Signature-256`): routed by the header, the delivery id read
/// from another into the event and its Kafka header, and named in the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_that_names_its_events_in_headers_is_routed_by_them() {
    let topic = unique("pushes");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("push.json"),
        r#"{"type": "object", "required": ["repository", "delivery", "branch"],
            "properties": {"repository": {"type": "string"}, "delivery": {"type": "string", "pattern": "^[0-9a-f-]+$"},
                           "branch": {"type": "string"}, "event": {"const": "push"}}}"#,
    )
    .unwrap();
    let config = dir.path().join("routes.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
kafka: {{ brokers: "${{KAFKA_BROKERS}}" }}
sources:
  - name: github
    path: /webhooks/github
    verify: {{ kind: hmac-sha256, secrets: ["${{GITHUB_WEBHOOK_SECRET}}"] }}
    form_field: payload
    event_type: {{ header: X-GitHub-Event }}
    event_id: {{ header: X-GitHub-Delivery }}
    rules:
      - name: pushed_to_main
        when:
          event_type: push
          all:
            - path: $.ref
              equals: refs/heads/main
            - header: X-GitHub-Hook-Installation-Target-Type
              in: [repository, organization]
        emit:
          topic: {topic}
          schema: push.json
          key: {{ field: repository }}
          headers: {{ delivery: {{ header: x-github-delivery }} }}
          value:
            repository: {{ path: $.repository.full_name }}
            delivery: {{ header: X-GitHub-Delivery }}
            branch: {{ path: $.ref }}
            event: {{ header: X-GitHub-Event }}
"#
        ),
    )
    .unwrap();
    let secret = "gh-webhook-secret-0123456789";
    let gw = start_with(&config, Role::Ingress, &topic, &[("GITHUB_WEBHOOK_SECRET", secret)]).await;
    let url = gw.url("/webhooks/github");
    // Signed as GitHub documents it: HMAC-SHA256 of the body, hex, after `sha256=`.
    let sign = |body: &[u8]| {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
        format!("sha256={}", hex::encode(aws_lc_rs::hmac::sign(&key, body)))
    };
    let send = |event: &'static str, delivery: Option<&'static str>, body: Json| {
        let body = serde_json::to_vec(&body).unwrap();
        let mut headers = vec![("x-hub-signature-256", sign(&body)), ("x-github-event", event.to_owned())];
        headers.push(("x-github-hook-installation-target-type", "repository".into()));
        if let Some(d) = delivery {
            headers.push(("x-github-delivery", d.into()));
        }
        let url = url.clone();
        async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(&url, &headers, body).await
        }
    };
    let push = json!({"ref": "refs/heads/main", "repository": {"full_name": "acme/shop"}});

    let res = send("push", Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"), push.clone()).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["event_id"], "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    let record = &read_topic(&topic, 1, READ)[0];
    assert_eq!(
        record.value,
        json!({"repository": "acme/shop", "delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
               "branch": "refs/heads/main", "event": "push"})
    );
    assert_eq!(record.key.as_deref(), Some("acme/shop"));
    assert_eq!(record.headers["delivery"], "72d3162e-cc78-11e3-81ab-4c9367dc0958");

    // The same body under another event header is another event: no rule takes a ping.
    let res = send("ping", Some("d-2"), push.clone()).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["status"], "ignored");
    assert_eq!(res.body["reason"], "no rule of source 'github' matches this 'ping' event");
    // Without the event header, the answer says so.
    let body = serde_json::to_vec(&push).unwrap();
    let res = post(&url, &[("x-hub-signature-256", &sign(&body)), ("x-github-delivery", "d-3")], body).await;
    assert_eq!((res.status, res.body["status"].as_str()), (200, Some("ignored")), "{}", res.body);
    let says =
        "no rule of source 'github' matches this event, which has no event type (header x-github-event is missing)";
    assert_eq!(res.body["reason"], says);

    // A header the mapping needs is missing: 422 naming it, nothing published.
    let res = send("push", None, push.clone()).await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert_eq!(res.body["reason"], "mapping");
    let message = res.body["message"].as_str().unwrap();
    assert!(
        message.contains("value.delivery: required data is missing: no request header 'x-github-delivery'"),
        "{message}"
    );

    // A header's value is checked by the canonical schema only: one it refuses is the
    // sender's fault (422, naming the header), not the routes' (500).
    let res = send("push", Some("not a delivery id"), push.clone()).await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert_eq!(res.body["reason"], "mapping");
    let message = res.body["message"].as_str().unwrap();
    assert!(
        message
            .contains("the request header 'x-github-delivery' holds a value the canonical schema 'push.json' refuses"),
        "{message}"
    );
    assert_eq!(res.body["violations"][0]["path"], "/delivery");

    // GitHub's default content type: the JSON in a `payload` form field, the signature over
    // the form as sent.
    let form = format!(
        "payload={}",
        form_urlencoded::byte_serialize(br#"{"ref": "refs/heads/main", "repository": {"full_name": "acme/form"}}"#)
            .collect::<String>()
    );
    let headers = [
        ("content-type", "application/x-www-form-urlencoded".to_owned()),
        ("x-hub-signature-256", sign(form.as_bytes())),
        ("x-github-event", "push".into()),
        ("x-github-delivery", "f0f0-1".into()),
        ("x-github-hook-installation-target-type", "repository".into()),
    ];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = post(&url, &headers, form.clone().into_bytes()).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let records = read_topic(&topic, 2, READ);
    assert!(
        records.iter().any(|r| r.value["repository"] == "acme/form" && r.value["delivery"] == "f0f0-1"),
        "{records:?}"
    );
    // A form without the field, and a type that is neither JSON nor a form, are refused.
    let mut without = headers.clone();
    let other_sig = sign(b"ref=x");
    without[1] = ("x-hub-signature-256", &other_sig);
    let res = post(&url, &without, b"ref=x".to_vec()).await;
    assert_eq!((res.status, res.body["message"].as_str()), (400, Some("the form has no 'payload' field")));
    let res = post(&url, &[("content-type", "text/plain")], form.into_bytes()).await;
    assert_eq!(res.status, 415, "{}", res.body);
    assert_eq!(res.body["message"], "Content-Type 'text/plain' is neither JSON nor application/x-www-form-urlencoded");

    // The signature still covers the body only; a forged one is refused before any header is read.
    let body = serde_json::to_vec(&push).unwrap();
    let headers = [("x-hub-signature-256", "sha256=00"), ("x-github-event", "push"), ("x-github-delivery", "d-4")];
    let res = post(&url, &headers, body).await;
    assert_eq!(res.status, 401, "{}", res.body);
    assert_eq!(read_topic(&topic, 3, Duration::from_secs(2)).len(), 2, "only the two good pushes were published");
    gw.stop().await;
}
