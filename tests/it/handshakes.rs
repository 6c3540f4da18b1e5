//! Senders that check an endpoint before they send it events, as they do it. Slack's Events
//! API: the signed `url_verification` handshake is answered with its `challenge` (as JSON, or
//! as text) before the schema is checked and publishes nothing; signed events are published; a
//! bad signature is a 401. Twitch's EventSub: the message type in a header, the challenge
//! answered as text, a notification published, a revocation ignored. Zoom's url_validation:
//! the plain token back with its keyed hash (`hmac_sha256`). Meta's (WhatsApp's) GET
//! verification (`challenge:`): `hub.challenge` back when the verify token is right, then
//! messages signed with the app secret (`X-Hub-Signature-256`) published.

use std::time::Duration;

use crate::common::*;
use serde_json::{Value as Json, json};
use switchyard::app::Role;

pub const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// Signed as Slack documents it: `v0=` and the hex HMAC-SHA256 of `v0:<timestamp>:<body>`.
pub fn slack_headers(body: &[u8], t: i64) -> Vec<(&'static str, String)> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SLACK_SECRET.as_bytes());
    let mut signed = format!("v0:{t}:").into_bytes();
    signed.extend_from_slice(body);
    let signature = format!("v0={}", hex::encode(aws_lc_rs::hmac::sign(&key, &signed)));
    vec![
        ("content-type", "application/json".into()),
        ("x-slack-request-timestamp", t.to_string()),
        ("x-slack-signature", signature),
    ]
}

async fn send(url: &str, body: &Json, t: i64) -> reqwest::Response {
    let body = serde_json::to_vec(body).unwrap();
    let mut req = reqwest::Client::new().post(url).body(body.clone());
    for (k, v) in slack_headers(&body, t) {
        req = req.header(k, v);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_handshakes_are_answered_and_its_events_published() {
    let topic = unique("slack");
    let dir = tempfile::tempdir().unwrap();
    // The inbound schema describes events only: a handshake would not pass it.
    std::fs::write(
        dir.path().join("event_callback.json"),
        r#"{"type": "object", "required": ["type", "event_id", "event"],
            "properties": {"type": {"const": "event_callback"}, "event_id": {"type": "string"},
                           "event": {"type": "object", "required": ["type", "text"]}}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("message.json"),
        r#"{"type": "object", "required": ["event_id", "text"],
            "properties": {"event_id": {"type": "string"}, "text": {"type": "string"}}}"#,
    )
    .unwrap();
    let config = dir.path().join("routes.yaml");
    let source = |name: &str, answer: &str| {
        format!(
            r#"
  - name: {name}
    path: /webhooks/{name}
    verify: {{ kind: slack, secrets: ["${{SLACK_SIGNING_SECRET}}"] }}
    schema: event_callback.json
    event_type: $.type
    event_id: $.event_id
    replies:
      - name: url_verification
        when: {{ event_type: url_verification }}
        {answer}
    rules:
      - name: message_posted
        when: {{ event_type: event_callback, all: [{{ path: $.event.type, equals: message }}] }}
        emit:
          topic: {topic}
          schema: message.json
          key: {{ field: event_id }}
          value: {{ event_id: {{ path: $.event_id }}, text: {{ path: $.event.text }} }}"#
        )
    };
    let sources = [
        source("slack", "body: { challenge: { path: $.challenge } }"),
        source("slack-text", "text: { path: $.challenge }"),
    ];
    std::fs::write(&config, format!("kafka: {{ brokers: \"${{KAFKA_BROKERS}}\" }}\nsources:{}\n", sources.concat()))
        .unwrap();
    let gw = start_with(&config, Role::Ingress, &topic, &[("SLACK_SIGNING_SECRET", SLACK_SECRET)]).await;
    let now = unix_now();
    let handshake = json!({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "type": "url_verification",
                           "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"});

    // The handshake: the challenge comes back, exactly, and nothing else is in the answer.
    let res = send(&gw.url("/webhooks/slack"), &handshake, now).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: Json = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(body, json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}));
    // …or as plain text.
    let res = send(&gw.url("/webhooks/slack-text"), &handshake, now).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(res.text().await.unwrap(), "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");

    // A handshake is signed like anything else: a stale or forged one is refused.
    let res = send(&gw.url("/webhooks/slack"), &handshake, now - 301).await;
    assert_eq!(res.status(), 401);
    let unsigned = post(&gw.url("/webhooks/slack"), &[("content-type", "application/json")], b"{}".to_vec()).await;
    assert_eq!(unsigned.status, 401);
    assert_eq!(unsigned.body["message"], "signature verification failed: missing x-slack-request-timestamp header");

    // A handshake without its challenge cannot be answered: 422, naming what is missing.
    let res = send(&gw.url("/webhooks/slack"), &json!({"type": "url_verification"}), now).await;
    assert_eq!(res.status(), 422);
    let body: Json = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(body["reason"], "mapping");
    assert_eq!(
        body["message"],
        "reply 'url_verification' cannot answer this payload: body.challenge: required data is missing: no value at $.challenge"
    );

    // An event is published; the handshakes before it published nothing.
    let event = json!({"type": "event_callback", "event_id": "Ev0PV52K21",
                       "event": {"type": "message", "text": "hello", "channel": "C0LAN2Q65"}});
    let res = send(&gw.url("/webhooks/slack"), &event, now).await;
    assert_eq!(res.status(), 200);
    let body: Json = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(body["status"], "accepted", "{body}");
    assert_eq!(body["event_id"], "Ev0PV52K21");
    let records = read_topic(&topic, 2, Duration::from_secs(3));
    assert_eq!(records.len(), 1, "only the event was published: {records:?}");
    assert_eq!(records[0].value, json!({"event_id": "Ev0PV52K21", "text": "hello"}));

    // Replies are counted as such.
    let metrics = reqwest::get(gw.url("/metrics")).await.unwrap().text().await.unwrap();
    let replied = metrics.lines().find(|l| {
        l.starts_with("switchyard_webhooks_total{")
            && l.contains("source=\"slack\"")
            && l.contains("outcome=\"replied\"")
    });
    assert!(replied.is_some_and(|l| l.ends_with(" 1")), "{metrics}");
    gw.stop().await;
}

