//! Senders that post forms, as they do it. Slack's slash commands: a signed form whose fields
//! are the payload (`form_fields`), published, and answered with the rule's own text (`answer`)
//! once the broker holds the event. Twilio's incoming SMS: a form signed over the public URL it
//! was posted to (`kind: twilio`), answered with TwiML that quotes the
//! sender's text, escaped.

use std::time::Duration;

use crate::common::*;
use crate::handshakes::{SLACK_SECRET, slack_headers};
use serde_json::{Value as Json, json};
use switchyard::app::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_slash_commands_are_forms_published_and_answered_with_the_rules_text() {
    let topic = unique("slash");
    let (_dir, config) = config_file(&format!(
        r#"
kafka: {{ brokers: "${{KAFKA_BROKERS}}" }}
sources:
  - name: slack-commands
    path: /slack/commands
    verify: {{ kind: slack, secrets: ["${{SLACK_SIGNING_SECRET}}"] }}
    form_fields: true
    schema: command.json
    event_type: $.command
    event_id: $.trigger_id
    rules:
      - name: deploy
        when: {{ event_type: /deploy }}
        emit:
          topic: {topic}
          schema: deploy.json
          key: {{ field: service }}
          value:
            service: {{ path: $.text }}
            by: {{ path: $.user_id }}
            respond_to: {{ path: $.response_url }}
        answer:
          text: {{ template: "Deploying {{$.text}}, <@{{$.user_id}}>" }}
      - name: audit
        when: {{ event_type: [/deploy, /rollback] }}
        emit:
          topic: {topic}
          schema: deploy.json
          key: {{ field: service }}
          value: {{ service: {{ path: $.text }}, by: {{ path: $.user_id }}, respond_to: {{ path: $.response_url }} }}
        answer: {{ status: 204 }}
      - name: quiet
        when: {{ event_type: /status }}
        emit:
          topic: {topic}
          schema: deploy.json
          key: {{ field: service }}
          value: {{ service: {{ path: $.text }}, by: {{ path: $.user_id }}, respond_to: {{ path: $.response_url }} }}
"#
    ));
    let dir = config.parent().unwrap();
    std::fs::write(
        dir.join("command.json"),
        r#"{"type": "object", "required": ["command", "text", "user_id", "trigger_id"],
            "properties": {"command": {"type": "string", "pattern": "^/"}, "text": {"type": "string"}}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("deploy.json"), r#"{"type": "object", "required": ["service", "by", "respond_to"]}"#)
        .unwrap();
    let gw = start_with(&config, Role::Ingress, &topic, &[("SLACK_SIGNING_SECRET", SLACK_SECRET)]).await;
    let url = gw.url("/slack/commands");
    // As Slack posts a slash command: a signed form.
    let command = |name: &str, text: &str| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("token", "gIkuvaNzQIHg97ATvDxqgjtO")
            .append_pair("team_id", "T0001")
            .append_pair("channel_id", "C2147483705")
            .append_pair("user_id", "U2147483697")
            .append_pair("command", name)
            .append_pair("text", text)
            .append_pair("response_url", "https://hooks.slack.com/commands/1234/5678")
            .append_pair("trigger_id", &format!("13345224609.738474920.{name}"))
            .finish()
            .into_bytes()
    };
    let send = |body: Vec<u8>, t: i64| {
        let mut req = reqwest::Client::new().post(&url).body(body.clone());
        for (k, v) in slack_headers(&body, t) {
            req = req.header(k, if k == "content-type" { "application/x-www-form-urlencoded".into() } else { v });
        }
        req.send()
    };

    // The first matching rule with an answer gives it (both rules publish).
    let res = send(command("/deploy", "api ✓"), unix_now()).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(res.text().await.unwrap(), "Deploying api ✓, <@U2147483697>");
    // A rule's empty answer, and no answer at all: Switchyard's own JSON.
    let res = send(command("/rollback", "web"), unix_now()).await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(res.text().await.unwrap(), "");
    let res = send(command("/status", "db"), unix_now()).await.unwrap();
    let body: Json = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(body["status"], "accepted", "{body}");
    assert_eq!(body["event_id"], "13345224609.738474920./status");

    // The form is signed as sent: a stale one is refused; so is one that is not a command.
    let res = send(command("/deploy", "api"), unix_now() - 301).await.unwrap();
    assert_eq!(res.status(), 401);
    let res = send(b"command=deploy&text=x".to_vec(), unix_now()).await.unwrap();
    assert_eq!(res.status(), 422);

    let records = read_topic(&topic, 4, Duration::from_secs(3));
    // Keyed by service, so on partitions of their own: in send order per service only.
    let mut values: Vec<&Json> = records.iter().map(|r| &r.value).collect();
    values.sort_by_key(|v| v["service"].as_str().unwrap_or_default().to_owned());
    let by = "U2147483697";
    let respond_to = "https://hooks.slack.com/commands/1234/5678";
    assert_eq!(
        values,
        [
            &json!({"service": "api ✓", "by": by, "respond_to": respond_to}),
            &json!({"service": "api ✓", "by": by, "respond_to": respond_to}),
            &json!({"service": "db", "by": by, "respond_to": respond_to}),
            &json!({"service": "web", "by": by, "respond_to": respond_to}),
        ]
    );
    gw.stop().await;
}

