//! `check` and `test`: one payload or event through the pipeline the server runs, and the
//! config's own test cases.

use super::*;

/// A sender's GET verification is a test case (`method: GET`, a `query`) and a dry run
/// (`check --get`), answered by the server's own function: the challenge echoed, or refused.
#[test]
fn a_get_verification_is_tested_and_checked_as_the_server_answers_it() {
    let challenge = "{ echo: hub.challenge, require: { hub.mode: subscribe, hub.verify_token: \"${TOKEN:-t0k3n}\" } }";
    let routes =
        SOURCE.replace("    event_type: $.type\n", &format!("    event_type: $.type\n    challenge: {challenge}\n"));
    let cases = r#"tests:
  - name: meta verifies the endpoint
    source: s
    method: GET
    query: hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=t0k3n
    expect: { status: replied, reply: "1158201444" }
  - name: a wrong token
    source: s
    method: GET
    query: hub.mode=subscribe&hub.challenge=1&hub.verify_token=guess
    expect: { status: rejected, http_status: 403, reason: challenge, message_contains: "'hub.verify_token' is not the one expected" }
  - name: no challenge
    source: s
    method: GET
    query: hub.mode=subscribe&hub.verify_token=t0k3n
    expect: { status: rejected, http_status: 400 }
  - { name: a webhook still, source: s, body: { id: "1" }, expect: { status: accepted } }
"#;
    let dir = config(&format!("{routes}{cases}"));
    let out = switchyard(&["test"], dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).ends_with("4 passed, 0 failed\n"), "{}", text(&out));
    // A name filter runs the cases whose name has the text; one that matches none fails.
    let out = switchyard(&["test", "token"], dir.path(), &[]);
    assert_eq!(text(&out), "ok   a wrong token\n1 passed, 0 failed, 3 filtered out\n");
    let out = switchyard(&["test", "nothing like it"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(text(&out), "no test case's name contains 'nothing like it' (4 cases filtered out)\n");
    // `test` reads no environment: a token without a default stands for `$TOKEN`, which a
    // case sends to be answered.
    let unset = format!("{}{cases}", routes.replace("${TOKEN:-t0k3n}", "${TOKEN}")).replace("=t0k3n", "=$TOKEN");
    let out = switchyard(&["test"], config(&unset).path(), &[("TOKEN", "t0k3n")]);
    assert!(text(&out).ends_with("4 passed, 0 failed\n"), "{}", text(&out));

    let check = |query: &str| switchyard(&["check", "--source", "s", "--get", "--query", query], dir.path(), &[]);
    let out = check("hub.mode=subscribe&hub.challenge=a+b&hub.verify_token=t0k3n");
    assert!(out.status.success(), "{}", text(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"status": "replied", "event_id": null, "reply": "challenge", "http_status": 200, "body": "a b"})
    );
    let out = check("hub.mode=subscribe&hub.challenge=1");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["reason"], "challenge");

    // Cases that could not mean anything are named before they run.
    let wrong = r#"tests:
  - { name: a GET with a body, source: s, method: GET, body: {}, expect: { status: replied } }
  - { name: a GET accepted, source: s, method: GET, query: "hub.challenge=1", expect: { status: accepted } }
  - { name: a GET to a source without a challenge, source: t, method: GET, query: "challenge=1", expect: { status: replied } }
  - { name: an event with a query, topic: t, query: "a=1", body: {}, expect: { calls: [] } }
"#;
    let other = "  - name: t\n    path: /hooks/t\n    verify: { kind: none }\n    rules: []\n";
    let dispatch = "dispatch:\n  - name: d\n    topic: t\n    group: g\n    rules:\n      - name: call\n        request: { method: POST, url: \"http://o/x\" }\n";
    let dir = config(&format!("{routes}{other}{dispatch}{wrong}"));
    let out = switchyard(&["test"], dir.path(), &[]);
    assert!(text(&out).ends_with("0 passed, 4 failed\n"), "{}", text(&out));
    for says in [
        "a GET case sends no payload: its `query` is the request",
        "a GET case is `replied` (the challenge echoed) or `rejected`, never accepted",
        "`method: GET` is the sender's verification of the endpoint, and source 't' has no `challenge:` to answer it",
        "`method` and `query` are a webhook's request (with `source`), not an event's",
    ] {
        assert!(text(&out).contains(says), "{says}\n{}", text(&out));
    }
    let out = switchyard(&["check", "--source", "t", "--get"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("source 't' has no `challenge:`, so the server answers a GET with 405"),
        "{}",
        text(&out)
    );
}