const TWITCH_SECRET: &str = "s3cRe7-twitch-eventsub-secret";

/// Signed as Twitch documents it: `sha256=` and the hex HMAC-SHA256 of the message id, the
/// timestamp and the body.
async fn send_twitch(url: &str, kind: &str, id: &str, body: &Json) -> reqwest::Response {
    let body = serde_json::to_vec(body).unwrap();
    let at = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, TWITCH_SECRET.as_bytes());
    let signed = [id.as_bytes(), at.as_bytes(), &body].concat();
    let signature = format!("sha256={}", hex::encode(aws_lc_rs::hmac::sign(&key, &signed)));
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("twitch-eventsub-message-id", id)
        .header("twitch-eventsub-message-timestamp", at)
        .header("twitch-eventsub-message-signature", signature)
        .header("twitch-eventsub-message-type", kind)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twitch_challenges_are_answered_as_text_and_its_notifications_published() {
    let topic = unique("twitch");
    let (_dir, config) = config_file(&format!(
        r#"
kafka: {{ brokers: "${{KAFKA_BROKERS}}" }}
sources:
  - name: twitch
    path: /webhooks/twitch
    verify: {{ kind: twitch, secrets: ["${{TWITCH_EVENTSUB_SECRET}}"] }}
    event_type: {{ header: Twitch-Eventsub-Message-Type }}
    event_id: {{ header: Twitch-Eventsub-Message-Id }}
    replies:
      - name: callback_verification
        when: {{ event_type: webhook_callback_verification }}
        text: {{ path: $.challenge }}
    rules:
      - name: followed
        when: {{ event_type: notification, all: [{{ path: $.subscription.type, equals: channel.follow }}] }}
        emit:
          topic: {topic}
          schema: follow.json
          key: {{ field: broadcaster }}
          value:
            broadcaster: {{ path: $.event.broadcaster_user_id }}
            follower: {{ path: $.event.user_login }}
            message_id: {{ header: Twitch-Eventsub-Message-Id }}
"#
    ));
    std::fs::write(
        config.with_file_name("follow.json"),
        r#"{"type": "object", "required": ["broadcaster", "follower", "message_id"]}"#,
    )
    .unwrap();
    let gw = start_with(&config, Role::Ingress, &topic, &[("TWITCH_EVENTSUB_SECRET", TWITCH_SECRET)]).await;
    let url = gw.url("/webhooks/twitch");
    let subscription = json!({"id": "f1c2a387", "type": "channel.follow", "version": "2"});

    let challenge = json!({"challenge": "pogchamp-kappa-360noscope-vohiyo", "subscription": subscription});
    let res = send_twitch(&url, "webhook_callback_verification", "m-1", &challenge).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(res.text().await.unwrap(), "pogchamp-kappa-360noscope-vohiyo");

    let follow = json!({"subscription": subscription,
                        "event": {"user_login": "cool_user", "broadcaster_user_id": "1337"}});
    let res = send_twitch(&url, "notification", "m-2", &follow).await;
    let body: Json = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(body["status"], "accepted", "{body}");
    assert_eq!(body["event_id"], "m-2");

    let revoked = json!({"subscription": {"id": "f1c2a387", "status": "authorization_revoked"}});
    let res = send_twitch(&url, "revocation", "m-3", &revoked).await;
    let body: Json = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(body["status"], "ignored", "{body}");

    let records = read_topic(&topic, 2, Duration::from_secs(3));
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].value, json!({"broadcaster": "1337", "follower": "cool_user", "message_id": "m-2"}));
    gw.stop().await;
}

