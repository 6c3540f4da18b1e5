//! `validate` on sources: verification schemes and their secrets, address lists, challenges,
//! replies, dead-letter topics, and the warnings about unsigned or schemaless sources.

use super::*;

#[test]
fn unknown_verifier_kinds_list_the_known_ones() {
    let out = invalid(&SOURCE.replace("kind: stripe", "kind: strype"));
    assert!(
        out.contains("routes.yaml:4:21: unknown verifier kind 'strype', expected one of stripe, hmac-sha256, standard-webhooks, slack, zoom, twitch, twilio, sendgrid, square, adyen, token, basic, none"),
        "{out}"
    );
}

/// Adyen's Banking and Management webhooks sign the whole body in `HmacSignature` with the hex
/// HMAC key: `hmac-sha256` with `secret_encoding: hex` checks the body and signature Adyen's
/// own library made (`tests/fixtures/adyen/generate.py`).
#[test]
fn a_hex_secret_checks_adyens_banking_webhooks() {
    let routes = r#"sources:
  - name: banking
    path: /hooks/adyen-banking
    verify: { kind: hmac-sha256, header: HmacSignature, encoding: base64, secret_encoding: hex, secrets: ["${ADYEN_BANKING_HMAC_KEY}"] }
    event_type: $.type
    rules:
      - name: transfer
        when: { event_type: balancePlatform.transfer.updated }
        emit: { topic: t, schema: min.json, value: { order_id: { path: $.data.reference } } }
"#;
    let dir = config(routes);
    let fixtures = repo().join("tests/fixtures/adyen");
    let signature = std::fs::read_to_string(fixtures.join("banking.signature")).unwrap();
    let header = format!("HmacSignature: {}", signature.trim());
    let key = [("ADYEN_BANKING_HMAC_KEY", "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056")];
    let check = |payload: &Path| {
        let args =
            ["check", "--source", "banking", "--verify", "--header", &header, "--payload", payload.to_str().unwrap()];
        switchyard(&args, dir.path(), &key)
    };
    let out = check(&fixtures.join("banking.json"));
    assert!(out.status.success(), "{}", text(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["events"][0]["value"], serde_json::json!({"order_id": "order-12345"}));
    // One digit of the amount changed: refused.
    let tampered = dir.path().join("tampered.json");
    let body = std::fs::read_to_string(fixtures.join("banking.json")).unwrap();
    std::fs::write(&tampered, body.replace("\"value\":2000", "\"value\":2001")).unwrap();
    let out = check(&tampered);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["reason"], "signature", "{answer}");

    let out = switchyard(&["validate"], dir.path(), &[("ADYEN_BANKING_HMAC_KEY", "not hex")]);
    assert_says(&text(&out), &["routes.yaml:4:107: secret_encoding is 'hex', but this secret is not hex digits"]);
    let other = routes.replace("secret_encoding: hex", "secret_encoding: utf8");
    assert_says(&invalid(&other), &["unknown secret_encoding 'utf8', expected 'text', 'hex' or 'base64'"]);
    let stripe = routes.replace("kind: hmac-sha256, header: HmacSignature, encoding: base64, ", "kind: stripe, ");
    assert_says(&invalid(&stripe), &["'secret_encoding' does not apply to verifier kind 'stripe'"]);
}

/// A source's `event_type` that does not compile is one error, not one more for every rule
/// that filters on it ("the source does not say where the type is" would be wrong).
#[test]
fn a_broken_event_type_is_reported_once() {
    let typed = SOURCE.replace("      - name: r\n", "      - name: r\n        when: { event_type: a }\n");
    for (broken, says) in [
        ("event_type: { header: \"X Type\" }", "routes.yaml:5:17: 'X Type' is not a valid header name"),
        ("event_type: $..[", "routes.yaml:5:17: "),
    ] {
        let out = invalid(&typed.replace("event_type: $.type", broken));
        assert_says(&out, &[says, "1 error"]);
    }
    let out = invalid(&typed.replace("    event_type: $.type\n", ""));
    assert_says(&out, &["routes.yaml:7:29: 'when.event_type' needs the source to say where the type is"]);
}