#[test]
fn check_prints_events_and_planned_calls() {
    let out = switchyard(
        &["check", "--source", "stripe", "--payload", "samples/stripe/checkout_session_completed.json"],
        &repo(),
        &[("ORDER_SERVICE_URL", "http://orders.internal:9000")],
    );
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["status"], "accepted");
    assert_eq!(doc["events"][0]["topic"], "payments");
    assert_eq!(doc["events"][0]["key"], "12345");
    assert_eq!(doc["events"][0]["headers"]["event_type"], "payment_successful");
    assert_eq!(doc["events"][0]["value"]["payment_amount"], 100.0);
    assert_eq!(doc["calls"][0]["method"], "PATCH");
    assert_eq!(doc["calls"][0]["url"], "http://orders.internal:9000/orders/12345");
    assert_eq!(doc["calls"][0]["headers"]["idempotency-key"], "evt_1OJ5kZ2eZvKYlo2CsH9XkQ7u");
    assert_eq!(doc["calls"][0]["body"]["order_status"], "processing");
}

/// `--payload -` reads the body from standard input (`curl … | switchyard check`), and gives
/// the same answer as the file.
#[test]
fn check_reads_the_payload_from_standard_input_with_a_dash() {
    use std::io::Write;
    let args = ["check", "--source", "stripe", "--payload"];
    let file = "samples/stripe/checkout_session_completed.json";
    let from_file = switchyard(&[&args[..], &[file]].concat(), &repo(), &[]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([&args[..], &["-"]].concat())
        .current_dir(repo())
        .env_clear()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&std::fs::read(repo().join(file)).unwrap()).unwrap();
    let from_stdin = child.wait_with_output().unwrap();
    assert!(from_stdin.status.success(), "{}", text(&from_stdin));
    assert_eq!(String::from_utf8_lossy(&from_stdin.stdout), String::from_utf8_lossy(&from_file.stdout));
    assert!(String::from_utf8_lossy(&from_stdin.stdout).contains("\"status\": \"accepted\""));
}