pub(crate) const TWILIO_TOKEN: &str = "twilio-auth-token-0123456789abcdef";
pub(crate) const TWILIO_URL: &str = "https://hooks.example.com/webhooks/twilio/sms";

/// An incoming SMS as Twilio posts it, and its signature made by Twilio's library (twilio
/// 9.13.0, `RequestValidator.compute_signature`) for TWILIO_URL: without a query, and with
/// `?tenant=eu`.
pub(crate) const SMS: &str = "MessageSid=SM0123456789abcdef&AccountSid=AC0123&From=%2B15005550006&To=%2B15005550001&Body=Hello+%26+goodbye+%E2%9C%93&NumMedia=0";
const SMS_SIGNATURE: &str = "MVw52dyIawf/aZDhsLHe7s3cY3I=";
pub(crate) const SMS_SIGNATURE_EU: &str = "yz3JF+HoIkV/LhlHAedxi4vuvPw=";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_messages_are_verified_against_the_public_url_and_answered_with_twiml() {
    let topic = unique("sms");
    let (_dir, config) = config_file(&format!(
        r#"
kafka: {{ brokers: "${{KAFKA_BROKERS}}" }}
sources:
  - name: twilio-sms
    path: /webhooks/twilio/sms
    verify: {{ kind: twilio, secrets: ["${{TWILIO_AUTH_TOKEN}}"], url: "${{TWILIO_URL}}" }}
    form_fields: true
    event_id: $.MessageSid
    rules:
      - name: sms_received
        emit:
          topic: {topic}
          schema: sms.json
          key: {{ field: from }}
          value: {{ from: {{ path: $.From }}, text: {{ path: $.Body }}, sid: {{ path: $.MessageSid }}, tenant: {{ query: tenant, optional: true }} }}
        answer:
          content_type: text/xml
          text: {{ template: "<Response><Message>Thanks for: {{$.Body}}</Message></Response>" }}
"#
    ));
    std::fs::write(config.with_file_name("sms.json"), r#"{"type": "object", "required": ["from", "text", "sid"]}"#)
        .unwrap();
    let env = [("TWILIO_AUTH_TOKEN", TWILIO_TOKEN), ("TWILIO_URL", TWILIO_URL)];
    let gw = start_with(&config, Role::Ingress, &topic, &env).await;
    // Behind a proxy: Twilio signed the public URL; the gateway is reached at its own.
    let send = |query: &str, signature: &str, body: &str| {
        reqwest::Client::new()
            .post(gw.url(&format!("/webhooks/twilio/sms{query}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(body.to_owned())
            .send()
    };

    let res = send("", SMS_SIGNATURE, SMS).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/xml");
    // The sender's text is inserted into the TwiML as text: its `&` escaped.
    assert_eq!(res.text().await.unwrap(), "<Response><Message>Thanks for: Hello &amp; goodbye ✓</Message></Response>");
    // The query the request came with is covered too.
    let res = send("?tenant=eu", SMS_SIGNATURE_EU, SMS).await.unwrap();
    assert_eq!(res.status(), 200);
    for (query, signature, body) in [
        ("?tenant=us", SMS_SIGNATURE_EU, SMS),
        ("", SMS_SIGNATURE_EU, SMS),
        ("", SMS_SIGNATURE, &SMS.replace("NumMedia=0", "NumMedia=1")),
    ] {
        let res = send(query, signature, body).await.unwrap();
        assert_eq!(res.status(), 401, "{query} {body}");
        let answer: Json = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
        assert_eq!(answer["message"], "signature verification failed: no signature matches");
    }

    let records = read_topic(&topic, 2, Duration::from_secs(3));
    assert_eq!(records.len(), 2, "{records:?}");
    let sms = json!({"from": "+15005550006", "text": "Hello & goodbye ✓", "sid": "SM0123456789abcdef"});
    assert_eq!(records[0].value, sms);
    assert_eq!(records[0].key.as_deref(), Some("+15005550006"));
    // A value read from the URL's query (`{ query: tenant }`), which the signature covers.
    let mut eu = sms.clone();
    eu["tenant"] = json!("eu");
    assert_eq!(records[1].value, eu);
    gw.stop().await;
}
