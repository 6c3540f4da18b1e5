//! Senders that prove who they are without a timestamp: Square signs its notification URL and
//! the body (`kind: square`); Adyen's notifications come with HTTP Basic credentials (`kind:
//! basic`), a batch answered `[accepted]`, and with an HMAC in each item (`kind: adyen`); GitLab sends a token in a header of its own (`kind:
//! token`). Each published, each refused with a 401 when the proof is wrong, the Basic one
//! with its challenge (`WWW-Authenticate`).

use std::time::Duration;

use crate::common::*;
use base64::Engine;
use serde_json::{Value as Json, json};
use switchyard::app::Role;

/// The canonical event all three map to, loosely.
const EVENT_SCHEMA: &str = r#"{"type": "object", "required": ["order_id", "transaction_id"],
    "properties": {"order_id": {"type": "string"}, "transaction_id": {"type": "string"}}}"#;

async fn gateway(yaml: &str, topic: &str, env: &[(&str, &str)]) -> (tempfile::TempDir, Gateway) {
    let (dir, config) = config_file(yaml);
    std::fs::write(config.with_file_name("event.json"), EVENT_SCHEMA).unwrap();
    let gw = start_with(&config, Role::Ingress, topic, env).await;
    (dir, gw)
}

async fn send(url: &str, headers: &[(&str, &str)], body: &[u8]) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(url).header("content-type", "application/json").body(body.to_vec());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.unwrap()
}

async fn json_of(res: reqwest::Response) -> Json {
    serde_json::from_slice(&res.bytes().await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn square_signs_its_notification_url_and_the_body() {
    const KEY: &str = "Zq3uZ6_jAq9XGkXW1zvq1w";
    // Square signed its subscription's URL: the proxy in front of the gateway changes the host.
    const URL: &str = "https://hooks.example.com/webhooks/square";
    let topic = unique("square");
    let yaml = format!(
        r#"
kafka: {{ brokers: "${{KAFKA_BROKERS}}" }}
sources:
  - name: square
    path: /webhooks/square
    verify: {{ kind: square, secrets: ["${{SQUARE_SIGNATURE_KEY}}"], url: "${{SQUARE_NOTIFICATION_URL}}" }}
    event_type: $.type
    event_id: $.event_id
    rules:
      - name: payment_completed
        when: {{ event_type: payment.updated, all: [{{ path: $.data.object.payment.status, equals: COMPLETED }}] }}
        emit:
          topic: {topic}
          schema: event.json
          key: {{ field: order_id }}
          value:
            order_id: {{ path: $.data.object.payment.order_id }}
            transaction_id: {{ path: $.data.object.payment.id }}
            amount: {{ path: $.data.object.payment.amount_money.amount, then: [{{ minor_units: {{ currency: $.data.object.payment.amount_money.currency }} }}] }}
"#
    );
    let env = [("SQUARE_SIGNATURE_KEY", KEY), ("SQUARE_NOTIFICATION_URL", URL)];
    let (_dir, gw) = gateway(&yaml, &topic, &env).await;
    let url = gw.url("/webhooks/square");
    let sign = |body: &[u8]| {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, KEY.as_bytes());
        let tag = aws_lc_rs::hmac::sign(&key, &[URL.as_bytes(), body].concat());
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    };
    let payment = |status: &str| {
        let doc = json!({"merchant_id": "6SSW7HV8K2ST5", "type": "payment.updated",
            "event_id": format!("ev-{status}"), "created_at": "2023-11-06T14:30:00.000Z",
            "data": {"type": "payment", "id": "KkAk", "object": {"payment": {"id": "KkAk",
            "amount_money": {"amount": 10000, "currency": "USD"}, "status": status, "order_id": "12345"}}}});
        serde_json::to_vec(&doc).unwrap()
    };

    let body = payment("COMPLETED");
    let res = json_of(send(&url, &[("x-square-hmacsha256-signature", &sign(&body))], &body).await).await;
    assert_eq!(res["status"], "accepted", "{res}");
    assert_eq!(res["event_id"], "ev-COMPLETED");
    let pending = payment("PENDING");
    let res = json_of(send(&url, &[("x-square-hmacsha256-signature", &sign(&pending))], &pending).await).await;
    assert_eq!(res["status"], "ignored", "{res}");
    // Another body under that signature, and no signature: 401, and no challenge to answer.
    for headers in [vec![("x-square-hmacsha256-signature", sign(&pending))], vec![]] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let res = send(&url, &headers, &body).await;
        assert_eq!(res.status(), 401);
        assert!(res.headers().get("www-authenticate").is_none());
        assert_eq!(json_of(res).await["reason"], "signature");
    }

    let records = read_topic(&topic, 1, Duration::from_secs(3));
    let values: Vec<&Json> = records.iter().map(|r| &r.value).collect();
    assert_eq!(values, [&json!({"order_id": "12345", "transaction_id": "KkAk", "amount": 100.0})]);
    gw.stop().await;
}