/// Nor a body's (a JSON property, a form's field and its `name[…]` members) whose config
/// reads it.
#[test]
fn check_shows_no_value_that_comes_from_the_environment() {
    let routes = std::fs::read_to_string(repo().join("routes.yaml")).unwrap().replace(
        "            Idempotency-Key: \"{header.event_id}\"\n",
        "            Idempotency-Key: \"{header.event_id}\"\n            X-Api-Key: \"${ORDERS_KEY}\"\n            X-Shop: eu-1\n          query: { key: \"k-${ORDERS_KEY}\", v: \"2\" }\n",
    );
    let routes = routes.replace(
        "            order_status: { const: processing }\n",
        "            order_status: { const: processing }\n            auth: { object: { key: { const: \"${ORDERS_KEY}\" }, v: { const: 2 } } }\n",
    );
    assert!(routes.contains("X-Api-Key") && routes.contains("auth:"), "routes.yaml changed");
    let dir = config(&routes);
    std::os::unix::fs::symlink(repo().join("samples"), dir.path().join("samples")).unwrap();
    let env = [("ORDERS_KEY", "s3cret"), ("ORDER_SERVICE_TOKEN", "t0ken"), ("STRIPE_WEBHOOK_SECRET", "whsec_x")];
    let out = switchyard(
        &["check", "--source", "stripe", "--payload", "samples/stripe/checkout_session_completed.json"],
        dir.path(),
        &env,
    );
    assert!(out.status.success(), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(!shown.contains("s3cret") && !shown.contains("t0ken"), "{shown}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let call = &doc["calls"][0];
    assert_eq!(call["url"], "http://localhost:8081/orders/12345?key=<redacted>&v=2");
    assert_eq!(call["headers"]["x-api-key"], "<redacted>");
    assert_eq!(call["headers"]["authorization"], "Bearer <redacted>");
    assert_eq!(call["headers"]["x-shop"], "eu-1", "values written in the config are shown");
    assert_eq!(call["headers"]["idempotency-key"], "evt_1OJ5kZ2eZvKYlo2CsH9XkQ7u");
    assert_eq!(call["body"]["auth"], "<redacted>");
    assert_eq!(call["body"]["order_status"], "processing", "values written in the config are shown");
    // The same fields sent as a form.
    let dir = config(&routes.replacen(
        "          body:\n            order_status",
        "          form:\n            order_status",
        1,
    ));
    std::os::unix::fs::symlink(repo().join("samples"), dir.path().join("samples")).unwrap();
    let out = switchyard(
        &["check", "--source", "stripe", "--payload", "samples/stripe/checkout_session_completed.json"],
        dir.path(),
        &env,
    );
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let form = doc["calls"][0]["body"].as_str().unwrap();
    assert!(
        form.starts_with("order_status=processing&auth%5Bkey%5D=%3Credacted%3E&auth%5Bv%5D=%3Credacted%3E&"),
        "{form}"
    );
}

#[test]
fn check_reports_rejections_like_the_server_and_verifies_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"id": "evt_1", "object": "event", "type": "x", "created": "yesterday", "data": {"object": {}}}"#,
    )
    .unwrap();
    let out = switchyard(&["check", "--source", "stripe", "--payload", bad.to_str().unwrap()], &repo(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((doc["status"].as_str(), doc["http_status"].as_u64()), (Some("rejected"), Some(422)));
    assert_eq!(doc["violations"][0]["path"], "/created");

    // --verify checks the signature with the secret from the environment.
    let payload = repo().join("samples/stripe/checkout_session_completed.json");
    let body = std::fs::read(&payload).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let sig = switchyard::pipeline::verify::stripe_signature(b"whsec_cli", now, &body);
    let args = ["check", "--source", "stripe", "--payload", payload.to_str().unwrap(), "--verify"];
    let header = format!("Stripe-Signature: {sig}");
    let mut with_header = args.to_vec();
    with_header.extend(["--header", header.as_str()]);
    let ok = switchyard(&with_header, &repo(), &[("STRIPE_WEBHOOK_SECRET", "whsec_cli")]);
    assert!(ok.status.success(), "{}", text(&ok));
    let wrong = switchyard(&with_header, &repo(), &[("STRIPE_WEBHOOK_SECRET", "whsec_other")]);
    assert_eq!(wrong.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&wrong.stdout).unwrap();
    assert_eq!((doc["http_status"].as_u64(), doc["reason"].as_str()), (Some(401), Some("signature")));
}

/// Twilio's signature covers the query the webhook came with: `check --verify` takes it with
/// `--query` (Twilio's library signed the SMS for `?tenant=eu`).
#[test]
fn check_verifies_a_signature_over_the_query_it_is_given() {
    use crate::forms::{SMS, SMS_SIGNATURE_EU, TWILIO_TOKEN, TWILIO_URL};
    let yaml = "sources:
  - name: sms
    path: /webhooks/twilio/sms
    verify: { kind: twilio, secrets: [\"${TWILIO_AUTH_TOKEN}\"], url: \"${TWILIO_URL}\" }
    form_fields: true
    rules:
      - name: r
        emit: { topic: t, schema: min.json, value: { order_id: { path: $.MessageSid } } }
";
    let dir = config(yaml);
    std::fs::write(dir.path().join("sms.txt"), SMS).unwrap();
    let env = [("TWILIO_AUTH_TOKEN", TWILIO_TOKEN), ("TWILIO_URL", TWILIO_URL)];
    let check = |query: &[&str]| {
        let header = format!("X-Twilio-Signature: {SMS_SIGNATURE_EU}");
        let mut args = vec!["check", "--source", "sms", "--payload", "sms.txt", "--verify", "--header", &header];
        args.extend(["--header", "Content-Type: application/x-www-form-urlencoded"]);
        args.extend(query);
        switchyard(&args, dir.path(), &env)
    };
    for query in [["--query", "tenant=eu"], ["--query", "?tenant=eu"]] {
        let out = check(&query);
        assert!(out.status.success(), "{}", text(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["events"][0]["value"]["order_id"], "SM0123456789abcdef", "{doc}");
    }
    for query in [&["--query", "tenant=us"][..], &[]] {
        let out = check(query);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!((doc["http_status"].as_u64(), doc["reason"].as_str()), (Some(401), Some("signature")));
    }
}

#[test]
fn test_runs_the_shipped_cases() {
    let out = switchyard(&["test", "-c", "routes.yaml"], &repo(), &[("ORDER_SERVICE_URL", "http://elsewhere")]);
    assert!(out.status.success(), "{}", text(&out));
    let out = text(&out);
    assert!(out.lines().any(|l| l.starts_with("ok   a paid checkout")), "{out}");
    let summary = out.lines().last().unwrap();
    let passed: usize = summary.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 9 && summary.ends_with(" passed, 0 failed"), "{summary}");
}

/// A dispatcher-only config (its events come from other producers) tests its rules with event
/// cases: a canonical event consumed from a topic, and the calls its dispatchers would make.
#[test]
fn event_cases_test_the_dispatch_rules_of_a_dispatcher_only_config() {
    let dispatch = r#"dispatch:
  - name: orders
    topic: payments
    group: g
    rules:
      - name: mark
        when: { event_type: payment_successful }
        request:
          method: PATCH
          url: http://orders.internal/orders/{order_id}
          headers: { Idempotency-Key: "{header.event_id}" }
          body: { order_status: { const: processing }, amount: { path: $.payment_amount } }
tests:
  - name: passes
    topic: payments
    key: "7"
    headers: { event_id: evt_7 }
    body: { event_type: payment_successful, order_id: "7", payment_amount: 1.5 }
    expect:
      calls: [{ method: PATCH, url: http://orders.internal/orders/7, headers: { Idempotency-Key: evt_7 },
                body: { order_status: processing, amount: 1.5 } }]
  - name: other event types make no call
    topic: payments
    body: { event_type: refund, order_id: "7" }
    expect: { calls: [] }
  - name: a missing amount is a dead letter
    topic: payments
    body: { event_type: payment_successful, order_id: "7" }
    expect: { calls: [{ dead_letter: "no value at $.payment_amount" }] }
  - name: wrong url
    topic: payments
    headers: { event_id: e }
    body: { event_type: payment_successful, order_id: "7", payment_amount: 1 }
    expect: { calls: [{ url: http://orders.internal/orders/8 }] }
  - name: wrong dead letter
    topic: payments
    headers: { event_id: e }
    body: { event_type: payment_successful, order_id: "7", payment_amount: 1 }
    expect: { calls: [{ dead_letter: "nope" }] }
  - name: unknown topic
    topic: refunds
    body: {}
    expect: { calls: [] }
  - name: a webhook expectation
    topic: payments
    body: {}
    expect: { status: accepted, calls: [] }
  - name: nothing expected
    topic: payments
    body: {}
    expect: {}
  - name: both
    source: s
    topic: payments
    body: {}
    expect: { calls: [] }
"#;
    let dir = config(dispatch);
    // `validate` names every case that cannot run as a warning (the server does not need them).
    let out = switchyard(&["validate"], dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let warnings = text(&out);
    assert_says(
        &warnings,
        &[
            "routes.yaml:40:11: warning: test case 'unknown topic': no dispatcher consumes topic 'refunds' (they consume: payments)",
            "routes.yaml:44:11: warning: test case 'a webhook expectation': an event case expects `calls` only",
            "routes.yaml:48:11: warning: test case 'nothing expected': an event case expects `calls` only",
            "routes.yaml:52:11: warning: test case 'both': a case names either a `source` (to post a webhook to) or a `topic`",
        ],
    );
    assert_eq!(warnings.matches("warning: test case").count(), 4, "{warnings}");
    let out = switchyard(&["test"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let out = text(&out);
    for passing in ["passes", "other event types make no call", "a missing amount is a dead letter"] {
        assert!(out.lines().any(|l| l == format!("ok   {passing}")), "{passing}: {out}");
    }
    assert_says(
        &out,
        &[
            "call 0: expected url http://orders.internal/orders/8, got http://orders.internal/orders/7",
            r#"call 0: expected a dead letter saying "nope", got PATCH http://orders.internal/orders/7"#,
            "no dispatcher consumes topic 'refunds' (they consume: payments)",
            "an event case expects `calls` only (`calls: []` for none)",
            "a case names either a `source` (to post a webhook to) or a `topic`",
        ],
    );
    assert_eq!(out.matches("an event case expects `calls` only").count(), 2, "{out}");
    assert!(out.lines().last().unwrap().ends_with("3 passed, 6 failed"), "{out}");
}

#[test]
fn check_prints_the_calls_an_event_consumed_from_a_topic_makes() {
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    let value = r#"{"event_type": "payment_successful", "event_timestamp": "2023-11-06T14:30:00Z",
        "order_id": "a/b", "payment_amount": 1.0, "currency": "EUR", "payment_method": "SEPA Debit",
        "transaction_id": "t1", "customer_id": null, "payment_status": "Success"}"#;
    std::fs::write(&event, value).unwrap();
    let event = event.to_str().unwrap();
    let args = ["check", "--topic", "payments", "--payload", event, "--key", "a/b", "--header", "event_id: evt_9"];
    let out = switchyard(&args, &repo(), &[("ORDER_SERVICE_URL", "http://orders.internal:9000")]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let call = &doc["calls"][0];
    assert_eq!(call["dispatcher"], "order_service");
    assert_eq!(call["url"], "http://orders.internal:9000/orders/a%2Fb");
    assert_eq!(call["headers"]["idempotency-key"], "evt_9");
    assert_eq!(call["body"]["payment_method"], "SEPA Debit");
    assert_eq!(doc["calls"].as_array().unwrap().len(), 1);

    let out = switchyard(&["check", "--topic", "refunds", "--payload", event], &repo(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_says(&text(&out), &["no dispatcher consumes topic 'refunds' (they consume: payments)"]);
    let out = switchyard(&["check", "--topic", "payments", "--source", "stripe", "--payload", event], &repo(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// `switchyard test | head -1`: the reader goes away, and the command ends quietly with 141 (as
/// SIGPIPE ends other Unix tools), not in a panic.
#[test]
fn a_reader_that_goes_away_ends_a_command_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["test", "-c", "routes.yaml"])
        .current_dir(repo())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before the config is even compiled: the first line written meets a closed pipe.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141), "{}", text(&out));
    assert!(out.stderr.is_empty(), "{}", text(&out));
}

/// Any other failed write (here a full disk) fails the command and says why: a truncated
/// report never passes for a complete one.
#[test]
fn a_failed_write_fails_the_command() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["test", "-c", "routes.yaml"])
        .current_dir(repo())
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write to stdout"), "{out:?}");
}

#[test]
fn test_reports_each_failing_case_and_exits_1() {
    let shipped = std::fs::read_to_string(repo().join("routes.yaml")).unwrap();
    let broken =
        shipped.replacen("url: http://localhost:8081/orders/12345", "url: http://localhost:8081/orders/999", 1);
    let dir = config(&broken);
    std::fs::create_dir_all(dir.path().join("samples")).unwrap();
    std::os::unix::fs::symlink(repo().join("samples/stripe"), dir.path().join("samples/stripe")).unwrap();
    let out = switchyard(&["test"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let out = text(&out);
    assert!(out.contains("FAIL a paid checkout becomes payment_successful and a PATCH on the order service"), "{out}");
    assert!(
        out.contains("expected url http://localhost:8081/orders/999, got http://localhost:8081/orders/12345"),
        "{out}"
    );
    assert!(out.lines().last().unwrap().ends_with(" passed, 1 failed"), "{out}");
}

#[test]
fn test_on_a_config_without_cases_says_so() {
    let dir = config(&calling("http://o/x", ""));
    let out = switchyard(&["test"], dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        text(&out),
        "routes.yaml has no test cases: its `tests:` section lists them (README, Config tooling)\n0 passed, 0 failed\n"
    );
}

/// Cases that could not run, or whose expectations would not be checked, are named by
/// `validate` (as warnings, with their line) and fail in `test`; so is a name used twice.
#[test]
fn test_cases_that_cannot_run_or_would_check_nothing_are_named_before_they_run() {
    let shipped = std::fs::read_to_string(repo().join("routes.yaml")).unwrap();
    let cases = r#"
  - name: unknown source
    source: strpe
    body: {}
    expect: { status: accepted }
  - name: a reason on an accepted webhook
    source: stripe
    payload: samples/stripe/checkout_session_completed.json
    expect: { status: accepted, reason: schema }
  - name: events of an ignored webhook
    source: stripe
    payload: samples/stripe/checkout_session_completed.json
    set: { /type: invoice.paid }
    expect: { status: ignored, events: [] }
  - name: unknown source
    source: stripe
    payload: samples/stripe/nope.json
    expect: { status: accepted }
  - name: a pointer without its slash
    source: stripe
    payload: samples/stripe/checkout_session_completed.json
    set: { data/object/currency: eur }
    expect: { status: accepted }
  - name: a header name with a space
    source: stripe
    payload: samples/stripe/checkout_session_completed.json
    headers: { Stripe Signature: x }
    expect: { status: accepted }
"#;
    let dir = config(&format!("{shipped}{cases}"));
    std::fs::create_dir_all(dir.path().join("samples")).unwrap();
    std::os::unix::fs::symlink(repo().join("samples/stripe"), dir.path().join("samples/stripe")).unwrap();
    let line = |name: &str| shipped.lines().count() + 1 + cases.lines().position(|l| l.ends_with(name)).unwrap();
    let out = switchyard(&["validate"], dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = text(&out);
    assert_says(
        &out,
        &[
            &format!(
                "routes.yaml:{}:11: warning: test case 'unknown source': no source named 'strpe' (the config has: stripe)",
                line("unknown source")
            ),
            &format!(
                "routes.yaml:{}:11: warning: test case 'a reason on an accepted webhook': expect.http_status, reason, violations and message_contains describe a rejection: with status accepted they would not be checked",
                line("accepted webhook")
            ),
            &format!(
                "routes.yaml:{}:11: warning: test case 'events of an ignored webhook': expect.events and calls are what an accepted webhook gives: with status ignored they would not be checked",
                line("ignored webhook")
            ),
            &format!("test case 'unknown source' has the name of the case at line {}", line("unknown source")),
            "samples/stripe/nope.json: No such file",
            "'data/object/currency' is not a JSON Pointer: it starts with '/' (as in /data/object/currency)",
            "test case 'a header name with a space': bad header name 'Stripe Signature'",
        ],
    );
    assert_eq!(out.matches("warning: test case").count(), 7, "{out}");

    let out = switchyard(&["test"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let out = text(&out);
    assert_says(
        &out,
        &["FAIL unknown source", "FAIL a reason on an accepted webhook", "FAIL events of an ignored webhook"],
    );
    assert!(out.lines().last().unwrap().ends_with(" passed, 6 failed"), "{out}");
}

/// `test --format github` prints, besides its text, a workflow command per failing case on the
/// case's line (the problems as the annotation's lines), and one per config error.
#[test]
fn test_prints_github_annotations_on_the_failing_cases() {
    let shipped = std::fs::read_to_string(repo().join("routes.yaml")).unwrap();
    let wrong = shipped.replacen("currency: USD", "currency: EUR", 1);
    assert_ne!(wrong, shipped);
    let dir = config(&wrong);
    std::os::unix::fs::symlink(repo().join("samples"), dir.path().join("samples")).unwrap();
    let out = switchyard(&["test", "--format", "github"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let printed = String::from_utf8(out.stdout).unwrap();
    let case = "  - name: a paid checkout becomes payment_successful";
    let line = wrong.lines().position(|l| l.starts_with(case)).unwrap() + 1;
    let commands: Vec<&str> = printed.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(commands.len(), 1, "{printed}");
    let at =
        format!("::error file=routes.yaml,line={line},col=11::test case 'a paid checkout becomes payment_successful");
    assert!(commands[0].starts_with(&at), "{printed}");
    assert!(commands[0].contains("failed:%0Aevent 0: value differs%0A"), "{printed}");
    assert!(printed.contains("FAIL a paid checkout") && printed.ends_with(" passed, 1 failed\n"), "{printed}");
    // A config that does not compile: its errors, as commands too.
    let broken =
        shipped.replace("transaction_id: { path: $.transaction_id }", "transaction_id: { path: $.transaction_idd }");
    let out = switchyard(&["test", "--format", "github"], config(&broken).path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_says(&text(&out), &["::error file=routes.yaml,line=", "did you mean 'transaction_id'?"]);
}

#[test]
fn replies_answer_handshakes_in_check_and_test() {
    let dir = config(REPLYING);
    let out = switchyard(&["validate", "-c", "routes.yaml"], dir.path(), &[("S", "x")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::fs::write(dir.path().join("hello.json"), r#"{"type": "url_verification", "challenge": "3eZb"}"#).unwrap();
    let out = switchyard(&["check", "-c", "routes.yaml", "--source", "s", "--payload", "hello.json"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        shown,
        serde_json::json!({"status": "replied", "event_id": null, "reply": "hello", "http_status": 200,
                           "body": {"challenge": "3eZb"}})
    );
    let out = switchyard(&["test", "-c", "routes.yaml"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_says(
        &text(&out),
        &[
            "the reply differs\n       expected {\"challenge\":\"c-2\"}\n       got      {\"challenge\":\"c-1\"}",
            "expected status replied, got accepted",
            "1 passed, 2 failed",
        ],
    );
}

/// Slack's slash commands: a form whose fields are the payload, and a rule's own answer.
const COMMANDS: &str = "sources:
  - name: s
    path: /slack/commands
    verify: { kind: slack, secrets: [\"${S}\"] }
    form_fields: true
    schema: min.json
    event_type: $.command
    rules:
      - name: deploy
        when: { event_type: /deploy }
        emit:
          topic: t
          schema: min.json
          value:
            order_id: { path: $.text }
        answer:
          text: { template: \"Deploying {$.text}\" }
      - name: other
        when: { event_type: /other }
        emit:
          topic: t
          schema: min.json
          value:
            order_id: { path: $.text }
tests:
  - name: a deploy is answered with its text
    source: s
    headers: { Content-Type: application/x-www-form-urlencoded }
    body: { command: /deploy, text: api }
    expect:
      status: accepted
      reply: Deploying api
      events: [{ topic: t, value: { order_id: api } }]
  - name: another text
    source: s
    headers: { Content-Type: application/x-www-form-urlencoded }
    body: { command: /deploy, text: web }
    expect: { status: accepted, reply: Deploying api }
  - name: no answer
    source: s
    headers: { Content-Type: application/x-www-form-urlencoded }
    body: { command: /other, text: web }
    expect: { status: accepted, reply: Deploying web }
";

#[test]
fn form_fields_and_a_rules_answer_in_check_and_test() {
    let dir = config(COMMANDS);
    let out = switchyard(&["validate", "-c", "routes.yaml"], dir.path(), &[("S", "x")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::fs::write(dir.path().join("deploy.form"), "command=%2Fdeploy&text=api+v2&text=ignored%3F").unwrap();
    let args = ["check", "-c", "routes.yaml", "--source", "s", "--payload", "deploy.form"];
    let form = ["--header", "Content-Type: application/x-www-form-urlencoded"];
    // A repeated field is an array: the schema of `emit` refuses it, naming where.
    let out = switchyard(&[&args[..], &form[..]].concat(), dir.path(), &[]);
    assert_says(&text(&out), &["\"status\": \"rejected\"", "order_id"]);
    std::fs::write(dir.path().join("deploy.form"), "command=%2Fdeploy&text=api+v2").unwrap();
    let out = switchyard(&[&args[..], &form[..]].concat(), dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["status"], "accepted");
    assert_eq!(shown["events"][0]["value"], serde_json::json!({"order_id": "api v2"}));
    assert_eq!(shown["answer"], serde_json::json!({"http_status": 200, "body": "Deploying api v2"}));
    // Without the form's Content-Type, the body is read as JSON, as the server would.
    let out = switchyard(&args, dir.path(), &[]);
    assert_says(&text(&out), &["body is not valid JSON"]);

    let out = switchyard(&["test", "-c", "routes.yaml"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_says(
        &text(&out),
        &[
            "the reply differs\n       expected \"Deploying api\"\n       got      \"Deploying web\"",
            "expected a reply, but no matching rule has an `answer`",
            "1 passed, 2 failed",
        ],
    );
}

#[test]
fn a_rules_answer_is_a_success_and_a_form_is_read_one_way() {
    let answer = |lines: &str| {
        COMMANDS
            .split("tests:")
            .next()
            .unwrap()
            .replace("        answer:\n          text: { template: \"Deploying {$.text}\" }\n", lines)
    };
    let out = invalid(&answer("        answer: { status: 302, text: { const: moved } }\n"));
    assert_says(&out, &["routes.yaml:16:27: rule 'deploy', answer: status 302 is not a success"]);
    let out = invalid(&answer("        answer: { status: 204, text: { const: done } }\n"));
    assert_says(&out, &["routes.yaml:16:27: rule 'deploy', answer: status 204 is No Content: drop 'body' and 'text'"]);
    let out = invalid(&answer("        answer: { text: { const: a }, body: { b: { const: b } } }\n"));
    assert_says(&out, &["routes.yaml:9:15: rule 'deploy', answer takes one of 'body' (a JSON object) and 'text'"]);
    let out = invalid(&answer("        answer: { content_type: text/xml }\n"));
    assert_says(
        &out,
        &["routes.yaml:16:33: rule 'deploy', answer: content_type is the media type of 'text': give 'text' too"],
    );
    let out = invalid(&answer("        answer: { content_type: xml, text: { const: x } }\n"));
    assert_says(
        &out,
        &["routes.yaml:16:33: rule 'deploy', answer: content_type 'xml' is not a media type such as text/xml"],
    );
    let out = invalid(&answer("        answer: { body: { b: { path: \"$..[\" } } }\n"));
    assert_says(&out, &["routes.yaml:16:38: invalid JSONPath"]);
    let both = COMMANDS.replace("    form_fields: true\n", "    form_fields: true\n    form_field: payload\n");
    let out = invalid(both.split("tests:").next().unwrap());
    assert_says(
        &out,
        &[
            "routes.yaml:5:18: give form_field (the JSON is in one field) or form_fields (the fields are the payload), not both",
        ],
    );
}

/// A batch: each value of `$.items` becomes an event, read as `$`.
const BATCH: &str = "sources:
  - name: s
    path: /hooks/s
    verify: { kind: stripe, secrets: [\"${S}\"] }
    rules:
      - name: r
        for_each: $.items[*]
        when: { all: [{ path: $.paid, equals: true }] }
        emit:
          topic: t
          schema: min.json
          value:
            order_id: { path: $.id }
tests:
  - name: two of three paid
    source: s
    body: { items: [{ id: a, paid: true }, { id: b, paid: false }, { id: c, paid: true }] }
    expect:
      status: accepted
      events: [{ value: { order_id: a } }, { value: { order_id: c } }]
  - name: none paid
    source: s
    body: { items: [{ id: b, paid: false }] }
    expect: { status: ignored }
";

#[test]
fn for_each_maps_every_value_of_a_batch_in_check_and_test() {
    let dir = config(BATCH);
    let out = switchyard(&["test", "-c", "routes.yaml"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_says(&text(&out), &["2 passed, 0 failed"]);
    std::fs::write(dir.path().join("batch.json"), r#"{"items": [{"id": "x", "paid": true}, {"id": 7, "paid": true}]}"#)
        .unwrap();
    let out = switchyard(&["check", "-c", "routes.yaml", "--source", "s", "--payload", "batch.json"], dir.path(), &[]);
    assert_says(&text(&out), &["\"http_status\": 500", "(in value 1 of $.items[*])"]);
    let out = invalid(&BATCH.replace("for_each: $.items[*]", "for_each: \"$.items[\""));
    assert_says(&out, &["routes.yaml:7:19: invalid JSONPath \"$.items[\""]);
}

/// Where nothing would happen, `check` says why: each rule of a source that ignores a webhook,
/// and each rule of a dispatcher that takes none of an event, with the first part of its `when`
/// that fails and what the payload holds there. `test` lists the same under a failing case.
#[test]
fn check_and_test_say_why_no_rule_takes_a_webhook_or_an_event() {
    let sample = std::fs::read_to_string(repo().join("samples/stripe/checkout_session_completed.json")).unwrap();
    let unpaid = sample.replacen(r#""payment_status": "paid""#, r#""payment_status": "unpaid""#, 1);
    assert_ne!(sample, unpaid);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("unpaid.json"), &unpaid).unwrap();
    let payload = dir.path().join("unpaid.json");
    let out = switchyard(&["check", "--source", "stripe", "--payload", payload.to_str().unwrap()], &repo(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["status"], "ignored");
    assert_eq!(
        doc["passed_over"],
        serde_json::json!([
            {"rule": "checkout_paid",
             "why": "when: $.data.object.payment_status equals \"paid\" does not hold: it is \"unpaid\""},
            {"rule": "payment_intent_succeeded",
             "why": "when.event_type takes \"payment_intent.succeeded\", and the event type ($.type) is \"checkout.session.completed\""},
        ])
    );

    let failed = r#"{"event_type": "payment_failed", "order_id": "1"}"#;
    std::fs::write(dir.path().join("failed.json"), failed).unwrap();
    let event = dir.path().join("failed.json");
    let out = switchyard(&["check", "--topic", "payments", "--payload", event.to_str().unwrap()], &repo(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["calls"], serde_json::json!([]));
    let why = "when.event_type takes \"payment_successful\", and the event type ($.event_type) is \"payment_failed\"";
    assert_eq!(
        doc["passed_over"],
        serde_json::json!([{"dispatcher": "order_service", "rule": "mark_order_processing", "why": why}])
    );
    // A webhook whose events a dispatcher takes has no `passed_over`.
    let args = ["check", "--source", "stripe", "--payload", "samples/stripe/checkout_session_completed.json"];
    let doc: serde_json::Value = serde_json::from_slice(&switchyard(&args, &repo(), &[]).stdout).unwrap();
    assert_eq!(doc["calls"].as_array().map(Vec::len), Some(1));
    assert!(doc.get("passed_over").is_none(), "{doc}");

    // The same in a failing case of `switchyard test`.
    let shipped = std::fs::read_to_string(repo().join("routes.yaml")).unwrap();
    let (routes, _) = shipped.split_once("\ntests:\n").unwrap();
    let cases = r#"
tests:
  - name: an unpaid checkout
    source: stripe
    payload: samples/stripe/checkout_session_completed.json
    set: { /data/object/payment_status: unpaid }
    expect: { status: accepted }
  - name: a failed payment
    topic: payments
    body: { event_type: payment_failed, order_id: "1" }
    expect: { calls: [{ method: PATCH }] }
"#;
    let dir = config(&format!("{routes}{cases}"));
    std::fs::create_dir_all(dir.path().join("samples")).unwrap();
    std::os::unix::fs::symlink(repo().join("samples/stripe"), dir.path().join("samples/stripe")).unwrap();
    let out = switchyard(&["test"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_says(
        &text(&out),
        &[
            "FAIL an unpaid checkout",
            "expected status accepted, got ignored (no rule of source 'stripe' matches this 'checkout.session.completed' event)\n       \
             rule 'checkout_paid' takes nothing: when: $.data.object.payment_status equals \"paid\" does not hold: it is \"unpaid\"\n       \
             rule 'payment_intent_succeeded' takes nothing: when.event_type takes \"payment_intent.succeeded\"",
            "FAIL a failed payment",
            &format!(
                "expected 1 calls, got 0\n       dispatch rule 'mark_order_processing' (dispatcher 'order_service') takes nothing: {why}"
            ),
        ],
    );
}