const ZOOM_SECRET: &str = "zoom-secret-token-0123456789";

fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(aws_lc_rs::hmac::sign(&key, &parts.concat()))
}

/// Signed as Zoom documents it: `v0=` and the hex HMAC-SHA256 of `v0:<timestamp>:<body>`.
async fn send_zoom(url: &str, body: &Json) -> Json {
    let body = serde_json::to_vec(body).unwrap();
    let t = unix_now().to_string();
    let signature = format!("v0={}", hmac_hex(ZOOM_SECRET, &[b"v0:", t.as_bytes(), b":", &body]));
    let res = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-zm-request-timestamp", t)
        .header("x-zm-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    serde_json::from_slice(&res.bytes().await.unwrap()).unwrap()
}

/// Zoom's `endpoint.url_validation` wants the plain token back with its HMAC under the
/// secret token: a reply with a `hmac_sha256` step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoom_url_validation_is_answered_with_the_keyed_hash_of_its_token() {
    let topic = unique("zoom");
    let (_dir, config) = config_file(&format!(
        r#"
kafka: {{ brokers: "${{KAFKA_BROKERS}}" }}
sources:
  - name: zoom
    path: /webhooks/zoom
    verify: {{ kind: zoom, secrets: ["${{ZOOM_WEBHOOK_SECRET_TOKEN}}"] }}
    event_type: $.event
    replies:
      - name: url_validation
        when: {{ event_type: endpoint.url_validation }}
        body:
          plainToken: {{ path: $.payload.plainToken }}
          encryptedToken:
            path: $.payload.plainToken
            then: [{{ hmac_sha256: {{ secret: "${{ZOOM_WEBHOOK_SECRET_TOKEN}}" }} }}]
    rules:
      - name: meeting_started
        when: {{ event_type: meeting.started }}
        emit:
          topic: {topic}
          schema: meeting.json
          value: {{ meeting: {{ path: $.payload.object.id }} }}
"#
    ));
    std::fs::write(config.with_file_name("meeting.json"), r#"{"type": "object", "required": ["meeting"]}"#).unwrap();
    let gw = start_with(&config, Role::Ingress, &topic, &[("ZOOM_WEBHOOK_SECRET_TOKEN", ZOOM_SECRET)]).await;
    let url = gw.url("/webhooks/zoom");

    let validation = json!({"payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"}, "event_ts": 1654503849680_u64,
                            "event": "endpoint.url_validation"});
    let answer = send_zoom(&url, &validation).await;
    let expected = hmac_hex(ZOOM_SECRET, &[b"qgg8vlvZRS6UYooatFL8Aw"]);
    assert_eq!(answer, json!({"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected}));

    let started = json!({"event": "meeting.started", "payload": {"object": {"id": "85066271219"}}});
    assert_eq!(send_zoom(&url, &started).await["status"], "accepted");
    let records = read_topic(&topic, 1, Duration::from_secs(10));
    assert_eq!(records[0].value, json!({"meeting": "85066271219"}));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metas_get_verification_is_answered_and_its_signed_messages_published() {
    const APP_SECRET: &str = "meta-app-secret-0123456789abcdef";
    let topic = unique("whatsapp");
    let (_dir, config) = config_file(&format!(
        r#"
kafka: {{ brokers: "${{KAFKA_BROKERS}}" }}
sources:
  - name: whatsapp
    path: /webhooks/whatsapp
    verify: {{ kind: hmac-sha256, secrets: ["${{META_APP_SECRET}}"] }}
    challenge:
      echo: hub.challenge
      require: {{ hub.mode: subscribe, hub.verify_token: "${{META_VERIFY_TOKEN}}" }}
    rules:
      - name: message
        for_each: $.entry[*].changes[*].value.messages[*]
        emit:
          topic: {topic}
          schema: message.json
          key: {{ field: from }}
          value: {{ from: {{ path: $.from }}, text: {{ path: $.text.body }}, id: {{ path: $.id }} }}
"#
    ));
    std::fs::write(config.with_file_name("message.json"), r#"{"type": "object", "required": ["from", "text", "id"]}"#)
        .unwrap();
    let env = [("META_APP_SECRET", APP_SECRET), ("META_VERIFY_TOKEN", "a-verify-token-of-ours")];
    let gw = start_with(&config, Role::Ingress, &topic, &env).await;
    let url = gw.url("/webhooks/whatsapp");
    let client = reqwest::Client::new();
    let verify = |token: &str| {
        client.get(format!("{url}?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={token}")).send()
    };

    // The verification, as Meta makes it when the webhook is set up.
    let res = verify("a-verify-token-of-ours").await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.text().await.unwrap(), "1158201444");
    let res = verify("not-ours").await.unwrap();
    assert_eq!(res.status(), 403);
    let refused: Json = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(refused["reason"], "challenge");
    // Other methods: told both.
    let res = client.delete(&url).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET, POST");

    // A message, signed with the app secret as Meta signs: published.
    let message = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp", "messages": [
            {"from": "16315551234", "id": "wamid.ABGGFlA5FpafAgo6EhE", "timestamp": "1699281000",
             "type": "text", "text": {"body": "Where is my order 12345?"}}]}}]}]});
    let body = serde_json::to_vec(&message).unwrap();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, APP_SECRET.as_bytes());
    let signature = format!("sha256={}", hex::encode(aws_lc_rs::hmac::sign(&key, &body)));
    let headers = [("content-type", "application/json"), ("x-hub-signature-256", signature.as_str())];
    let res = post(&url, &headers, body).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let records = read_topic(&topic, 1, Duration::from_secs(3));
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].value,
        json!({"from": "16315551234", "text": "Where is my order 12345?", "id": "wamid.ABGGFlA5FpafAgo6EhE"})
    );
    gw.stop().await;
}