/// An Adyen source checked by `verify`, whose rule publishes each item `when` takes to `topic`
/// and answers `[accepted]`.
fn adyen_source(topic: &str, verify: &str, when: &str) -> String {
    format!(
        r#"
kafka: {{ brokers: "${{KAFKA_BROKERS}}" }}
sources:
  - name: adyen
    path: /webhooks/adyen
    verify: {verify}
    event_type: $.eventCode
    rules:
      - name: authorised
        for_each: $.notificationItems[*].NotificationRequestItem
        when: {when}
        emit:
          topic: {topic}
          schema: event.json
          key: {{ field: order_id }}
          value:
            order_id: {{ path: $.merchantReference }}
            transaction_id: {{ path: $.pspReference }}
        answer: {{ text: {{ const: "[accepted]" }} }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adyens_batches_come_with_basic_credentials_and_are_answered_accepted() {
    let topic = unique("adyen");
    let verify = r#"{ kind: basic, secrets: ["${ADYEN_WEBHOOK_USER}:${ADYEN_WEBHOOK_PASSWORD}"] }"#;
    let when = r#"{ event_type: AUTHORISATION, all: [{ path: $.success, equals: "true" }] }"#;
    let yaml = adyen_source(&topic, verify, when);
    let env = [("ADYEN_WEBHOOK_USER", "ws_adyen"), ("ADYEN_WEBHOOK_PASSWORD", "a-long-random-password-42")];
    let (_dir, gw) = gateway(&yaml, &topic, &env).await;
    let url = gw.url("/webhooks/adyen");
    let basic = |credentials: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials));
    let item = |psp: &str, code: &str, success: &str, order: &str| {
        json!({"NotificationRequestItem": {"amount": {"currency": "EUR", "value": 1000}, "eventCode": code,
            "eventDate": "2023-11-06T14:30:00+01:00", "merchantAccountCode": "Shop", "merchantReference": order,
            "pspReference": psp, "success": success}})
    };
    let batch = json!({"live": "false", "notificationItems": [
        item("QFQTPCQ8HXSKGK82", "AUTHORISATION", "true", "12345"),
        item("QFQTPCQ8HXSKGK83", "AUTHORISATION", "false", "12346"),
        item("QFQTPCQ8HXSKGK84", "REPORT_AVAILABLE", "true", "report"),
        item("QFQTPCQ8HXSKGK85", "AUTHORISATION", "true", "12347"),
    ]});
    let body = serde_json::to_vec(&batch).unwrap();

    let res = send(&url, &[("authorization", &basic("ws_adyen:a-long-random-password-42"))], &body).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "[accepted]");
    for (authorization, says) in [
        (basic("ws_adyen:a-long-random-password-43"), "unknown user or wrong password"),
        (basic("ws_adyen"), "unknown user or wrong password"),
        ("Bearer a-long-random-password-42".to_owned(), "authorization is not Basic credentials"),
    ] {
        let res = send(&url, &[("authorization", &authorization)], &body).await;
        assert_eq!(res.status(), 401, "{authorization}");
        assert_eq!(res.headers()["www-authenticate"], "Basic realm=\"adyen\"");
        let answer = json_of(res).await;
        assert!(answer["message"].as_str().unwrap().contains(says), "{answer}");
    }
    let res = send(&url, &[], &body).await;
    assert_eq!(res.status(), 401);
    assert_eq!(json_of(res).await["message"], "authentication failed: missing authorization header");

    // The two successful authorisations of the one accepted batch, in its order.
    let records = read_topic(&topic, 2, Duration::from_secs(3));
    let mut got: Vec<&Json> = records.iter().map(|r| &r.value).collect();
    got.sort_by_key(|v| v["order_id"].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        got,
        [
            &json!({"order_id": "12345", "transaction_id": "QFQTPCQ8HXSKGK82"}),
            &json!({"order_id": "12347", "transaction_id": "QFQTPCQ8HXSKGK85"}),
        ]
    );
    gw.stop().await;
}