/// Twilio signs the URL it posts to: `kind: twilio` needs it, absolute and without a query.
#[test]
fn a_twilio_source_names_its_public_url() {
    let with = |verify: &str| SOURCE.replace("{ kind: stripe, secrets: [\"${S}\"] }", verify);
    let out = invalid(&with("{ kind: twilio, secrets: [\"${S}\"] }"));
    assert_says(&out, &["routes.yaml:4:21: source 's': kind 'twilio' needs 'url', the URL Twilio posts to"]);
    let out = invalid(&with("{ kind: twilio, secrets: [\"${S}\"], url: /hooks/s }"));
    assert_says(&out, &["routes.yaml:4:53: url '/hooks/s' is not absolute"]);
    let out = invalid(&with("{ kind: twilio, secrets: [\"${S}\"], url: \"https://h.example/s?a=1\" }"));
    assert_says(&out, &["url 'https://h.example/s?a=1' has a query or user info"]);
    let out = invalid(&with("{ kind: slack, secrets: [\"${S}\"], url: \"https://h.example/s\" }"));
    assert_says(&out, &["'url' does not apply to verifier kind 'slack'"]);
    let dir = config(&with("{ kind: twilio, secrets: [\"${S}\"], url: \"${PUBLIC_URL}/hooks/s\" }"));
    let env = [("S", "0123456789abcdef0123456789abcdef"), ("PUBLIC_URL", "https://hooks.example.com")];
    let out = switchyard(&["validate", "-c", "routes.yaml"], dir.path(), &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// SendGrid signs with a private key: `kind: sendgrid` checks with its public key.
#[test]
fn a_sendgrid_source_names_its_public_key() {
    let with = |verify: &str| SOURCE.replace("{ kind: stripe, secrets: [\"${S}\"] }", verify);
    let out = invalid(&with("{ kind: sendgrid }"));
    assert_says(
        &out,
        &["routes.yaml:4:21: source 's': kind 'sendgrid' needs 'public_keys', SendGrid's verification key"],
    );
    let out = invalid(&with("{ kind: sendgrid, public_keys: [notakey] }"));
    assert_says(&out, &["routes.yaml:4:45: public key is not base64"]);
    let out = invalid(&with("{ kind: sendgrid, secrets: [\"${S}\"], public_keys: [aGVsbG8=] }"));
    assert_says(&out, &["'secrets' does not apply to verifier kind 'sendgrid'"]);
    let key = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEQh0lLl1szzL79NkAMgFXhvXZ9zukxSI+7TaE0B0qof9DbaH9jGIFMaJA46+eswNENvyJrO8hND2D8BZ+AbtKqQ==";
    let dir = config(&with("{ kind: sendgrid, public_keys: [\"${K}\", \"${OLD_K:-}\"] }"));
    let out = switchyard(&["validate", "-c", "routes.yaml"], dir.path(), &[("K", key)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// Square signs its notification URL; a token and Basic credentials are secrets sent as they
/// are. What each kind needs, and refuses, with the line.
#[test]
fn square_adyen_token_and_basic_sources_are_checked_with_their_lines() {
    let with = |verify: &str| SOURCE.replace("{ kind: stripe, secrets: [\"${S}\"] }", verify);
    let refused = [
        (
            "{ kind: square, secrets: [\"${S}\"] }",
            "routes.yaml:4:21: source 's': kind 'square' needs 'url', the notification URL",
        ),
        ("{ kind: square, secrets: [\"${S}\"], url: /hooks/s }", "routes.yaml:4:53: url '/hooks/s' is not absolute"),
        (
            "{ kind: square, secrets: [\"${S}\"], url: \"ftp://h/s\" }",
            "routes.yaml:4:53: url 'ftp://h/s' is not http or https",
        ),
        ("{ kind: square, url: \"https://h/s\" }", "routes.yaml:4:21: source 's' has no usable secret in 'secrets'"),
        (
            "{ kind: token, secrets: [\"${S}\"], tolerance_secs: 60 }",
            "'tolerance_secs' does not apply to verifier kind 'token'",
        ),
        (
            "{ kind: token, secrets: [\"${S}\"], header: \"bad name\" }",
            "routes.yaml:4:55: 'bad name' is not a valid header name",
        ),
        (
            "{ kind: token, secrets: [\" ${S}\"] }",
            "routes.yaml:4:38: a token is sent as it is in a header: it must be visible ASCII",
        ),
        ("{ kind: basic, secrets: [\"${S}\"] }", "routes.yaml:4:38: a secret of kind 'basic' is user:password"),
        ("{ kind: basic, secrets: [\":${S}\"] }", "routes.yaml:4:38: a secret of kind 'basic' is user:password"),
        ("{ kind: basic, secrets: [\"u:${S}\"], header: X-Auth }", "'header' does not apply to verifier kind 'basic'"),
        (
            "{ kind: adyen, secrets: [\"${S}\"] }",
            "routes.yaml:4:38: an Adyen HMAC key is hex, as the Customer Area shows it",
        ),
        ("{ kind: adyen, secrets: [\"${S}\"], url: \"https://h/s\" }", "'url' does not apply to verifier kind 'adyen'"),
        // A list: every scheme must pass, so each is checked, and none of them may be `none`.
        ("[]", "routes.yaml:2:11: source 's': 'verify: []' checks nothing"),
        (
            "[{ kind: none }, { kind: basic, secrets: [\"u:${S}\"] }]",
            "routes.yaml:4:22: source 's': 'none' cannot be listed with other schemes",
        ),
        ("[{ kind: basic, secrets: [\"u:${S}\"] }, { kind: nope }]", "routes.yaml:4:60: unknown verifier kind 'nope'"),
        ("stripe", "routes.yaml:4:5: invalid type: string \"stripe\", expected a verifier such as"),
    ];
    for (verify, says) in refused {
        assert_says(&invalid(&with(verify)), &[says]);
    }
    let accepted = [
        "{ kind: square, secrets: [\"${S}\"], url: \"${PUBLIC_URL}/hooks/s\" }",
        "{ kind: token, secrets: [\"${S}\"] }",
        "{ kind: token, secrets: [\"${S}\"], header: X-Gitlab-Token }",
        "{ kind: basic, secrets: [\"adyen:${S}\", \"${OLD:-}\"] }",
        "{ kind: adyen, secrets: [\"${S}\"] }",
        "[{ kind: basic, secrets: [\"adyen:${S}\"] }, { kind: adyen, secrets: [\"${S}\"] }]",
        "[{ kind: adyen, secrets: [\"${S}\"] }]",
    ];
    let env = [("S", "0123456789abcdef0123456789abcdef"), ("PUBLIC_URL", "https://hooks.example.com")];
    for verify in accepted {
        valid(&with(verify), &env);
    }
}

/// `allowed_ips` and `trusted_proxies` take addresses and CIDR ranges, several to an entry
/// (a variable holding a list); anything else is refused with its line, and so is an
/// allowlist that would refuse everyone.
#[test]
fn address_lists_are_addresses_or_ranges() {
    let with = |allowed: &str, proxies: &str| {
        SOURCE
            .replace("    path: /hooks/s\n", &format!("    path: /hooks/s\n    allowed_ips: {allowed}\n"))
            .replace("sources:", &format!("ingress: {{ trusted_proxies: {proxies} }}\nsources:"))
    };
    let out = invalid(&with("[\"3.18.12.63, stripe.com\"]", "[]"));
    assert_says(
        &out,
        &[
            "routes.yaml:5:19: source 's', allowed_ips: 'stripe.com' is not an IP address or a CIDR range such as 192.0.2.0/24",
        ],
    );
    let out = invalid(&with("[3.18.12.63]", "[10.0.0.0/33]"));
    assert_says(&out, &["routes.yaml:1:30: trusted_proxies: '10.0.0.0/33' is not an IP address or a CIDR range"]);
    let out = invalid(&with("[\"${NONE:-}\"]", "[]"));
    assert_says(
        &out,
        &["routes.yaml:5:19: source 's', allowed_ips: no address is allowed, so every webhook would be refused"],
    );
    let env = [("S", "0123456789abcdef0123456789abcdef"), ("STRIPE_IPS", "3.18.12.63,3.130.192.231")];
    valid(&with("[\"${STRIPE_IPS}\", \"2001:db8::/32\"]", "[\"10.0.0.0/8 172.16.0.0/12\"]"), &env);
}

/// A `challenge:` names the parameter it echoes, and a required value must be something.
#[test]
fn a_get_challenge_requires_values_that_are_something() {
    let with = |challenge: &str| {
        SOURCE.replace("    event_type: $.type\n", &format!("    event_type: $.type\n    challenge: {challenge}\n"))
    };
    let out = invalid(&with("{ echo: hub.challenge, require: { hub.verify_token: \"${TOKEN:-}\" } }"));
    assert_says(
        &out,
        &[
            "routes.yaml:6:68: source 's', challenge: 'hub.verify_token' must be something (an empty value would let anyone verify the endpoint)",
        ],
    );
    let out = invalid(&with("{ echo: \"\" }"));
    assert_says(&out, &["routes.yaml:6:24: source 's', challenge: 'echo' names no query parameter"]);
    let out = invalid(&with("{ echo: x, answer: y }"));
    assert_says(&out, &["unknown field 'answer'"]);
    let challenge =
        "{ echo: hub.challenge, require: { hub.mode: subscribe, hub.verify_token: \"${TOKEN}\" }, json: true }";
    valid(&with(challenge), &[("S", "0123456789abcdef0123456789abcdef"), ("TOKEN", "t0k3n")]);
}

#[test]
fn unsigned_sources_are_warned_about() {
    let dir = config(&SOURCE.replace("{ kind: stripe, secrets: [\"${S}\"] }", "{ kind: none }"));
    let out = switchyard(&["validate"], dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("routes.yaml:4:21: warning: source 's' accepts unsigned webhooks"), "{}", text(&out));
}

#[test]
fn sources_without_a_schema_are_warned_about() {
    let dir = config(SOURCE);
    let out = switchyard(&["validate"], dir.path(), &[("S", "x")]);
    assert!(out.status.success(), "{}", text(&out));
    let warning = "routes.yaml:2:11: warning: source 's' has no 'schema': payloads are not validated";
    assert!(text(&out).contains(warning), "{}", text(&out));
    let with_schema = SOURCE.replace("    event_type: $.type\n", "    schema: min.json\n    event_type: $.type\n");
    let out = switchyard(&["validate"], config(&with_schema).path(), &[("S", "whsec_0123456789abcdefghijkl")]);
    assert!(out.status.success() && !text(&out).contains("warning"), "{}", text(&out));
}

#[test]
fn a_secret_that_is_only_its_prefix_is_refused_and_a_short_one_warned_about() {
    let dir = config(SOURCE);
    let out = switchyard(&["validate"], dir.path(), &[("S", "whsec_")]);
    assert_eq!(out.status.code(), Some(1));
    let refused =
        "routes.yaml:4:39: this secret is empty once its 'whsec_' prefix is taken off: anyone could sign with it";
    assert!(text(&out).contains(refused), "{}", text(&out));
    let out = switchyard(&["validate"], dir.path(), &[("S", "whsec_short")]);
    assert!(out.status.success(), "{}", text(&out));
    let warned = "routes.yaml:4:39: warning: this secret has only 5 bytes besides any 'whsec_' prefix";
    assert!(text(&out).contains(warned), "{}", text(&out));
    assert!(!text(&out).contains("whsec_short"), "the secret is never quoted: {}", text(&out));
    // A token or password is not a signing key: nothing signed gives it away, trying does.
    let token = config(&SOURCE.replace("kind: stripe,", "kind: token,"));
    let out = switchyard(&["validate"], token.path(), &[("S", "short")]);
    assert!(out.status.success(), "{}", text(&out));
    let warned = "routes.yaml:4:38: warning: this secret has only 5 bytes: a short token or password can be guessed by trying it; use at least 16 random bytes";
    assert!(text(&out).contains(warned), "{}", text(&out));
}

#[test]
fn a_reply_must_say_when_and_what_it_answers() {
    let reply = |lines: &str| {
        REPLYING.split("tests:").next().unwrap().replace(
        "      - name: hello\n        when: { event_type: url_verification }\n        body: { challenge: { path: $.challenge } }\n",
        lines,
    )
    };
    let out = invalid(&reply("      - name: hello\n        body: { challenge: { path: $.challenge } }\n"));
    assert_says(&out, &["routes.yaml:8:15: reply 'hello' has no 'when': it would answer every webhook"]);
    let out = invalid(&reply("      - name: hello\n        when: { event_type: url_verification }\n"));
    assert_says(&out, &["routes.yaml:8:15: reply 'hello' needs exactly one of 'body' (a JSON object) and 'text'"]);
    let out = invalid(&reply(
        "      - name: hello\n        when: { event_type: url_verification }\n        status: 401\n        text: { const: no }\n",
    ));
    assert_says(&out, &["routes.yaml:10:17: reply 'hello': status 401 is not a success"]);
    let out = invalid(&reply(
        "      - name: hello\n        when: { event_type: url_verification }\n        status: 204\n        text: { const: no }\n",
    ));
    assert_says(&out, &["routes.yaml:10:17: reply 'hello': status 204 is No Content: a reply has a body: use 200"]);
    let out = invalid(&reply(
        "      - name: r\n        when: { event_type: url_verification }\n        text: { path: \"$..[\" }\n",
    ));
    assert_says(&out, &["routes.yaml:12:15: duplicate rule name 'r' in source 's'", "routes.yaml:10:23: "]);
    // A case that expects a reply of an ignored webhook would not check it: `validate` warns.
    let dir = config(&REPLYING.replace("expect: { status: replied }", "expect: { status: ignored, reply: {} }"));
    let out = switchyard(&["validate", "-c", "routes.yaml"], dir.path(), &[("S", "x")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let says = "routes.yaml:28:11: warning: test case 'an order is no handshake': expect.reply is the answer of a reply or of a rule's `answer`: with status ignored it would not be checked";
    assert_says(&text(&out), &[says]);
    // What a reply reads is held to the source's schema, as a rule's values are.
    let misspelt = reply(
        "      - name: hello\n        when: { event_type: url_verification }\n        body: { challenge: { path: $.order_ids } }\n",
    );
    let out = valid(&misspelt, &[("S", "x")]);
    let says = "routes.yaml:10:36: warning: reply 'hello', body.challenge: $.order_ids: 'order_ids' is not declared in payloads valid for 'min.json'; did you mean 'order_id'?";
    assert_says(&out, &[says]);
}

#[test]
fn a_dead_letter_topic_of_refused_webhooks_is_a_topic_of_its_own() {
    let kept = |topic: &str| {
        SOURCE.replace(
            "    event_type: $.type\n",
            &format!("    event_type: $.type\n    dead_letter_topic: \"{topic}\"\n"),
        )
    };
    let out = invalid(&kept("t"));
    assert_says(
        &out,
        &[
            "routes.yaml:6:24: dead_letter_topic 't' of source 's' holds refused webhooks, but rules publish events to it: give it a topic of its own",
        ],
    );
    let consumed = format!(
        "{}dispatch:\n  - name: d\n    topic: refused\n    group: g\n    rules:\n      - name: call\n        request: {{ method: POST, url: \"http://orders.internal/x\" }}\n",
        kept("refused")
    );
    let out = invalid(&consumed);
    assert_says(
        &out,
        &["dead_letter_topic 'refused' of source 's' holds refused webhooks, but a dispatcher consumes it"],
    );
    let out = invalid(&kept(""));
    assert_says(&out, &["routes.yaml:6:24: dead_letter_topic is empty"]);
}

/// `query:` reads a parameter of the webhook's URL, in values and conditions (a Twilio status
/// callback's `?order=…`, set when the message was sent); a missing one is the sender's 422,
/// and so is one the canonical schema refuses. A dispatcher has no URL query to read.
#[test]
fn values_and_conditions_read_the_urls_query() {
    let source = r#"sources:
  - name: status
    path: /hooks/status
    verify: { kind: twilio, url: "https://hooks.example.com/hooks/status", secrets: ["${T}"] }
    form_fields: true
    event_type: $.MessageStatus
    rules:
      - name: delivered
        when: { event_type: delivered, all: [{ query: shop, equals: acme }] }
        emit:
          topic: sms
          schema: delivered.json
          value:
            order_id: { query: order }
            sid: { path: $.MessageSid }
"#;
    let cases = r#"tests:
  - name: the order comes from the URL
    source: status
    query: order=12345&shop=acme
    headers: { Content-Type: application/x-www-form-urlencoded }
    body: { MessageSid: SM1, MessageStatus: delivered }
    expect: { status: accepted, events: [{ topic: sms, value: { order_id: "12345", sid: SM1 } }] }
  - name: without it, the sender is told
    source: status
    query: shop=acme
    headers: { Content-Type: application/x-www-form-urlencoded }
    body: { MessageSid: SM2, MessageStatus: delivered }
    expect: { status: rejected, http_status: 422, message_contains: "value.order_id: required data is missing: no query parameter 'order'" }
  - name: a value the schema refuses is the sender's too
    source: status
    query: order=abc&shop=acme
    headers: { Content-Type: application/x-www-form-urlencoded }
    body: { MessageSid: SM3, MessageStatus: delivered }
    expect: { status: rejected, http_status: 422, message_contains: "the query parameter 'order' holds a value the canonical schema" }
  - name: another shop's is passed over
    source: status
    query: order=1&shop=other
    headers: { Content-Type: application/x-www-form-urlencoded }
    body: { MessageSid: SM4, MessageStatus: delivered }
    expect: { status: ignored }
"#;
    let dir = config(&format!("{source}{cases}"));
    let canonical = r#"{"type": "object", "properties": {"order_id": {"type": "string", "pattern": "^[0-9]+$"}}}"#;
    std::fs::write(dir.path().join("delivered.json"), canonical).unwrap();
    let out = switchyard(&["test"], dir.path(), &[]);
    assert!(text(&out).ends_with("4 passed, 0 failed\n"), "{}", text(&out));
    std::fs::write(dir.path().join("status.json"), r#"{"MessageSid": "SM9", "MessageStatus": "delivered"}"#).unwrap();
    let out = switchyard(
        &["check", "--source", "status", "--payload", "status.json", "--query", "order=9&shop=other"],
        dir.path(),
        &[],
    );
    assert_says(
        &text(&out),
        &[r#""why": "when: query parameter shop equals \"acme\" does not hold: it is \"other\"""#],
    );
    let dispatch = r#"dispatch:
  - name: d
    topic: sms
    group: g
    rules:
      - name: r
        when: { all: [{ query: shop, exists: true }] }
        request: { method: POST, url: "http://o/x", body: { o: { query: order } } }
"#;
    let out = invalid(&format!("{source}{dispatch}"));
    let says =
        "'query' reads a webhook's URL query, and an event consumed from Kafka has none (its Kafka headers: 'header')";
    assert_says(&out, &[&format!("a condition: {says}"), &format!("dispatch rule 'r', body.o: {says}")]);
}