/// Adyen's HMAC (`kind: adyen`): the batch its own library signed is published item by item;
/// one changed item, or one without its signature, refuses the whole batch with a 401 naming
/// the item, and nothing of it is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adyen_signs_each_item_of_a_batch() {
    const KEY: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";
    let topic = unique("adyen_hmac");
    let yaml = adyen_source(
        &topic,
        r#"{ kind: adyen, secrets: ["${ADYEN_HMAC_KEY}"] }"#,
        "{ event_type: [AUTHORISATION, REFUND] }",
    );
    let (_dir, gw) = gateway(&yaml, &topic, &[("ADYEN_HMAC_KEY", KEY)]).await;
    let url = gw.url("/webhooks/adyen");
    let signed = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/adyen/notification.json")).unwrap();
    let doc: Json = serde_json::from_slice(&signed).unwrap();
    let refused = |pointer: &str, value: Json| {
        let mut d = doc.clone();
        *d.pointer_mut(pointer).unwrap() = value;
        serde_json::to_vec(&d).unwrap()
    };
    for (body, says) in [
        (
            refused("/notificationItems/1/NotificationRequestItem/amount/value", json!(1)),
            "notificationItems[1]: no signature matches",
        ),
        (
            refused("/notificationItems/0/NotificationRequestItem/additionalData", json!({})),
            "notificationItems[0] has no additionalData.hmacSignature",
        ),
        (b"[accepted]".to_vec(), "the body is not JSON: no Adyen notification"),
    ] {
        let res = send(&url, &[], &body).await;
        assert_eq!(res.status(), 401);
        let answer = json_of(res).await;
        assert_eq!(answer["reason"], "signature");
        assert!(answer["message"].as_str().unwrap().ends_with(says), "{answer}");
    }
    let res = send(&url, &[], &signed).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "[accepted]");

    // Only the batch that held, both of its items.
    let records = read_topic(&topic, 2, Duration::from_secs(3));
    let mut values: Vec<&Json> = records.iter().map(|r| &r.value).collect();
    values.sort_by_key(|v| v["order_id"].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        values,
        [
            &json!({"order_id": "12345", "transaction_id": "7914073381342284"}),
            &json!({"order_id": "12346", "transaction_id": "8825408195409505"}),
        ]
    );
    gw.stop().await;
}

/// Adyen asks for both, and so can a source: `verify:` lists Basic credentials and the HMAC,
/// and a webhook must pass each. Wrong credentials are refused as authentication (with the
/// Basic challenge), a changed item as a signature, whichever else holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_can_ask_for_basic_credentials_and_adyens_hmac_together() {
    const KEY: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";
    let topic = unique("adyen_both");
    let verify = r#"[{ kind: basic, secrets: ["ws_adyen:${ADYEN_WEBHOOK_PASSWORD}"] }, { kind: adyen, secrets: ["${ADYEN_HMAC_KEY}"] }]"#;
    let yaml = adyen_source(&topic, verify, "{ event_type: [AUTHORISATION, REFUND] }");
    let env = [("ADYEN_HMAC_KEY", KEY), ("ADYEN_WEBHOOK_PASSWORD", "a-long-random-password-42")];
    let (_dir, gw) = gateway(&yaml, &topic, &env).await;
    let url = gw.url("/webhooks/adyen");
    let signed = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/adyen/notification.json")).unwrap();
    let mut changed: Json = serde_json::from_slice(&signed).unwrap();
    changed["notificationItems"][1]["NotificationRequestItem"]["amount"]["value"] = json!(1);
    let changed = serde_json::to_vec(&changed).unwrap();
    let basic = |credentials: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials));
    let (good, bad) = (basic("ws_adyen:a-long-random-password-42"), basic("ws_adyen:guess"));
    for (authorization, body, says) in [
        (None, &signed, "authentication failed: missing authorization header"),
        (Some(&bad), &signed, "authentication failed: unknown user or wrong password"),
        (Some(&good), &changed, "signature verification failed: notificationItems[1]: no signature matches"),
    ] {
        let headers: Vec<(&str, &str)> = authorization.map(|a| ("authorization", a.as_str())).into_iter().collect();
        let res = send(&url, &headers, body).await;
        assert_eq!(res.status(), 401, "{says}");
        let challenge = res.headers().get("www-authenticate").cloned();
        assert_eq!(challenge.unwrap(), "Basic realm=\"adyen\"");
        let answer = json_of(res).await;
        assert_eq!(answer["message"], says, "{answer}");
    }
    let res = send(&url, &[("authorization", &good)], &signed).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "[accepted]");
    assert_eq!(read_topic(&topic, 2, Duration::from_secs(3)).len(), 2);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_sends_its_token_in_a_header_of_its_own() {
    const TOKEN: &str = "glwt-0123456789abcdef0123";
    let topic = unique("gitlab");
    let yaml = format!(
        r#"
kafka: {{ brokers: "${{KAFKA_BROKERS}}" }}
sources:
  - name: gitlab
    path: /webhooks/gitlab
    verify: {{ kind: token, header: X-Gitlab-Token, secrets: ["${{GITLAB_WEBHOOK_TOKEN}}"] }}
    event_type: {{ header: X-Gitlab-Event }}
    rules:
      - name: merged
        when: {{ event_type: Merge Request Hook, all: [{{ path: $.object_attributes.action, equals: merge }}] }}
        emit:
          topic: {topic}
          schema: event.json
          value:
            order_id: {{ path: $.project.path_with_namespace }}
            transaction_id: {{ path: $.object_attributes.merge_commit_sha }}
"#
    );
    let (_dir, gw) = gateway(&yaml, &topic, &[("GITLAB_WEBHOOK_TOKEN", TOKEN)]).await;
    let url = gw.url("/webhooks/gitlab");
    let body = serde_json::to_vec(&json!({"object_kind": "merge_request",
        "project": {"path_with_namespace": "shop/orders"},
        "object_attributes": {"action": "merge", "merge_commit_sha": "8d2f1e"}}))
    .unwrap();
    let event = ("x-gitlab-event", "Merge Request Hook");

    let res = json_of(send(&url, &[event, ("x-gitlab-token", TOKEN)], &body).await).await;
    assert_eq!(res["status"], "accepted", "{res}");
    for token in [&TOKEN[1..], "", "Bearer glwt-0123456789abcdef0123"] {
        let res = send(&url, &[event, ("x-gitlab-token", token)], &body).await;
        assert_eq!(res.status(), 401, "{token}");
        assert!(res.headers().get("www-authenticate").is_none());
        assert_eq!(json_of(res).await["message"], "authentication failed: x-gitlab-token holds no known token");
    }
    let records = read_topic(&topic, 1, Duration::from_secs(3));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value, json!({"order_id": "shop/orders", "transaction_id": "8d2f1e"}));
    gw.stop().await;
}
