//! Issue 4 through the binary: `validate` diagnostics (one minimal broken config per class,
//! with its line:column), `check` and `test`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn switchyard(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.args(args).current_dir(dir).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("switchyard runs")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `switchyard validate` of a config in `dir` of one unsigned source `s`, its payloads described
/// by `in.json` and their event types at `$.type`, with `rules` (list items, indented 6).
fn validate_source(dir: &Path, rules: &str) -> String {
    let yaml = format!(
        "sources:\n  - name: s\n    path: /hooks/s\n    verify: {{ kind: none }}\n    schema: in.json\n    event_type: $.type\n    rules:\n{rules}"
    );
    std::fs::write(dir.join("routes.yaml"), yaml).unwrap();
    text(&switchyard(&["validate"], dir, &[]))
}

/// A directory with `routes.yaml` = `yaml` and the repo's schemas.
fn config(yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo().join("schemas"), dir.path().join("schemas")).unwrap();
    std::fs::write(dir.path().join("routes.yaml"), yaml).unwrap();
    std::fs::write(
        dir.path().join("min.json"),
        r#"{"type": "object", "properties": {"order_id": {"type": "string"}}}"#,
    )
    .unwrap();
    dir
}

/// Validates `yaml`, expects failure, and returns the output.
fn invalid(yaml: &str) -> String {
    let dir = config(yaml);
    let out = switchyard(&["validate", "-c", "routes.yaml"], dir.path(), &[("S", "x")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    text(&out)
}

/// Validates `yaml` with `env`, which must pass; the output (warnings included).
fn valid(yaml: &str, env: &[(&str, &str)]) -> String {
    let dir = config(yaml);
    let out = switchyard(&["validate", "-c", "routes.yaml"], dir.path(), env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    text(&out)
}

const SOURCE: &str = "sources:
  - name: s
    path: /hooks/s
    verify: { kind: stripe, secrets: [\"${S}\"] }
    event_type: $.type
    rules:
      - name: r
        emit:
          topic: t
          schema: min.json
          value:
            order_id: { path: $.id }
";

#[test]
fn the_shipped_config_is_valid() {
    let out = switchyard(&["validate", "-c", "routes.yaml"], &repo(), &[("STRIPE_WEBHOOK_SECRET", "whsec_x")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("routes.yaml: valid"));
}

#[test]
fn a_broker_list_librdkafka_would_only_log_about_is_refused() {
    for (brokers, says) in [
        (
            "kafka-1:9092,kafka-2:notaport",
            "kafka.brokers: 'kafka-2:notaport': the port is not a number from 1 to 65535",
        ),
        ("  ", "kafka.brokers is empty"),
    ] {
        let env = [("STRIPE_WEBHOOK_SECRET", "whsec_x"), ("KAFKA_BROKERS", brokers)];
        let out = switchyard(&["validate", "-c", "routes.yaml"], &repo(), &env);
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out).contains(&format!("routes.yaml:7:12: {says}")), "{}", text(&out));
    }
}

#[test]
fn unknown_keys_name_the_key_the_place_and_the_right_keys() {
    let out = invalid(&SOURCE.replace("          topic: t", "          topc: t"));
    assert!(out.contains("routes.yaml:9:11: unknown field 'topc', expected one of"), "{out}");
    assert!(out.contains("topic"), "{out}");
}

#[test]
fn a_misspelt_expected_status_is_refused_with_the_words_it_can_be() {
    let out = invalid(&format!(
        "{SOURCE}tests:\n  - name: c\n    source: s\n    body: {{}}\n    expect: {{ status: acepted }}\n"
    ));
    assert!(
        out.contains("routes.yaml:17:23: unknown variant 'acepted', expected one of accepted, ignored, rejected"),
        "{out}"
    );
}

#[test]
fn wrong_types_point_at_the_value() {
    let out = invalid("kafka:\n  publish_timeout_ms: ten\n");
    assert!(out.contains("routes.yaml:2:23: "), "{out}");
}

/// `SOURCE` under a `kafka.properties` block of `lines` (each `name: value`).
fn with_kafka_properties(lines: &[&str]) -> String {
    let properties: String = lines.iter().map(|l| format!("    {l}\n")).collect();
    format!("kafka:\n  properties:\n{properties}{SOURCE}")
}

/// Asserts that `out` holds every line of `wants`.
fn assert_says(out: &str, wants: &[&str]) {
    for want in wants {
        assert!(out.contains(want), "{want}\n{out}");
    }
}

#[test]
fn kafka_properties_librdkafka_would_refuse_are_refused_with_their_line() {
    let out = invalid(&with_kafka_properties(&["security.protocl: SSL", "batch.size: lots"]));
    assert_says(
        &out,
        &[
            "routes.yaml:3:23: kafka property 'security.protocl': No such configuration property",
            "routes.yaml:4:17: kafka property 'batch.size': Invalid value",
        ],
    );
    // Each fine, but not together (idempotence, which Switchyard turns on, needs acks=all);
    // and Kerberos, which needs libsasl2, which this build leaves out.
    // An integer librdkafka would read into a C int, wrapped (this one as 1000 ms).
    let out = invalid(&with_kafka_properties(&["message.timeout.ms: 4294968296"]));
    assert_says(
        &out,
        &[
            "routes.yaml:3:25: kafka property 'message.timeout.ms': 4294968296 is beyond what librdkafka holds for it (at most 2147483647; it would read 1000)",
        ],
    );
    let out = invalid(&with_kafka_properties(&["acks: 1"]));
    assert_says(
        &out,
        &[
            "routes.yaml:3:11: warning: kafka property 'acks: 1': a webhook is then acknowledged",
            "routes.yaml:3:11: kafka.properties: `acks` must be set to `all`",
        ],
    );
    let out = invalid(&with_kafka_properties(&["security.protocol: SASL_PLAINTEXT", "sasl.mechanisms: GSSAPI"]));
    assert_says(&out, &["routes.yaml:3:24: kafka.properties: ", "GSSAPI"]);
    // TLS and SASL over it (PLAIN, SCRAM) are built in: managed Kafka needs them.
    // A CA file is looked for where the config runs, not where it is validated.
    let tls = with_kafka_properties(&[
        "security.protocol: SASL_SSL",
        "sasl.mechanisms: SCRAM-SHA-512",
        "sasl.username: u",
        "sasl.password: ${S}",
        "ssl.ca.location: /run/secrets/kafka-ca.pem",
    ]);
    let dir = config(&tls);
    let out = switchyard(&["validate", "-c", "routes.yaml"], dir.path(), &[("S", "x")]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn zero_limits_timeouts_and_delays_are_refused() {
    let limits =
        "kafka: { publish_timeout_ms: 0 }\ningress: { max_body_bytes: 0, read_timeout_ms: 0, max_in_flight: 0 }\n";
    let source = SOURCE.replace("secrets: [\"${S}\"] }", "secrets: [\"${S}\"], tolerance_secs: 0 }");
    let dispatch = "dispatch:
  - name: d
    topic: t
    group: g
    max_in_flight: 0
    rules:
      - name: call
        request: { method: POST, url: \"http://orders.internal/x\", timeout_ms: 0 }
        retry: { initial_delay_ms: 0, max_delay_ms: 100, max_elapsed_secs: 0 }
      - name: backwards
        request: { method: POST, url: \"http://orders.internal/y\" }
        retry: { initial_delay_ms: 5000, max_delay_ms: 1000 }
    max_calls_per_second: 0
";
    let out = invalid(&format!("{limits}{source}{dispatch}"));
    let wants = [
        "routes.yaml:1:30: 'publish_timeout_ms' must be at least 1, not 0",
        "routes.yaml:2:28: 'max_body_bytes' must be at least 1",
        "routes.yaml:2:48: 'read_timeout_ms' must be at least 1",
        "routes.yaml:2:66: 'max_in_flight' must be at least 1",
        "routes.yaml:6:64: 'tolerance_secs' must be at least 1",
        "routes.yaml:19:20: 'max_in_flight' must be at least 1",
        "routes.yaml:22:79: 'timeout_ms' must be at least 1",
        "routes.yaml:23:36: 'initial_delay_ms' must be at least 1",
        "routes.yaml:26:56: 'max_delay_ms' must be at least 5000, not 1000",
        "routes.yaml:27:27: 'max_calls_per_second' must be at least 1, not 0",
    ];
    assert_says(&out, &wants);
    // No retries at all is a choice: max_elapsed_secs may be 0.
    assert!(!out.contains("max_elapsed_secs"), "{out}");
    // The publish timeout is librdkafka's message.timeout.ms too: a C int.
    // And a count beyond any machine's (tokio's semaphores panicked at more than 2^61).
    let huge = "kafka: { publish_timeout_ms: 4294968296 }
ingress: { max_body_bytes: 2000000000, max_in_flight: 18446744073709551615, max_connections: 2000000 }
";
    let many = dispatch.replace("max_in_flight: 0", "max_in_flight: 18446744073709551615");
    let out = invalid(&format!("{huge}{source}{many}"));
    assert_says(
        &out,
        &[
            "routes.yaml:1:30: 'publish_timeout_ms' must be at most 2147483647 (librdkafka's message.timeout.ms), not 4294968296",
            "routes.yaml:2:28: 'max_body_bytes' must be at most 1000000000 (librdkafka's largest message.max.bytes)",
            "routes.yaml:2:55: 'max_in_flight' must be at most 1000000 (beyond that it limits nothing)",
            "routes.yaml:2:94: 'max_connections' must be at most 1000000",
            "routes.yaml:19:20: 'max_in_flight' must be at most 1000000",
        ],
    );
}

#[test]
fn malformed_jsonpath_points_at_its_string() {
    let out = invalid(&SOURCE.replace("path: $.id }", "path: \"$.id[\" }"));
    assert!(out.contains("routes.yaml:12:31: invalid JSONPath \"$.id[\""), "{out}");
}

#[test]
fn unknown_verifier_kinds_list_the_known_ones() {
    let out = invalid(&SOURCE.replace("kind: stripe", "kind: strype"));
    assert!(
        out.contains("routes.yaml:4:21: unknown verifier kind 'strype', expected one of stripe, hmac-sha256, standard-webhooks, slack, zoom, twitch, twilio, sendgrid, square, adyen, token, basic, none"),
        "{out}"
    );
}

#[test]
fn missing_and_broken_schema_files_are_named() {
    let out = invalid(&SOURCE.replace("min.json", "schemas/nope.json"));
    assert!(out.contains("routes.yaml:10:19: cannot read schema"), "{out}");
    assert!(out.contains("nope.json"), "{out}");

    let dir = config(&SOURCE.replace("min.json", "local/broken.json"));
    std::fs::create_dir(dir.path().join("local")).unwrap();
    std::fs::write(dir.path().join("local/broken.json"), r#"{"$ref": "missing.json"}"#).unwrap();
    let out = switchyard(&["validate"], dir.path(), &[("S", "x")]);
    let out = text(&out);
    assert!(
        out.contains("routes.yaml:10:19: schema") && out.contains("broken.json") && out.contains("missing.json"),
        "{out}"
    );
}

#[test]
fn duplicate_route_paths_are_refused() {
    let second = SOURCE.replace("sources:\n", "").replace("name: s\n", "name: s2\n");
    let out = invalid(&format!("{SOURCE}{second}"));
    assert!(out.contains("routes.yaml:14:11: duplicate route path '/hooks/s': source 's' already serves it"), "{out}");
}

#[test]
fn template_variables_must_be_properties_of_the_canonical_event() {
    let yaml = format!(
        "{SOURCE}dispatch:
  - name: d
    topic: t
    group: g
    schema: schemas/payment_successful.schema.json
    rules:
      - name: call
        request:
          method: PATCH
          url: http://orders/orders/{{order_idd}}
"
    );
    let out = invalid(&yaml);
    assert!(
        out.contains("routes.yaml:22:16: template variable '{order_idd}' is not a property of the canonical event"),
        "{out}"
    );
}

/// [`SOURCE`] and a dispatcher of one rule, `call` (line 18), whose other lines are `rule`.
fn dispatching(rule: &str) -> String {
    format!(
        "{SOURCE}dispatch:
  - name: d
    topic: t
    group: g
    rules:
      - name: call
{rule}"
    )
}

/// [`SOURCE`] and a dispatcher of one rule, `call`, that POSTs to `url` (its line is 19, the
/// URL at column 39), then `more` lines of the rule.
fn calling(url: &str, more: &str) -> String {
    dispatching(&format!("        request: {{ method: POST, url: \"{url}\" }}\n{more}"))
}

/// `not_in` is the negation of `in` (a missing value is in no list), for source and dispatch
/// rules alike; a condition with two tests is refused.
#[test]
fn a_not_in_condition_passes_values_outside_its_list_and_missing_ones() {
    let when = "        when: { all: [{ path: $.status, not_in: [failed, canceled] }] }
tests:
  - { name: listed, topic: t, body: { status: failed }, expect: { calls: [] } }
  - { name: not listed, topic: t, body: { status: paid }, expect: { calls: [{ url: http://o/x }] } }
  - { name: missing, topic: t, body: { other: 1 }, expect: { calls: [{ url: http://o/x }] } }
";
    let dir = config(&calling("http://o/x", when));
    let out = switchyard(&["test"], dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).ends_with("3 passed, 0 failed\n"), "{}", text(&out));

    let both = calling("http://o/x", "        when: { all: [{ path: $.status, in: [a], not_in: [b] }] }\n");
    let out = invalid(&both);
    assert_says(&out, &["routes.yaml:20:31: a condition needs exactly one of 'equals', 'in', 'not_in', 'exists', "]);
}

/// Ranges, text tests, regular expressions and `any`/`all`/`not` pick the events a rule takes;
/// `to_number` reads an amount written as text. Conditions that could never hold, or that do
/// not say one thing, are refused with their place.
#[test]
fn conditions_combine_and_compare() {
    let rule = r#"        request:
          method: POST
          url: http://o/x
          body:
            amount: { path: $.amount, optional: true, then: [to_number] }
            at: { path: $.at, optional: true, then: [to_utc] }
        when:
          any:
            - { path: $.amount_cents, gte: 100000 }
            - all: [{ path: $.email, ends_with: "@vip.example" }, { not: { path: $.country, in: [XX] } }]
            - { path: $.tags, contains: urgent }
            - { path: $.ref, matches: "^ord_[0-9]+$" }
            - { header: X-Attempt, gt: 2 }
tests:
  - name: large
    topic: t
    body: { amount_cents: 150000, amount: "1500.00", at: "2019-06-28T18:03:50+01:00" }
    expect: { calls: [{ body: { amount: 1500.0, at: "2019-06-28T17:03:50Z" } }] }
  - { name: just under, topic: t, body: { amount_cents: 99999 }, expect: { calls: [] } }
  - { name: vip, topic: t, body: { email: a@vip.example, country: DE }, expect: { calls: [{ body: {} }] } }
  - { name: vip but excluded, topic: t, body: { email: a@vip.example, country: XX }, expect: { calls: [] } }
  - { name: tagged, topic: t, body: { tags: [low, urgent] }, expect: { calls: [{ url: http://o/x }] } }
  - { name: order ref, topic: t, body: { ref: ord_42 }, expect: { calls: [{ url: http://o/x }] } }
  - { name: not an order ref, topic: t, body: { ref: xord_42 }, expect: { calls: [] } }
  - { name: third attempt, topic: t, headers: { X-Attempt: "3" }, body: {}, expect: { calls: [{ url: http://o/x }] } }
  - { name: second attempt, topic: t, headers: { X-Attempt: "2" }, body: {}, expect: { calls: [] } }
  - name: not a number
    topic: t
    body: { amount_cents: 100000, amount: "1,000.00" }
    expect: { calls: [{ dead_letter: "to_number: '1,000.00' is not a number" }] }
"#;
    let dir = config(&dispatching(rule));
    let out = switchyard(&["test"], dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).ends_with("10 passed, 0 failed\n"), "{}", text(&out));

    let when = |conditions: &str| calling("http://o/x", &format!("        when: {{ all: [{conditions}] }}\n"));
    let refused = [
        (
            "{ path: $.a, matches: \"ord_(\" }",
            "routes.yaml:20:45: 'matches' is not a regular expression (unclosed group): ord_(",
        ),
        (
            "{ path: $.a, gt: 1, gte: 2 }",
            "routes.yaml:20:31: a range gives at most one lower bound ('gt' or 'gte') and one upper ('lt' or 'lte')",
        ),
        ("{ path: $.a, gt: 5, lt: 5 }", "routes.yaml:20:31: this range can never hold: no number is within its bounds"),
        (
            "{ path: $.a, gte: 1, starts_with: x }",
            "routes.yaml:20:31: a condition needs exactly one of 'equals', 'in', 'not_in', 'exists', 'contains', 'starts_with', 'ends_with', 'matches', or a range ('gt' or 'gte', 'lt' or 'lte')",
        ),
        ("{ any: [] }", "routes.yaml:20:23: 'any' needs at least one condition (an empty 'any' never holds)"),
        ("{ all: [] }", "routes.yaml:20:23: 'all' needs at least one condition (an empty 'all' always holds)"),
        (
            "{ any: [{ path: $.a, exists: true }], all: [{ path: $.b, exists: true }] }",
            "routes.yaml:20:23: a condition holds one of 'any', 'all' or 'not', not two: nest one inside an item of an 'all' to need both",
        ),
        (
            "{ path: $.a, exists: true, not: { path: $.b, exists: true } }",
            "routes.yaml:20:23: a condition is either a test ('path' or 'header' with a test) or one of 'any', 'all', 'not', not both",
        ),
        (
            "{ not: { equals: 1 } }",
            "routes.yaml:20:30: a condition needs exactly one of 'path' and 'header' (or is 'any', 'all' or 'not')",
        ),
        ("{ all: [{ path: \"$.a[\", exists: true }] }", "routes.yaml:20:39:"),
    ];
    for (conditions, says) in refused {
        assert_says(&invalid(&when(conditions)), &[says]);
    }
    let empty_any = calling("http://o/x", "        when: { any: [] }\n");
    assert_says(
        &invalid(&empty_any),
        &["routes.yaml:20:22: 'any' needs at least one condition (an empty 'any' never holds)"],
    );
}

/// `object` builds a nested value and `each` an array with one value per selected item (its
/// paths read the item), in events and in calls; failures name the place inside the value, and
/// the contract check follows both into the canonical schema's `properties` and `items`.
#[test]
fn values_nest_objects_and_map_each_item_of_an_array() {
    let canonical = r#"{"type": "object", "required": ["order_id", "customer", "items"],
      "properties": {"order_id": {"type": "string"},
        "customer": {"type": "object", "required": ["id"], "additionalProperties": false,
          "properties": {"id": {"type": "string"}, "email": {"type": "string"},
            "agent": {"type": "string", "pattern": "^[a-z]+/[0-9.]+$"}}},
        "items": {"type": "array", "items": {"type": "object", "required": ["sku", "quantity"],
          "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer"}}}},
        "tags": {"type": "array", "items": {"type": "string"}}}}"#;
    let inbound = r#"{"type": "object", "properties": {"lines": {"type": "array", "items": {"type": "object",
      "properties": {"price": {"type": "object", "properties": {"id": {"type": "string"}}},
        "quantity": {"type": "integer"}, "note": {"type": "object"}}}}}}"#;
    let value = |customer_id: &str, quantity: &str| {
        format!(
            r#"          value:
            order_id: {{ path: $.id }}
            customer:
              object:
                id: {{ path: {customer_id} }}
                email: {{ path: $.customer.email, optional: true, then: [lower] }}
                agent: {{ header: X-Agent, optional: true }}
            items:
              each: $.lines[*]
              object:
                sku: {{ path: $.price.id }}
                quantity: {{ path: {quantity} }}
            tags: {{ each: "$.tags[*]", path: $, then: [upper] }}
"#
        )
    };
    let source = |value: &str| {
        format!(
            "sources:
  - name: s
    path: /hooks/s
    verify: {{ kind: stripe, secrets: [\"${{S}}\"] }}
    schema: inbound.json
    rules:
      - name: r
        emit:
          topic: t
          schema: canonical.json
{value}"
        )
    };
    let cases = r#"dispatch:
  - name: d
    topic: t
    group: g
    schema: canonical.json
    rules:
      - name: call
        request:
          method: POST
          url: http://o/customers/{customer.id}/orders/{order_id}
          body:
            order: { object: { id: { path: $.order_id }, lines: { each: "$.items[*]", path: $.sku } } }
tests:
  - name: nested
    source: s
    body:
      id: "7"
      customer: { id: cus_1, email: Ana@Example.COM }
      lines: [{ price: { id: sku_a }, quantity: 2 }, { price: { id: sku_b }, quantity: 1 }]
      tags: [vip, new]
    expect:
      status: accepted
      events:
        - value:
            order_id: "7"
            customer: { id: cus_1, email: ana@example.com }
            items: [{ sku: sku_a, quantity: 2 }, { sku: sku_b, quantity: 1 }]
            tags: [VIP, NEW]
  - name: no lines, no tags, no email
    source: s
    body: { id: "8", customer: { id: cus_2 }, lines: [] }
    expect: { status: accepted, events: [{ value: { order_id: "8", customer: { id: cus_2 }, items: [], tags: [] } }] }
  - name: an item without its sku
    source: s
    body: { id: "9", customer: { id: cus_3 }, lines: [{ price: { id: a }, quantity: 1 }, { quantity: 1 }] }
    expect:
      status: rejected
      http_status: 422
      message_contains: "value.items[1].sku: required data is missing: no value at $.price.id"
  - name: a header inside an object that the canonical schema refuses is the sender's fault
    source: s
    headers: { X-Agent: "not an agent" }
    body: { id: "10", customer: { id: cus_4 }, lines: [] }
    expect:
      status: rejected
      http_status: 422
      message_contains: "the request header 'x-agent' holds a value the canonical schema 'canonical.json' refuses"
      violations: [/customer/agent]
  - name: the call
    topic: t
    body: { order_id: "7", customer: { id: c9 }, items: [{ sku: a, quantity: 1 }, { sku: b, quantity: 2 }] }
    expect: { calls: [{ url: http://o/customers/c9/orders/7, body: { order: { id: "7", lines: [a, b] } } }] }
"#;
    let write = |yaml: &str| {
        let dir = config(yaml);
        std::fs::write(dir.path().join("canonical.json"), canonical).unwrap();
        std::fs::write(dir.path().join("inbound.json"), inbound).unwrap();
        dir
    };
    let dir = write(&format!("{}{cases}", source(&value("$.customer.id", "$.quantity"))));
    let out = switchyard(&["test"], dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).ends_with("5 passed, 0 failed\n"), "{}", text(&out));

    let refused = |yaml: &str, says: &[&str]| {
        let dir = write(yaml);
        let out = switchyard(&["validate", "-c", "routes.yaml"], dir.path(), &[("S", "x")]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert_says(&text(&out), says);
    };
    // The inbound schema says what each item holds: `note` is an object, where an integer goes.
    refused(
        &source(&value("$.customer.id", "$.note")),
        &[
            "routes.yaml:22:35: rule 'r', value.items[].quantity: produces object but the canonical schema 'canonical.json' wants integer",
        ],
    );
    // An integer times an integer stays one; divided, it may not.
    refused(
        &source(&value("$.customer.id", "$.quantity, then: [{ divide: 2 }]")),
        &["rule 'r', value.items[].quantity: produces number but the canonical schema 'canonical.json' wants integer"],
    );
    let doubled = write(&source(&value("$.customer.id", "$.quantity, then: [{ multiply: 2 }]")));
    let out = switchyard(&["validate", "-c", "routes.yaml"], doubled.path(), &[("S", "x")]);
    assert!(out.status.success(), "{}", text(&out));
    // A canonical array of at least one item needs an inbound array that has one.
    let at_least_one = |dir: &tempfile::TempDir, inbound_too: bool| {
        let wants = canonical
            .replace(r#""items": {"type": "array", "items""#, r#""items": {"type": "array", "minItems": 1, "items""#);
        std::fs::write(dir.path().join("canonical.json"), wants).unwrap();
        if inbound_too {
            let has = inbound
                .replace(
                    r#""lines": {"type": "array", "items""#,
                    r#""lines": {"type": "array", "minItems": 2, "items""#,
                )
                .replacen(
                    r#"{"type": "object", "properties""#,
                    r#"{"type": "object", "required": ["lines"], "properties""#,
                    1,
                );
            std::fs::write(dir.path().join("inbound.json"), has).unwrap();
        }
        switchyard(&["validate", "-c", "routes.yaml"], dir.path(), &[("S", "x")])
    };
    let out = at_least_one(&doubled, false);
    assert_says(
        &text(&out),
        &[
            "rule 'r', value.items: 'canonical.json' wants at least 1 item(s), but $.lines may hold fewer in payloads valid for 'inbound.json' (it gives no such minItems)",
        ],
    );
    assert!(at_least_one(&doubled, true).status.success());
    // Enough items, but an array the payload may leave out gives none at all.
    let optional_lines = inbound
        .replace(r#""lines": {"type": "array", "items""#, r#""lines": {"type": "array", "minItems": 2, "items""#);
    std::fs::write(doubled.path().join("inbound.json"), optional_lines).unwrap();
    let out = switchyard(&["validate", "-c", "routes.yaml"], doubled.path(), &[("S", "x")]);
    assert_says(
        &text(&out),
        &[
            "rule 'r', value.items: 'canonical.json' wants at least 1 item(s), but $.lines may be missing in payloads valid for 'inbound.json' (it is not required all the way)",
        ],
    );
    // A filter may select fewer items than the array holds, however many it holds.
    let filtered = write(
        &source(&value("$.customer.id", "$.quantity, then: [{ multiply: 2 }]"))
            .replace("each: $.lines[*]", r#"each: "$.lines[?(@.quantity > 0)]""#),
    );
    let out = at_least_one(&filtered, true);
    assert_says(
        &text(&out),
        &[
            "rule 'r', value.items: 'canonical.json' wants at least 1 item(s), but each '$.lines[?(@.quantity > 0)]' may select fewer",
        ],
    );
    // An item that may be left out cannot make up a canonical minItems, however many there are.
    let tags = source(&value("$.customer.id", "$.quantity"))
        .replace("path: $, then: [upper] }", "path: $.name, optional: true }");
    let optional_tags = write(&tags);
    let wants = canonical
        .replace(r#""tags": {"type": "array", "items""#, r#""tags": {"type": "array", "minItems": 1, "items""#);
    std::fs::write(optional_tags.path().join("canonical.json"), wants).unwrap();
    let out = switchyard(&["validate", "-c", "routes.yaml"], optional_tags.path(), &[("S", "x")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_says(
        &text(&out),
        &[
            "rule 'r', value.tags: 'canonical.json' wants at least 1 item(s), but 'optional: true' leaves out an item that finds nothing (give a default instead)",
        ],
    );
    let nested = |lines: &str| source(&format!("          value:\n            order_id: {{ path: $.id }}\n{lines}"));
    refused(
        &nested(
            "            customer: { object: { name: { path: $.name } } }\n            items: { each: \"$.lines[*]\", object: { sku: { path: $.price.id } } }\n",
        ),
        &[
            "routes.yaml:13:23: rule 'r' never produces 'customer.id', which its canonical schema 'canonical.json' requires",
            "routes.yaml:13:49: rule 'r', value.customer.name: 'name' is not a property of the canonical schema 'canonical.json'",
            "routes.yaml:14:20: rule 'r' never produces 'items[].quantity', which its canonical schema 'canonical.json' requires",
        ],
    );
    refused(
        &nested("            customer: { const: cus_1 }\n            items: { object: { sku: { path: $.id } } }\n"),
        &[
            "rule 'r', value.customer: produces string but the canonical schema 'canonical.json' wants object",
            "rule 'r', value.items: produces object but the canonical schema 'canonical.json' wants array",
        ],
    );
    refused(
        &nested(
            "            customer: { object: { id: { path: $.id } }, optional: true }\n            items: { each: \"$.lines[*]\", field: sku }\n",
        ),
        &[
            "rule 'r', value.customer: an 'object' is always produced, and no step takes one: put 'default', 'optional' and 'then' on its properties",
            "rule 'r', value.items: 'field' is only allowed in 'key' and 'headers'; use 'path' here",
        ],
    );
    // A template reads a nested property by its dotted name; one the schema lacks is refused.
    let url = format!("{}{cases}", source(&value("$.customer.id", "$.quantity")))
        .replace("{customer.id}/orders", "{customer.name}/orders");
    refused(
        &url,
        &["template variable '{customer.name}' is not a property of the canonical event in 'canonical.json'"],
    );
    refused(
        &nested("            items: { each: \"$.lines[\", path: $.sku }\n"),
        &["routes.yaml:13:28: invalid JSONPath \"$.lines[\""],
    );
}

/// `to_number` makes a number of the sender's text, which may be an integer: the contract
/// check lets it into an `integer` property (the canonical schema still checks each event), and
/// refuses it where a string goes.
#[test]
fn a_number_read_from_text_may_fill_an_integer_property() {
    let canonical =
        r#"{"type": "object", "properties": {"quantity": {"type": "integer"}, "order_id": {"type": "string"}}}"#;
    let yaml = |field: &str| {
        SOURCE
            .replace("order_id: { path: $.id }", &format!("{field}: {{ path: $.qty, then: [to_number] }}"))
            .replace("min.json", "canonical.json")
            + "tests:\n  - { name: three, source: s, body: { qty: \"3\" }, expect: { status: accepted, events: [{ value: { quantity: 3 } }] } }\n  - { name: a half, source: s, body: { qty: \"2.5\" }, expect: { status: rejected, violations: [/quantity] } }\n"
    };
    let dir = config(&yaml("quantity"));
    std::fs::write(dir.path().join("canonical.json"), canonical).unwrap();
    let out = switchyard(&["test"], dir.path(), &[]);
    assert!(text(&out).ends_with("2 passed, 0 failed\n"), "{}", text(&out));
    let dir = config(&yaml("order_id"));
    std::fs::write(dir.path().join("canonical.json"), canonical).unwrap();
    let out = switchyard(&["validate", "-c", "routes.yaml"], dir.path(), &[("S", "x")]);
    assert_says(
        &text(&out),
        &["rule 'r', value.order_id: produces integer but the canonical schema 'canonical.json' wants string"],
    );
}

/// Steps that clean text, cut and join it, scale and round numbers and read JSON nested in a
/// string, in a dispatcher's body (as in events); steps that could not do anything are
/// refused with their place.
#[test]
fn steps_trim_replace_split_join_round_scale_and_parse() {
    let rule = r#"        request:
          method: POST
          url: http://o/x
          body:
            customer: { path: $.customer, then: [trim, { replace: { pattern: "^cus_", with: "" } }] }
            tags: { path: $.tags, then: [{ split: "," }] }
            skus: { path: $.skus, then: [{ join: "|" }] }
            cents: { path: $.amount, then: [{ multiply: 100 }, { round: 0 }] }
            euros: { path: $.cents, then: [{ divide: 100 }, { round: 1 }] }
            meta: { path: $.meta, then: [parse_json] }
tests:
  - name: all of them
    topic: t
    body: { customer: " cus_42 ", tags: "vip,new", skus: [a, 7], amount: 12.345, cents: 1250, meta: "{\"channel\": \"web\"}" }
    expect:
      calls:
        - body: { customer: "42", tags: [vip, new], skus: "a|7", cents: 1235, euros: 12.5, meta: { channel: web } }
  - name: nested JSON that is not
    topic: t
    body: { customer: x, tags: "", skus: [], amount: 1, cents: 1, meta: "{" }
    expect: { calls: [{ dead_letter: "body.meta: parse_json: the string is not JSON" }] }
"#;
    let dir = config(&dispatching(rule));
    let out = switchyard(&["test"], dir.path(), &[]);
    assert!(text(&out).ends_with("2 passed, 0 failed\n"), "{}", text(&out));

    let body = |steps: &str| {
        dispatching(&format!(
            "        request:\n          method: POST\n          url: http://o/x\n          body: {{ x: {{ path: $.x, then: [{steps}] }} }}\n"
        ))
    };
    for (steps, says) in [
        ("{ split: \"\" }", "routes.yaml:22:42: 'split' needs the text to cut at (an empty one cuts nowhere)"),
        ("{ round: 16 }", "routes.yaml:22:42: 'round' keeps 0 to 15 decimal places (a double holds no more), not 16"),
        ("{ divide: 0 }", "routes.yaml:22:42: 'divide' needs a finite number other than 0, not 0"),
        (
            "{ replace: { pattern: \"(\", with: x } }",
            "routes.yaml:22:64: replace: 'pattern' is not a regular expression (unclosed group): (",
        ),
        ("{ replace: { pattern: x } }", "missing field 'with'"),
    ] {
        assert_says(&invalid(&body(steps)), &[says]);
    }
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

/// `include:` adds the sources, dispatchers and tests of other files (a folder: its YAML files
/// in name order), each resolving its paths against its own folder; every diagnostic names the
/// file it is in.
#[test]
fn included_files_add_sources_dispatchers_and_tests() {
    let main = "include: [routes.d, more.yaml]
sources:
  - name: s
    path: /hooks/s
    verify: { kind: stripe, secrets: [\"${S}\"] }
    rules:
      - name: r
        emit: { topic: t, schema: min.json, value: { order_id: { path: $.id } } }
tests:
  - { name: main case, source: s, body: { id: \"1\" }, expect: { status: accepted } }
";
    let a = "sources:
  - name: a
    path: /hooks/a
    verify: { kind: hmac-sha256, secrets: [\"${S}\"] }
    schema: a.schema.json
    rules:
      - name: r
        emit: { topic: t, schema: ../min.json, value: { order_id: { path: $.order } } }
tests:
  - { name: from a, source: a, payload: a-payload.json, expect: { status: accepted, events: [{ value: { order_id: \"7\" } }] } }
";
    let b = "dispatch:
  - name: d
    topic: t
    group: g
    rules:
      - name: call
        request: { method: POST, url: \"http://o/orders/{order_id}\" }
tests:
  - { name: from b, topic: t, body: { order_id: \"7\" }, expect: { calls: [{ url: http://o/orders/7 }] } }
";
    let dir = config(main);
    let d = dir.path().join("routes.d");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("a.yaml"), a).unwrap();
    std::fs::write(d.join("b.yml"), b).unwrap();
    std::fs::write(d.join("notes.txt"), "not YAML: passed over").unwrap();
    std::fs::write(d.join("a.schema.json"), r#"{"type": "object", "required": ["order"]}"#).unwrap();
    std::fs::write(d.join("a-payload.json"), r#"{"order": "7"}"#).unwrap();
    std::fs::write(dir.path().join("more.yaml"), "tests: []\n").unwrap();
    let out = switchyard(&["validate", "-c", "routes.yaml"], dir.path(), &[("S", "0123456789abcdef0123")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).ends_with("routes.yaml and 3 included files: valid\n"), "{}", text(&out));
    let out = switchyard(&["test"], dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).ends_with("3 passed, 0 failed\n"), "{}", text(&out));

    // Each file's mistakes with its own name and lines.
    let refuse = |file: &str, yaml: &str, says: &[&str]| {
        std::fs::write(d.join(file), yaml).unwrap();
        let out = switchyard(&["validate", "-c", "routes.yaml"], dir.path(), &[("S", "0123456789abcdef0123")]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert_says(&text(&out), says);
    };
    refuse("a.yaml", &a.replace("$.order", "\"$.order[\""), &["routes.d/a.yaml:8:75: invalid JSONPath \"$.order[\""]);
    refuse("a.yaml", &a.replace("a.schema.json", "b.schema.json"), &["routes.d/a.yaml:5:13: "]);
    refuse(
        "a.yaml",
        &format!("kafka: {{ brokers: x }}\n{a}"),
        &[
            "routes.d/a.yaml:1:1: 'kafka' is set in the main config only: an included file holds sources, dispatch and tests",
        ],
    );
    refuse(
        "a.yaml",
        &a.replace("/hooks/a", "/hooks/s"),
        &["routes.d/a.yaml:3:11: duplicate route path '/hooks/s': source 's' already serves it"],
    );
    std::fs::write(d.join("a.yaml"), a).unwrap();
    refuse("c.yaml", &b.replace("from b", "from c"), &["routes.d/c.yaml:2:11: duplicate dispatcher name 'd'"]);
    std::fs::write(d.join("c.yaml"), "tests: [{ name: from a, topic: t, body: {}, expect: { calls: [] } }]\n").unwrap();
    let out = switchyard(&["validate", "-c", "routes.yaml"], dir.path(), &[("S", "0123456789abcdef0123")]);
    assert!(out.status.success(), "{}", text(&out));
    assert_says(
        &text(&out),
        &[
            "routes.d/c.yaml:1:17: warning: test case 'from a' has the name of the case at routes.d/a.yaml:10: give each its own",
        ],
    );
    std::fs::remove_file(d.join("c.yaml")).unwrap();
    let including = |list: &str| {
        let dir = config(&main.replace("[routes.d, more.yaml]", list));
        std::fs::write(dir.path().join("more.yaml"), "tests: []\n").unwrap();
        let out = switchyard(&["validate", "-c", "routes.yaml"], dir.path(), &[("S", "0123456789abcdef0123")]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        text(&out)
    };
    // The main file's own folder stands for the other files in it.
    let dir = config(&main.replace("[routes.d, more.yaml]", "[.]"));
    std::fs::write(
        dir.path().join("more.yaml"),
        "tests: [{ name: more, source: s, body: { id: \"2\" }, expect: { status: accepted } }]\n",
    )
    .unwrap();
    let out = switchyard(&["test"], dir.path(), &[]);
    assert!(text(&out).ends_with("2 passed, 0 failed\n"), "{}", text(&out));
    assert_says(&including("[gone.yaml]"), &["routes.yaml:1:11: cannot read included file 'gone.yaml': No such file"]);
    assert_says(
        &including("[routes.yaml]"),
        &["routes.yaml:1:11: 'routes.yaml' is the config itself: a file is read once"],
    );
    assert_says(&including("[more.yaml, ./more.yaml]"), &["routes.yaml:1:22: './more.yaml' is already included"]);
}

/// `validate`, `check` and `test` read no secrets, so a variable is often unset there: what
/// depends on it must still be compiled, checked and tested, not left out. A Square source
/// whose URL is unset, one whose topic and allowed addresses are, a Meta challenge whose token
/// is, a dispatcher whose topic, URL and token are: every case runs, and a mistake inside any
/// of them is still found.
#[test]
fn what_unset_variables_hold_is_still_checked_and_tested() {
    let yaml = r#"sources:
  - name: sq
    path: /hooks/sq
    verify: { kind: square, secrets: ["${SQ_KEY}"], url: "${PUBLIC_URL}/hooks/sq" }
    rules:
      - name: r
        emit: { topic: t, schema: min.json, value: { order_id: { path: $.id } } }
  - name: ip
    path: /hooks/ip
    verify: { kind: hmac-sha256, secrets: ["${S}"] }
    allowed_ips: ["${IPS}"]
    challenge: { echo: hub.challenge, require: { hub.verify_token: "${VERIFY_TOKEN}" } }
    dead_letter_topic: "${DLQ}"
    rules:
      - name: r
        emit: { topic: "${TOPIC}", schema: min.json, value: { order_id: { path: $.id } } }
dispatch:
  - name: d
    topic: t
    group: "${GROUP}"
    allowed_hosts: [orders.internal]
    rules:
      - name: call
        request:
          method: POST
          url: "${ORDER_SERVICE_URL}/orders/{order_id}"
          bearer_token: "${TOKEN}"
          headers: { X-Tenant: "${TENANT}" }
tests:
  - { name: square, source: sq, body: { id: "1" }, expect: { status: accepted, events: [{ topic: t, value: { order_id: "1" } }] } }
  - { name: listed, source: ip, body: { id: "2" }, expect: { status: accepted, events: [{ topic: $TOPIC }] } }
  - name: call
    topic: t
    body: { order_id: "3" }
    expect: { calls: [{ method: POST, url: "http://order-service-url.unset.invalid/orders/3" }] }
"#;
    let dir = config(yaml);
    let out = switchyard(&["test"], dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).ends_with("3 passed, 0 failed\n"), "{}", text(&out));
    let out = switchyard(&["validate", "-c", "routes.yaml"], dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_says(
        &text(&out),
        &[
            "routes.yaml:4:58: warning: environment variable 'PUBLIC_URL' is not set",
            "routes.yaml:11:19: warning: environment variable 'IPS' is not set",
            "routes.yaml:12:68: warning: environment variable 'VERIFY_TOKEN' is not set",
            "routes.yaml:26:16: warning: environment variable 'ORDER_SERVICE_URL' is not set",
        ],
    );
    // A mistake inside each is found as it would be with every variable set.
    for (from, to, says) in [
        (
            "{ path: $.id } } }\n  - name: ip",
            "{ path: \"$.id[\" } } }\n  - name: ip",
            "routes.yaml:7:72: invalid JSONPath",
        ),
        (
            "{ order_id: { path: $.id } } }\n  - name: ip",
            "{ order_id: { const: 5 } } }\n  - name: ip",
            "routes.yaml:7:73: rule 'r', value.order_id: produces integer but the canonical schema",
        ),
        ("/orders/{order_id}", "/orders/{order}", "routes.yaml:26:16: template variable '{order}' is not a property"),
    ] {
        let broken = yaml.replace(from, to);
        assert_ne!(broken, yaml, "{from}");
        assert_says(&invalid(&broken), &[says]);
    }
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

/// A dispatch rule's filters and body read the record's Kafka headers with `header:`
/// (case-insensitive names); a header that is missing or not where it should be is refused
/// with its line.
#[test]
fn dispatch_rules_read_kafka_headers_and_bad_header_references_are_refused() {
    let rule = "        when: { all: [{ header: Source, in: [stripe, paypal] }] }
        request:
          method: POST
          url: http://o/x
          body: { via: { header: source }, event: { header: event_id, optional: true } }
tests:
  - name: from stripe
    topic: t
    headers: { source: stripe, event_id: evt_1 }
    body: {}
    expect: { calls: [{ url: http://o/x, body: { via: stripe, event: evt_1 } }] }
  - name: from elsewhere
    topic: t
    headers: { source: bank }
    body: {}
    expect: { calls: [] }
  - name: no header
    topic: t
    body: {}
    expect: { calls: [] }
";
    let yaml = dispatching(rule);
    let dir = config(&yaml);
    let out = switchyard(&["test"], dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).ends_with("3 passed, 0 failed\n"), "{}", text(&out));

    let bad = yaml
        .replace("{ header: Source, in:", "{ header: Source, path: $.s, in:")
        .replace("via: { header: source }", "via: { header: \"bad name\" }");
    let out = invalid(&bad);
    assert_says(
        &out,
        &[
            "routes.yaml:19:23: a condition needs exactly one of 'path' and 'header'",
            "routes.yaml:23:34: 'bad name' is not a valid header name",
        ],
    );
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

/// `oauth2:` on a request: a token URL, a client id and an environment secret; never beside a
/// `bearer_token`; a dry run shows where the token will come from, not a token.
#[test]
fn an_oauth2_block_is_checked_and_shown_without_a_token() {
    let with = |oauth2: &str, more: &str| {
        dispatching(&format!(
            "        request:\n          method: POST\n          url: http://o/x\n{more}          oauth2: {oauth2}\n"
        ))
    };
    let good = "{ token_url: \"https://auth.example.com/oauth/token?tenant=a\", client_id: sw, client_secret: \"${SECRET_X}\", scopes: [a b, c] }";
    let refused = [
        (
            with(good, "          bearer_token: \"${T}\"\n"),
            "routes.yaml:22:25: dispatch rule 'call': give 'bearer_token' or 'oauth2', not both",
        ),
        (
            with(&good.replace("https://auth.example.com/oauth/token?tenant=a", "auth/token"), ""),
            "oauth2: token_url 'auth/token' is not an absolute http(s) URL",
        ),
        (with(&good.replace("client_id: sw", "client_id: \"\""), ""), "oauth2: client_id is empty"),
        (
            with(&good.replace(" }", ", client_auth: jwt }"), ""),
            "oauth2: client_auth 'jwt' is neither 'basic' nor 'body'",
        ),
        (
            with(&good.replace(" }", ", params: { grant_type: password } }"), ""),
            "oauth2: params.grant_type is set by Switchyard",
        ),
        (
            with(good, "").replace("    group: g\n", "    group: g\n    allowed_hosts: [o]\n"),
            "oauth2: token_url host 'auth.example.com' is not in this dispatcher's allowed_hosts (o)",
        ),
    ];
    for (yaml, says) in refused {
        let dir = config(&yaml);
        let out = switchyard(
            &["validate", "-c", "routes.yaml"],
            dir.path(),
            &[("S", "x"), ("SECRET_X", "s3cr3t"), ("T", "t")],
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert_says(&text(&out), &[says]);
    }
    let plain = with(&good.replace("https://auth.example.com", "http://auth.example.com"), "");
    let out = valid(&plain, &[("S", "x"), ("SECRET_X", "s3cr3t")]);
    assert_says(
        &out,
        &[
            "token_url 'http://auth.example.com/oauth/token?tenant=a' is plain HTTP: the client secret would travel unencrypted",
        ],
    );
    // A dry run of an event on the topic: the call, its token named by where it comes from.
    let dir = config(&with(good, ""));
    std::fs::write(dir.path().join("event.json"), r#"{"order_id": "1"}"#).unwrap();
    let out = switchyard(
        &["check", "--topic", "t", "--payload", "event.json"],
        dir.path(),
        &[("S", "x"), ("SECRET_X", "s3cr3t")],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_says(
        &text(&out),
        &[r#""authorization": "Bearer <OAuth2 token from https://auth.example.com/oauth/token when sent>""#],
    );
    assert!(!text(&out).contains("s3cr3t"));
}

/// `sign:` takes a verifier's kinds and keys, but not `none` or a tolerance (the receiver's
/// choices), and refuses a block with no usable secret, naming the rule.
#[test]
fn a_sign_block_is_checked_like_a_verify_block() {
    let with = |sign: &str| {
        dispatching(&format!(
            "        request:\n          method: POST\n          url: http://o/x\n          sign: {sign}\n"
        ))
    };
    let out = invalid(&with("{ kind: none }"));
    assert_says(
        &out,
        &[
            "routes.yaml:22:25: a call is signed with 'stripe', 'hmac-sha256', 'standard-webhooks', 'slack', 'zoom', 'twitch', 'token' or 'basic'",
        ],
    );
    let out = invalid(&with("{ kind: square, secrets: [\"${S}\"], url: \"https://h/x\" }"));
    assert_says(&out, &["routes.yaml:22:25: 'square' checks webhooks that Square sends"]);
    let out = invalid(&with("{ kind: twilio, secrets: [\"${S}\"], url: \"https://h/x\" }"));
    assert_says(&out, &["routes.yaml:22:25: 'twilio' checks webhooks that Twilio sends"]);
    let out = invalid(&with("{ kind: adyen, secrets: [\"${S}\"] }"));
    assert_says(&out, &["routes.yaml:22:25: 'adyen' checks webhooks that Adyen sends"]);
    let out = invalid(&with("{ kind: sendgrid, public_keys: [\"${K:-}\"] }"));
    assert_says(&out, &["routes.yaml:22:25: 'sendgrid' checks webhooks that SendGrid sends"]);
    let out = invalid(&with("{ kind: stripe, secrets: [\"${S}\"], tolerance_secs: 60 }"));
    assert_says(&out, &["routes.yaml:22:68: 'tolerance_secs' is for verifying: the receiver chooses it"]);
    let out = invalid(&with("{ kind: hmac-sha256, secrets: [\"${EMPTY:-}\"] }"));
    assert_says(&out, &["routes.yaml:22:25: dispatch rule 'call' has no usable secret in 'secrets'"]);
    // A dry run shows the headers the signature adds (their values depend on the send time).
    let valid =
        with("{ kind: standard-webhooks, secrets: [\"${SIGNING_SECRET:-whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=}\"] }");
    let case = "tests:
  - name: signed
    topic: t
    body: {}
    expect:
      calls: [{ url: http://o/x, headers: { webhook-id: <signed when sent>, webhook-signature: <signed when sent> } }]
";
    let dir = config(&format!("{valid}{case}"));
    let out = switchyard(&["test"], dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn event_data_cannot_choose_the_host() {
    let yaml = calling("http://{host}/x", "");
    let out = invalid(&yaml);
    assert!(out.contains("routes.yaml:19:39: url 'http://{host}/x': the host must be written in the config"), "{out}");
}

#[test]
fn done_on_and_retry_on_take_only_statuses_they_change() {
    let yaml =
        calling("http://orders.internal/x", "        retry: { done_on: [409, 204], retry_on: [404, 429, 503, 409] }\n");
    let out = invalid(&yaml);
    assert_says(
        &out,
        &[
            "routes.yaml:20:33: done_on: 204 is not a status to add",
            "routes.yaml:20:55: retry_on: 429 is not a status to add: it is retried already",
            "routes.yaml:20:60: retry_on: 503 is not a status to add: only 4xx are added (5xx are retried already)",
            "routes.yaml:20:65: retry_on: 409 is not a status to add: it is in done_on too",
        ],
    );
    assert!(!out.contains("done_on: 409") && !out.contains("404"), "{out}");
}

#[test]
fn credentials_in_a_dispatch_url_are_refused_without_being_shown() {
    let yaml = calling("${ORDERS_URL}/x", "");
    let dir = config(&yaml);
    let out =
        switchyard(&["validate"], dir.path(), &[("S", "x"), ("ORDERS_URL", "https://alice:s3cret@orders.internal")]);
    assert_eq!(out.status.code(), Some(1));
    let out = text(&out);
    assert!(
        out.contains("routes.yaml:19:39: url 'https://…@orders.internal/x': credentials in the URL are refused"),
        "{out}"
    );
    assert!(out.contains("Authorization: Basic"), "{out}");
    assert!(!out.contains("s3cret") && !out.contains("alice"), "{out}");
}

#[test]
fn a_dispatch_url_is_checked_as_the_http_client_reads_it() {
    let yaml = calling("${ORDERS_URL}/x/{key}", "");
    let dir = config(&yaml);
    let validate = |url: &str| text(&switchyard(&["validate"], dir.path(), &[("S", "x"), ("ORDERS_URL", url)]));
    for (url, why) in [
        ("http://orders:99999", "'orders:99999' is not a host[:port] a call can go to (invalid port number)"),
        ("http://orders:80a", "'orders:80a' is not a host[:port] a call can go to (invalid port number)"),
        ("http://:8081", "':8081' is not a host[:port] a call can go to (empty host)"),
        ("http://ord ers", "'ord ers' is not a host[:port] a call can go to"),
    ] {
        let out = validate(url);
        assert!(out.contains(&format!("routes.yaml:19:39: url '{url}/x/{{key}}': {why}")), "{out}");
    }
    // A base URL ending in '/' before a path starting with one: sent with one '/', and said so.
    let out = validate("https://orders.internal/api/");
    assert!(out.contains("routes.yaml: valid"), "{out}");
    let warned = "routes.yaml:19:39: warning: url 'https://orders.internal/api//x/{key}': the empty path segment ('//') is sent as '/'";
    assert!(out.contains(warned), "{out}");
    let event = dir.path().join("event.json");
    std::fs::write(&event, "{}").unwrap();
    let args = ["check", "--topic", "t", "--payload", event.to_str().unwrap(), "--key", "k1"];
    let out = switchyard(&args, dir.path(), &[("S", "x"), ("ORDERS_URL", "HTTPS://orders.internal/api/")]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    assert_eq!(doc["calls"][0]["url"], "https://orders.internal/api/x/k1", "a lower-case scheme, one '/'");
}

#[test]
fn unset_variables_are_reported_with_their_line_but_only_serve_refuses() {
    let dir = config(SOURCE);
    let out = switchyard(&["validate"], dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("routes.yaml:4:39: warning: environment variable 'S' is not set"), "{}", text(&out));
    let out = switchyard(&["serve", "--listen", "127.0.0.1:0"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("routes.yaml:4:39: environment variable 'S' is not set"), "{}", text(&out));
}

/// `serve` with `role`, on a broker nobody listens on, until it listens (then SIGTERM), or
/// until it exits by itself: its exit code and what it printed.
fn serve_role(dir: &Path, role: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let listen =
        format!("127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.args(["serve", "--role", role, "--listen", &listen])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KAFKA_BROKERS", "127.0.0.1:1")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() && std::net::TcpStream::connect(&listen).is_err() {
        assert!(std::time::Instant::now() < deadline, "serve neither started nor stopped");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if child.try_wait().unwrap().is_none() {
        assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A dispatcher-only process never reads a source's webhook secret, and an ingress-only one
/// never reads a dispatcher's URL or token: each starts without them (a warning names what
/// it skipped); a process running both refuses to start without either.
#[test]
fn each_role_needs_only_the_variables_of_what_it_runs() {
    let dir = config(&calling("${ORDERS_URL}/x", ""));
    let (code, out) = serve_role(dir.path(), "all", &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("routes.yaml:4:39: environment variable 'S' is not set"), "{out}");
    assert!(out.contains("routes.yaml:19:39: environment variable 'ORDERS_URL' is not set"), "{out}");

    let (code, out) = serve_role(dir.path(), "dispatch", &[("ORDERS_URL", "http://orders.internal")]);
    assert_eq!(code, Some(0), "{out}");
    let skipped = "routes.yaml:4:39: warning: environment variable 'S' is not set and has no default (write ${S:-default} to give one); only a warning: this process serves no webhooks, so it does not read it";
    assert!(out.contains(skipped), "{out}");
    assert!(out.contains("dispatcher consuming"), "{out}");

    let (code, out) = serve_role(dir.path(), "ingress", &[("S", "whsec_0123456789abcdefghijklmn")]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("environment variable 'ORDERS_URL' is not set and has no default (write ${ORDERS_URL:-default} to give one); only a warning: this process runs no dispatcher, so it does not read it"), "{out}");
    assert!(out.contains("serving webhooks"), "{out}");
    // What both roles share is needed by each.
    let shared = config(
        &calling("http://orders.internal/x", "").replace("sources:", "kafka: { brokers: \"${BROKERS}\" }\nsources:"),
    );
    let (code, out) = serve_role(shared.path(), "dispatch", &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("environment variable 'BROKERS' is not set"), "{out}");
}

#[test]
fn the_worker_threads_are_what_workers_says() {
    let dir = config(&calling("http://orders.internal/x", ""));
    let secret = ("S", "whsec_0123456789abcdefghijklmn");
    let (code, out) = serve_role(dir.path(), "ingress", &[secret, ("SWITCHYARD_WORKERS", "1")]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ingress listening") && out.contains("workers=1"), "{out}");
    let (code, out) = serve_role(dir.path(), "ingress", &[secret, ("SWITCHYARD_WORKERS", "3")]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("workers=3"), "{out}");
    let out = switchyard(&["serve", "--workers", "0"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("invalid value '0' for '--workers <WORKERS>'"), "{}", text(&out));
}

/// `${VAR:?message}` says what the variable is for when it is missing or empty; `validate`
/// warns with the message, `serve` refuses with it, and a value starts it.
#[test]
fn a_required_variable_is_refused_with_its_message() {
    let dir = config(&calling("${ORDERS_URL:?the order service's base URL}/x", ""));
    let said = "environment variable 'ORDERS_URL' is not set: the order service's base URL";
    let out = switchyard(&["validate"], dir.path(), &[("S", "whsec_0123456789abcdefghijklmn")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("routes.yaml:19:39: warning: {said}")), "{}", text(&out));
    let (code, out) = serve_role(dir.path(), "dispatch", &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("routes.yaml:19:39: {said}")), "{out}");
    let (code, out) = serve_role(dir.path(), "dispatch", &[("ORDERS_URL", "")]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("'ORDERS_URL' is empty: the order service's base URL"), "{out}");
    let (code, out) = serve_role(dir.path(), "dispatch", &[("ORDERS_URL", "http://orders.internal")]);
    assert_eq!(code, Some(0), "{out}");
    // Without the colon an empty value is a value; `-` gives a default only when unset.
    let dir = config(&calling("${ORDERS_URL-http://orders.internal}/x", ""));
    let (code, out) = serve_role(dir.path(), "dispatch", &[]);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn unsigned_sources_are_warned_about() {
    let dir = config(&SOURCE.replace("{ kind: stripe, secrets: [\"${S}\"] }", "{ kind: none }"));
    let out = switchyard(&["validate"], dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("routes.yaml:4:21: warning: source 's' accepts unsigned webhooks"), "{}", text(&out));
}

#[test]
fn a_config_that_does_nothing_is_warned_about() {
    let dir = config("kafka: { brokers: localhost:9092 }\n");
    let out = switchyard(&["validate"], dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("routes.yaml:1:1: warning: no 'sources' and no 'dispatch'"), "{}", text(&out));
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

#[test]
fn check_shows_no_value_that_comes_from_the_environment() {
    let routes = std::fs::read_to_string(repo().join("routes.yaml")).unwrap().replace(
        "            Idempotency-Key: \"{header.event_id}\"\n",
        "            Idempotency-Key: \"{header.event_id}\"\n            X-Api-Key: \"${ORDERS_KEY}\"\n            X-Shop: eu-1\n          query: { key: \"k-${ORDERS_KEY}\", v: \"2\" }\n",
    );
    assert!(routes.contains("X-Api-Key"), "routes.yaml changed");
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

/// A dispatch rule's `when.event_type` that no event on its topic can have (the canonical
/// schemas list their types) is warned about: the rule would pass over every event.
#[test]
fn a_dispatch_event_type_no_event_on_the_topic_has_is_warned_about() {
    let shipped = std::fs::read_to_string(repo().join("routes.yaml")).unwrap();
    let when = "          event_type: payment_successful\n        request:";
    assert!(shipped.contains(when));
    let typo = shipped.replace(when, "          event_type: [payment_successful, payment_succesful]\n        request:");
    // With the dispatcher's declared schema, and without it (the schemas the routes publish).
    let undeclared = typo
        .replace("    schema: schemas/payment_successful.schema.json\n    dead_letter_topic", "    dead_letter_topic");
    assert_ne!(typo, undeclared);
    for yaml in [&typo, &undeclared] {
        let line = yaml.lines().position(|l| l.contains("payment_succesful")).unwrap() + 1;
        let warning = format!(
            "routes.yaml:{line}:23: warning: this rule would never call: no event on its topic has event_type \
             'payment_succesful' (schemas/payment_successful.schema.json allows only payment_successful)"
        );
        let out = switchyard(&["validate"], config(yaml).path(), &[]);
        assert!(out.status.success(), "{}", text(&out));
        assert_says(&text(&out), &[&warning]);
        assert_eq!(text(&out).matches("would never call").count(), 1, "{}", text(&out));
    }
    let out = switchyard(&["validate"], config(&shipped).path(), &[]);
    assert!(!text(&out).contains("would never call"), "{}", text(&out));
}

/// A source rule's `when.event_type` spelt nearly as a type its inbound schema names (in its
/// `if`s) is warned about, with the type meant; one far from every named type is not (the
/// schema need not name every type a sender has).
#[test]
fn a_misspelt_source_event_type_is_warned_about_with_the_type_meant() {
    let shipped = std::fs::read_to_string(repo().join("routes.yaml")).unwrap();
    let typo = shipped.replace("event_type: payment_intent.succeeded", "event_type: payment_intent.succeded");
    let other = shipped.replace("event_type: payment_intent.succeeded", "event_type: payment_intent.created");
    assert!(typo != shipped && other != shipped);
    let out = switchyard(&["validate"], config(&typo).path(), &[]);
    let line = typo.lines().position(|l| l.contains("payment_intent.succeded")).unwrap() + 1;
    assert_says(
        &text(&out),
        &[&format!(
            "routes.yaml:{line}:23: warning: rule 'payment_intent_succeeded', when.event_type: 'schemas/stripe/event.schema.json' names no event type 'payment_intent.succeded'; did you mean 'payment_intent.succeeded'?"
        )],
    );
    let out = switchyard(&["validate"], config(&other).path(), &[]);
    assert!(out.status.success() && !text(&out).contains("names no event type"), "{}", text(&out));
}

/// A dispatcher `d` of topic `t` and group `g`, down to its one rule's name, `call` (line 6 of
/// the text), for [`contract`]'s `dispatch`.
const ONE_DISPATCH_RULE: &str = "dispatch:
  - name: d
    topic: t
    group: g
    rules:
      - name: call
";

/// A config with its own inbound and canonical schemas, for the static contract check.
fn contract(value: &str, dispatch: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.json"),
        r#"{"type": "object", "additionalProperties": false, "required": ["id", "amount", "currency", "kind"],
            "properties": {"id": {"type": "string"}, "amount": {"type": "integer"}, "currency": {"type": "string"},
                           "kind": {"type": "string"}}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("out.json"),
        r#"{"type": "object", "additionalProperties": false, "required": ["id", "cents", "kind"],
            "properties": {"id": {"type": "string"}, "cents": {"type": "integer"}, "kind": {"const": "payment"},
                           "label": {"type": "string"}}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("refund.json"),
        r#"{"type": "object", "required": ["id", "refunded", "kind"],
            "properties": {"id": {"type": "string"}, "refunded": {"type": "integer"}, "kind": {"const": "refund"}}}"#,
    )
    .unwrap();
    let yaml = format!(
        "sources:
  - name: s
    path: /hooks/s
    verify: {{ kind: none }}
    schema: in.json
    rules:
      - name: r
        emit:
          topic: t
          schema: out.json
          value:
{value}{dispatch}"
    );
    std::fs::write(dir.path().join("routes.yaml"), yaml).unwrap();
    let out = switchyard(&["validate"], dir.path(), &[]);
    text(&out)
}

const GOOD: &str = "            id: { path: $.id }
            cents: { path: $.amount }
            kind: { const: payment }
";

#[test]
fn the_contract_check_accepts_a_mapping_that_fits() {
    let out = contract(GOOD, "");
    assert!(out.contains("routes.yaml: valid"), "{out}");
}

#[test]
fn the_contract_check_names_a_required_property_that_is_never_produced() {
    let out = contract(&GOOD.replace("            kind: { const: payment }\n", ""), "");
    assert!(out.contains("rule 'r' never produces 'kind', which its canonical schema 'out.json' requires"), "{out}");
    assert!(out.contains("routes.yaml:"), "{out}");
}

#[test]
fn the_contract_check_refuses_decimals_and_strings_in_integer_fields() {
    let minor = GOOD.replace(
        "cents: { path: $.amount }",
        "cents: { path: $.amount, then: [{ minor_units: { currency: $.currency } }] }",
    );
    let out = contract(&minor, "");
    assert!(out.contains("routes.yaml:13:28: rule 'r', value.cents: produces number but the canonical schema 'out.json' wants integer"), "{out}");
    let lookup =
        GOOD.replace("cents: { path: $.amount }", "cents: { path: $.kind, then: [{ lookup: { table: { a: one } } }] }");
    let out = contract(&lookup, "");
    assert!(out.contains("value.cents: produces string but the canonical schema 'out.json' wants integer"), "{out}");
    let wrong_source = GOOD.replace("cents: { path: $.amount }", "cents: { path: $.currency }");
    let out = contract(&wrong_source, "");
    assert!(out.contains("value.cents: produces string"), "{out}");
}

/// A `$ref` to the schema's own `$defs`, written deep inside it, is followed as one at its
/// root is: before, the check lost the document there and let a string into an integer.
#[test]
fn the_contract_check_follows_refs_to_the_schemas_own_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "in.json",
        r##"{"type": "object", "required": ["id", "amount"], "$defs": {"text": {"type": "string"}},
            "properties": {"id": {"type": "string"}, "amount": {"$ref": "#/$defs/text"}}}"##,
    );
    write(
        "out.json",
        r##"{"type": "object", "additionalProperties": false, "required": ["id", "cents"],
            "$defs": {"cents": {"type": "integer"}},
            "properties": {"id": {"type": "string"}, "cents": {"$ref": "#/$defs/cents"}}}"##,
    );
    let routes = "sources:
  - name: s
    path: /hooks/s
    verify: { kind: none }
    schema: in.json
    rules:
      - name: r
        emit: { topic: t, schema: out.json, value: { id: { path: $.id }, cents: { path: $.amount } } }
";
    write("routes.yaml", routes);
    let out = switchyard(&["validate"], dir.path(), &[]);
    assert_says(
        &text(&out),
        &["routes.yaml:8:89: rule 'r', value.cents: produces string but the canonical schema 'out.json' wants integer"],
    );
    write("routes.yaml", &routes.replace("{ path: $.amount }", "{ path: $.amount, then: [to_number, { round: 0 }] }"));
    let out = switchyard(&["validate"], dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
}

/// `validate --format json` prints one document a script reads, `--format github` the workflow
/// commands that put each finding on its line in a GitHub Actions run; the exit code is the same.
#[test]
fn validate_prints_json_and_github_annotations() {
    let shipped = std::fs::read_to_string(repo().join("routes.yaml")).unwrap();
    let broken =
        shipped.replace("transaction_id: { path: $.transaction_id }", "transaction_id: { path: $.transaction_idd }");
    assert_ne!(broken, shipped);
    let dir = config(&broken);
    let line = broken.lines().position(|l| l.contains("$.transaction_idd")).unwrap() + 1;
    let out = switchyard(&["validate", "--format", "json"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["errors"], 1);
    let error = doc["diagnostics"].as_array().unwrap().iter().find(|d| d["severity"] == "error").unwrap();
    assert_eq!((error["file"].as_str(), error["line"].as_u64()), (Some("routes.yaml"), Some(line as u64)));
    assert!(error["message"].as_str().unwrap().contains("did you mean 'transaction_id'?"), "{doc}");

    let out = switchyard(&["validate", "--format", "github"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_says(
        &printed,
        &[
            &format!(
                "::error file=routes.yaml,line={line},col=37::dispatch rule 'mark_order_processing', body.transaction_id"
            ),
            "routes.yaml: not valid (1 error, ",
        ],
    );
    let out = switchyard(
        &["validate", "--format", "json"],
        config(&shipped).path(),
        &[("STRIPE_WEBHOOK_SECRET", "whsec_0123456789abcdefghijklmn")],
    );
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((doc["valid"].as_bool(), doc["errors"].as_u64()), (Some(true), Some(0)), "{doc}");
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

/// A schema that is not one (by the 2020-12 meta-schema) or not JSON is refused with the
/// config's line, the place in the schema file, and a misspelt type's name meant.
#[test]
fn a_broken_schema_is_named_with_the_place_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("in.json", r#"{"type": "object", "properties": {"id": {"type": "strin"}}}"#);
    write(
        "routes.yaml",
        "sources:\n  - name: s\n    path: /hooks/s\n    verify: { kind: none }\n    schema: in.json\n",
    );
    let out = switchyard(&["validate"], dir.path(), &[]);
    assert_says(
        &text(&out),
        &[
            "routes.yaml:5:13: schema './in.json' is invalid at /properties/id/type: \"strin\" is not valid",
            "; did you mean \"string\"?",
        ],
    );
    write("in.json", r#"{"type": "object","#);
    let out = switchyard(&["validate"], dir.path(), &[]);
    assert_says(&text(&out), &["routes.yaml:5:13: schema './in.json' is not valid JSON: EOF while parsing"]);
}

/// A canonical `minItems` is proved by the inbound schema's only where it surely holds: a `then`
/// counts for the event types the rule takes, each type a case of its own. Before, a `then`
/// counted for a rule taking any type (a payload of another type gave a 500), and a rule taking
/// two types, each with its `then`, was refused.
#[test]
fn a_canonical_min_items_is_proved_type_by_type() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    let then = r#"{"required": ["items"], "properties": {"items": {"minItems": 1}}}"#;
    let when = |t: &str| {
        format!(r#"{{"if": {{"properties": {{"type": {{"const": "{t}"}}}}, "required": ["type"]}}, "then": {then}}}"#)
    };
    write(
        "in.json",
        &format!(
            r#"{{"type": "object", "required": ["type"], "allOf": [{}, {}],
                "properties": {{"type": {{"type": "string"}}, "items": {{"type": "array", "items": {{"type": "object"}}}}}}}}"#,
            when("a"),
            when("b")
        ),
    );
    write(
        "out.json",
        r#"{"type": "object", "required": ["lines"], "properties": {"lines": {"type": "array", "minItems": 1}}}"#,
    );
    let routes = |when: &str| {
        format!(
            "sources:
  - name: s
    path: /hooks/s
    verify: {{ kind: none }}
    schema: in.json
    event_type: $.type
    rules:
      - name: r
        when: {{ event_type: {when} }}
        emit: {{ topic: t, schema: out.json, value: {{ lines: {{ each: \"$.items[*]\", object: {{ n: {{ const: 1 }} }} }} }} }}
"
        )
    };
    for (when, valid) in [("[a, b]", true), ("a", true), ("[a, other]", false)] {
        write("routes.yaml", &routes(when));
        let out = switchyard(&["validate"], dir.path(), &[]);
        assert_eq!(out.status.success(), valid, "{when}: {}", text(&out));
        if !valid {
            assert_says(
                &text(&out),
                &[
                    "routes.yaml:10:61: rule 'r', value.lines: 'out.json' wants at least 1 item(s), but $.items may hold fewer in payloads valid for 'in.json'",
                ],
            );
        }
    }
    // Without a filter on the type, a payload of type `other` with `"items": []` (a 500 at run
    // time) is valid for the inbound schema: refused.
    write("routes.yaml", &routes("[a, b]").replace("        when: { event_type: [a, b] }\n", ""));
    let out = switchyard(&["validate"], dir.path(), &[]);
    assert_says(&text(&out), &["routes.yaml:9:61: rule 'r', value.lines: 'out.json' wants at least 1 item(s)"]);
}

#[test]
fn the_contract_check_refuses_paths_the_inbound_schema_does_not_allow_and_wrong_constants() {
    let out = contract(&GOOD.replace("id: { path: $.id }", "id: { path: $.identifier }"), "");
    assert!(
        out.contains(
            "routes.yaml:12:25: rule 'r', value.id: $.identifier cannot exist in payloads valid for 'in.json'"
        ),
        "{out}"
    );
    let out = contract(&GOOD.replace("kind: { const: payment }", "kind: { const: refund }"), "");
    assert!(
        out.contains("value.kind: the constant \"refund\" is not the \"payment\" that 'out.json' requires"),
        "{out}"
    );
    let out = contract(&format!("{GOOD}            extra: {{ const: x }}\n"), "");
    assert!(out.contains("value.extra: 'extra' is not a property of the canonical schema 'out.json'"), "{out}");
}

/// A `for_each` rule reads each selected value as `$`: its paths are checked against the
/// schema of those values, found by walking the batch's schema along the `for_each` path.
#[test]
fn the_contract_check_follows_a_batch_into_the_schema_of_its_values() {
    let batch = |for_each: &str, value: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("batch.json"),
            r#"{"type": "object", "additionalProperties": false,
                "properties": {"items": {"type": "array", "items": {"$ref": "item.json"}}}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("item.json"),
            r#"{"type": "object", "additionalProperties": false, "required": ["id", "amount"],
                "properties": {"id": {"type": "string"}, "amount": {"type": "integer"}}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("out.json"),
            r#"{"type": "object", "required": ["id", "cents"],
                "properties": {"id": {"type": "string"}, "cents": {"type": "integer"}}}"#,
        )
        .unwrap();
        let yaml = format!(
            "sources:
  - name: s
    path: /hooks/s
    verify: {{ kind: none }}
    schema: batch.json
    rules:
      - name: r
        for_each: {for_each}
        emit:
          topic: t
          schema: out.json
          value:
{value}"
        );
        std::fs::write(dir.path().join("routes.yaml"), yaml).unwrap();
        text(&switchyard(&["validate"], dir.path(), &[]))
    };
    let good = "            id: { path: $.id }\n            cents: { path: $.amount }\n";
    let out = batch("$.items[*]", good);
    assert!(out.contains("routes.yaml: valid"), "{out}");
    let out = batch("$.items[*]", &good.replace("$.amount", "$.amount_total"));
    assert_says(
        &out,
        &[
            "routes.yaml:14:28: rule 'r', value.cents: $.amount_total cannot exist in the values $.items[*] selects in payloads valid for 'batch.json'",
        ],
    );
    let out = batch("$.items[*]", &good.replace("cents: { path: $.amount }", "cents: { path: $.id }"));
    assert_says(&out, &["value.cents: produces string but the canonical schema 'out.json' wants integer"]);
    let out = batch("$.entries[*]", good);
    assert_says(
        &out,
        &[
            "routes.yaml:8:19: rule 'r', for_each: $.entries[*] cannot exist in payloads valid for 'batch.json': 'entries' is not one of the properties the schema allows there",
        ],
    );
}

#[test]
fn dispatch_variables_are_checked_against_what_is_published_on_the_topic() {
    let dispatch =
        format!("{ONE_DISPATCH_RULE}        request: {{ method: POST, url: \"http://orders/x/{{order}}\" }}\n");
    let dispatch = dispatch.as_str();
    let out = contract(GOOD, dispatch);
    assert!(
        out.contains("template variable '{order}' is not a property of the canonical event in 'out.json'\n"),
        "{out}"
    );
    let out = contract(GOOD, &dispatch.replace("{order}", "{idd}"));
    assert!(
        out.contains(
            "template variable '{idd}' is not a property of the canonical event in 'out.json': did you mean '{id}'?"
        ),
        "{out}"
    );
    let out = contract(GOOD, &dispatch.replace("{order}", "{id}"));
    assert!(out.contains("routes.yaml: valid"), "{out}");
}

/// A path that cannot exist in what a rule reads (a closed schema does not allow it) is refused
/// with its place and the property meant: the dispatcher's every call would fail (dead letters),
/// or the rule never hold. In an open schema a misspelt path is warned about.
#[test]
fn paths_that_cannot_exist_are_refused_with_the_property_meant() {
    let dispatch = format!(
        "{ONE_DISPATCH_RULE}        when: {{ all: [{{ path: $.kindd, equals: payment }}] }}
        request: {{ method: POST, url: \"http://orders/x/{{id}}\", body: {{ amount: {{ path: $.cent }} }} }}
"
    );
    let dispatch = dispatch.as_str();
    let out = contract(GOOD, dispatch);
    assert_says(
        &out,
        &[
            "routes.yaml:21:31: dispatch rule 'call', when: $.kindd cannot exist in events valid for 'out.json': 'kindd' is not one of the properties the schema allows there; did you mean 'kind'?",
            "routes.yaml:22:87: dispatch rule 'call', body.amount: $.cent cannot exist in events valid for 'out.json': 'cent' is not one of the properties the schema allows there; did you mean 'cents'?",
        ],
    );
    let fixed = dispatch.replace("$.kindd", "$.kind").replace("$.cent ", "$.cents ");
    assert!(contract(GOOD, &fixed).contains("routes.yaml: valid"), "{}", contract(GOOD, &fixed));
    // The dispatcher's own schema, open: only a warning, with the name meant.
    let open =
        fixed.replace("    group: g\n", "    group: g\n    schema: refund.json\n").replace("$.cents ", "$.refundd ");
    let out = contract(GOOD, &open);
    assert_says(
        &out,
        &[
            "warning: dispatch rule 'call', body.amount: $.refundd: 'refundd' is not declared in events valid for 'refund.json'; did you mean 'refunded'?",
            "routes.yaml: valid",
        ],
    );
    // A Kafka header no rule publishing to the topic sets (but `traceparent`, which every event has).
    let headers = fixed.replace(
        "body: { amount:",
        "headers: { X-Event: \"{header.event}\", traceparent: \"{header.traceparent}\" }, body: { amount:",
    );
    let out = contract(GOOD, &headers);
    assert_says(
        &out,
        &[
            "routes.yaml:22:83: warning: no rule publishing to this topic sets Kafka header 'event' (they set none): their events would be dead-lettered",
            "routes.yaml: valid",
        ],
    );
    assert_eq!(out.matches("sets Kafka header").count(), 1, "{out}");
    // A source's filter, against its closed inbound schema.
    let filtered = format!(
        "{GOOD}      - name: r2
        when: {{ all: [{{ path: $.curency, equals: EUR }}] }}
        emit: {{ topic: t, schema: out.json, headers: {{ h: {{ path: $.identifier }} }}, value: {{ id: {{ path: $.id }}, cents: {{ path: $.amount }}, kind: {{ const: payment }} }} }}
"
    );
    assert_says(
        &contract(&filtered, ""),
        &[
            "routes.yaml:16:31: rule 'r2', when: $.curency cannot exist in payloads valid for 'in.json': 'curency' is not one of the properties the schema allows there; did you mean 'currency'?",
            "rule 'r2', headers.h: $.identifier cannot exist in payloads valid for 'in.json'",
        ],
    );
}

#[test]
fn dispatch_variables_may_be_properties_of_any_event_published_on_the_topic() {
    // Two rules publish two kinds of event, with their own schemas, to one topic.
    let refunds = format!(
        "{GOOD}      - name: r2
        emit:
          topic: t
          schema: refund.json
          value:
            id: {{ path: $.id }}
            refunded: {{ path: $.amount }}
            kind: {{ const: refund }}
"
    );
    let dispatch = "dispatch:
  - name: d
    topic: t
    group: g
    rules:
      - name: paid
        when: { all: [{ path: $.kind, equals: payment }] }
        request: { method: POST, url: \"http://orders/x/{id}/{cents}\" }
      - name: refunded
        when: { all: [{ path: $.kind, equals: refund }] }
        request: { method: POST, url: \"http://orders/x/{id}/{refunded}\" }
";
    let out = contract(&refunds, dispatch);
    assert!(out.contains("routes.yaml: valid"), "{out}");
    let out = contract(&refunds, &dispatch.replace("{refunded}", "{nope}"));
    assert!(
        out.contains(
            "template variable '{nope}' is not a property of any canonical event published to the topic ('out.json', 'refund.json')"
        ),
        "{out}"
    );
}

#[test]
fn a_rules_answer_and_templates_are_held_to_the_inbound_schema() {
    let answer = format!("{GOOD}        answer: {{ body: {{ got: {{ path: $.amont }} }}, status: 200 }}\n");
    assert_says(
        &contract(&answer, ""),
        &[
            "rule 'r', answer, body.got: $.amont cannot exist in payloads valid for 'in.json': 'amont' is not one of the properties the schema allows there; did you mean 'amount'?",
        ],
    );
    let text = format!("{GOOD}        answer: {{ text: {{ template: \"paid {{$.currency}}\" }} }}\n");
    assert!(contract(&text, "").contains("routes.yaml: valid"), "{}", contract(&text, ""));
    let misspelt = text.replace("$.currency", "$.curency");
    assert_says(
        &contract(&misspelt, ""),
        &["rule 'r', answer, text: $.curency cannot exist in payloads valid for 'in.json'"],
    );
    // A template's paths in the event's value, as its `path`s are.
    let templated =
        GOOD.replace("            kind:", "            label: { template: \"order {$.idd}\" }\n            kind:");
    assert_says(
        &contract(&templated, ""),
        &[
            "rule 'r', value.label: $.idd cannot exist in payloads valid for 'in.json': 'idd' is not one of the properties the schema allows there; did you mean 'id'?",
        ],
    );
}

/// `switchyard validate` in `dir` of two kinds of event published to topic `t` (`paid.json`'s
/// `payment_successful` with a `transaction_id`, `failed.json`'s `payment_failed` with a
/// `reason`; the schemas are the test's) and a dispatcher of `t` with `dispatch_rules`.
fn two_kinds_on_one_topic(dir: &Path, dispatch_rules: &str) -> String {
    let emit = |name: &str, schema: &str, event_type: &str, own: &str| {
        format!(
            "      - name: {name}
        when: {{ event_type: {event_type} }}
        emit: {{ topic: t, schema: {schema}, value: {{ event_type: {{ const: {event_type} }}, id: {{ path: $.id }}, {own}: {{ path: $.x }} }} }}
"
        )
    };
    let yaml = format!(
        "sources:
  - name: s
    path: /hooks/s
    verify: {{ kind: none }}
    schema: in.json
    event_type: $.type
    rules:
{}{}dispatch:
  - name: d
    topic: t
    group: g
    rules:
{dispatch_rules}",
        emit("paid", "paid.json", "payment_successful", "transaction_id"),
        emit("failed", "failed.json", "payment_failed", "reason"),
    );
    std::fs::write(dir.join("routes.yaml"), yaml).unwrap();
    text(&switchyard(&["validate"], dir, &[]))
}

#[test]
fn a_dispatch_rule_taking_one_event_type_is_held_to_that_events_schema() {
    // Two kinds of event on one topic, each with its own closed schema naming its event_type.
    let dir = tempfile::tempdir().unwrap();
    let closed = |event_type: &str, own: &str| {
        format!(
            r#"{{"type": "object", "additionalProperties": false, "required": ["event_type", "id", "{own}"],
                "properties": {{"event_type": {{"const": "{event_type}"}}, "id": {{"type": "string"}}, "{own}": {{"type": "string"}}}}}}"#
        )
    };
    std::fs::write(dir.path().join("paid.json"), closed("payment_successful", "transaction_id")).unwrap();
    std::fs::write(dir.path().join("failed.json"), closed("payment_failed", "reason")).unwrap();
    std::fs::write(dir.path().join("in.json"), r#"{"type": "object"}"#).unwrap();
    let routes = |dispatch_rules: &str| two_kinds_on_one_topic(dir.path(), dispatch_rules);
    let good = "      - name: on_paid
        when: { event_type: payment_successful }
        request: { method: POST, url: \"http://orders/{id}\", body: { tx: { path: $.transaction_id } } }
      - name: on_failed
        when: { event_type: [payment_failed] }
        request: { method: POST, url: \"http://orders/{id}/{reason}\", body: { why: { path: $.reason } } }
";
    let out = routes(good);
    assert!(out.contains("routes.yaml: valid"), "{out}");
    // Each rule reads what only the other kind of event has: every call it makes would fail.
    let crossed = good.replace("$.transaction_id", "$.reason").replace("/{reason}", "/{transaction_id}");
    let out = routes(&crossed);
    assert_says(
        &out,
        &[
            "dispatch rule 'on_paid', body.tx: $.reason cannot exist in events valid for 'paid.json': 'reason' is not one of the properties the schema allows there",
            "template variable '{transaction_id}' is not a property of the canonical event in 'failed.json'",
        ],
    );
    // A rule taking both kinds is held to neither alone: a path in one of them is given the benefit of the doubt.
    let both = good.replace("event_type: [payment_failed]", "event_type: [payment_failed, payment_successful]");
    let out = routes(&both);
    assert!(out.contains("routes.yaml: valid"), "{out}");
    // But a path neither kind of event can have is an error.
    let neither = both.replace("why: { path: $.reason }", "why: { path: $.resaon }");
    assert_says(
        &routes(&neither),
        &[
            "dispatch rule 'on_failed', body.why: $.resaon cannot exist in events valid for 'paid.json' or 'failed.json': none of the schemas allows a property 'resaon' there; did you mean 'reason'?",
        ],
    );
    // An open schema among them may hold anything: the path is then only likely misspelt.
    let open = r#"{"type": "object", "properties": {"event_type": {"const": "payment_failed"}, "reason": {"type": "string"}}}"#;
    std::fs::write(dir.path().join("failed.json"), open).unwrap();
    let out = routes(&neither);
    assert!(out.contains("routes.yaml: valid"), "{out}");
    let warning = "warning: dispatch rule 'on_failed', body.why: $.resaon: 'resaon' is not declared in events valid for 'paid.json' or 'failed.json'; did you mean 'reason'?";
    assert!(out.contains(warning), "{out}");
}

/// Canonical schemas that name their event types through a shared envelope (`$ref`, `allOf`,
/// `oneOf`) are read as well as flat ones: a dispatch rule is held to the kind it takes, and a
/// type none of them allows is warned about.
#[test]
fn a_dispatch_rule_reads_the_event_types_of_composed_canonical_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "envelope.json",
        r#"{"type": "object", "required": ["event_type", "id"],
            "properties": {"event_type": {"type": "string"}, "id": {"type": "string"}}}"#,
    );
    // The envelope and the kind's own members, both closed by naming every member.
    write(
        "paid.json",
        r##"{"allOf": [{"$ref": "envelope.json"},
                       {"$ref": "#/$defs/paid"}],
             "$defs": {"paid": {"type": "object", "additionalProperties": false, "required": ["transaction_id"],
                                "properties": {"event_type": {"const": "payment_successful"}, "id": true,
                                               "transaction_id": {"type": "string"}}}}}"##,
    );
    write(
        "failed.json",
        r#"{"allOf": [{"$ref": "envelope.json"},
                      {"type": "object", "additionalProperties": false, "required": ["reason"],
                       "properties": {"id": true, "reason": {"type": "string"},
                                      "event_type": {"oneOf": [{"const": "payment_failed"}, {"const": "payment_declined"}]}}},
                      {"oneOf": [{"properties": {"event_type": {"const": "payment_failed"}}},
                                 {"properties": {"event_type": {"enum": ["payment_declined"]}}}]}]}"#,
    );
    write("in.json", r#"{"type": "object"}"#);
    let routes = |dispatch_rules: &str| two_kinds_on_one_topic(dir.path(), dispatch_rules);
    let good = "      - name: on_paid
        when: { event_type: payment_successful }
        request: { method: POST, url: \"http://orders/{id}\", body: { tx: { path: $.transaction_id } } }
      - name: on_failed
        when: { event_type: [payment_failed, payment_declined] }
        request: { method: POST, url: \"http://orders/{id}\", body: { why: { path: $.reason } } }
";
    let out = routes(good);
    // The one warning: the source takes unsigned webhooks.
    assert!(out.contains("routes.yaml: valid") && out.matches("warning").count() == 1, "{out}");
    // Each rule is held to the schema of the kind it takes.
    let crossed = good.replace("$.transaction_id", "$.reason");
    assert_says(
        &routes(&crossed),
        &[
            "dispatch rule 'on_paid', body.tx: $.reason cannot exist in events valid for 'paid.json': 'reason' is not one of the properties the schema allows there",
        ],
    );
    // A type no schema on the topic allows.
    let typo = good.replace("event_type: payment_successful }", "event_type: payment_succesful }");
    let out = routes(&typo);
    assert_says(
        &out,
        &[
            "warning: this rule would never call: no event on its topic has event_type 'payment_succesful' (paid.json, failed.json allow only payment_declined, payment_failed, payment_successful)",
        ],
    );
    // An `anyOf` branch that leaves the type open: any type may come, nothing is warned about.
    write(
        "failed.json",
        r#"{"allOf": [{"$ref": "envelope.json"},
                      {"anyOf": [{"properties": {"event_type": {"const": "payment_failed"}}}, {"required": ["reason"]}]}]}"#,
    );
    let out = routes(&typo);
    assert!(out.contains("routes.yaml: valid") && !out.contains("would never call"), "{out}");
}

#[test]
fn the_committed_routes_schema_matches_the_types() {
    let out = switchyard(&["config-schema"], &repo(), &[]);
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    let committed = std::fs::read_to_string(repo().join("schemas/routes.schema.json")).unwrap();
    assert!(
        generated.trim() == committed.trim(),
        "schemas/routes.schema.json is stale: run `cargo run -q -- config-schema > schemas/routes.schema.json`"
    );
    let routes = std::fs::read_to_string(repo().join("routes.yaml")).unwrap();
    assert!(routes.starts_with("# yaml-language-server: $schema=./schemas/routes.schema.json"));
}

#[test]
fn the_readme_documents_every_routes_yaml_key() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("schemas/routes.schema.json")).unwrap()).unwrap();
    let mut names: Vec<String> = schema["properties"].as_object().unwrap().keys().cloned().collect();
    for def in schema["$defs"].as_object().unwrap().values() {
        let variants = def.get("oneOf").or(def.get("anyOf")).and_then(|v| v.as_array()).cloned().unwrap_or_default();
        for node in std::iter::once(def).chain(variants.iter()) {
            if let Some(props) = node.get("properties").and_then(|p| p.as_object()) {
                names.extend(props.keys().cloned());
            }
            if let Some(c) = node.get("const").and_then(|c| c.as_str()) {
                names.push(c.to_owned());
            }
            for e in node.get("enum").and_then(|e| e.as_array()).into_iter().flatten() {
                names.extend(e.as_str().map(str::to_owned));
            }
        }
    }
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let documented = |name: &str| {
        readme.match_indices(name).any(|(i, _)| {
            let before = readme[..i].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            let after = readme[i + name.len()..].chars().next().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            before && after
        })
    };
    let missing: Vec<&String> = names.iter().filter(|n| !documented(n)).collect();
    assert!(missing.is_empty(), "README.md does not document these routes.yaml keys: {missing:?}");
}

#[test]
fn dispatch_hosts_must_be_on_the_allow_list_when_one_is_given() {
    let dispatch = "dispatch:
  - name: d
    topic: t
    group: g
    allowed_hosts: [orders.internal]
    rules:
      - name: call
        request: { method: POST, url: \"${ORDERS_URL}/x/{order_id}\" }
";
    let ok = config(&format!("{SOURCE}{dispatch}"));
    let out = switchyard(&["validate"], ok.path(), &[("S", "x"), ("ORDERS_URL", "http://orders.internal:8080")]);
    assert!(out.status.success(), "{}", text(&out));
    let out = switchyard(&["validate"], ok.path(), &[("S", "x"), ("ORDERS_URL", "http://169.254.169.254")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("url host '169.254.169.254' is not in this dispatcher's allowed_hosts (orders.internal)"),
        "{}",
        text(&out)
    );
}

/// A source with a reply to Slack's handshake, and test cases about it.
const REPLYING: &str = "sources:
  - name: s
    path: /hooks/s
    verify: { kind: slack, secrets: [\"${S}\"] }
    schema: min.json
    event_type: $.type
    replies:
      - name: hello
        when: { event_type: url_verification }
        body: { challenge: { path: $.challenge } }
    rules:
      - name: r
        when: { event_type: order }
        emit:
          topic: t
          schema: min.json
          value:
            order_id: { path: $.id }
tests:
  - name: the challenge comes back
    source: s
    body: { type: url_verification, challenge: c-1 }
    expect: { status: replied, reply: { challenge: c-1 } }
  - name: another challenge
    source: s
    body: { type: url_verification, challenge: c-1 }
    expect: { status: replied, reply: { challenge: c-2 } }
  - name: an order is no handshake
    source: s
    body: { type: order, id: \"7\" }
    expect: { status: replied }
";

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

/// A `hmac_sha256` step's secret is checked as a verifier's: from the environment, not empty.
#[test]
fn a_keyed_hash_step_takes_its_secret_from_the_environment() {
    let hashed = |secret: &str| {
        SOURCE.replace(
            "order_id: { path: $.id }",
            &format!("order_id: {{ path: $.id, then: [{{ hmac_sha256: {{ secret: \"{secret}\" }} }}] }}"),
        )
    };
    let out = invalid(&hashed("${EMPTY:-}"));
    assert_says(&out, &["routes.yaml:12:69: the secret of hmac_sha256 is empty: anyone could compute its digests"]);
    let dir = config(&hashed("written-in-the-file-0123456789"));
    let out = switchyard(&["validate", "-c", "routes.yaml"], dir.path(), &[("S", "x")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_says(&text(&out), &["routes.yaml:12:69: warning: this secret is written in the file"]);
}

/// `$$…` reads the payload's root where `$` is a value that a `for_each` or an `each` selected
/// (an envelope's flag, a batch id): in filters, values and `each` alike; the projected parse
/// keeps what it reads, and the contract check looks for it in the payload's schema.
#[test]
fn a_double_dollar_path_reads_the_payload_from_inside_a_batch() {
    let inbound = r#"{"type": "object", "required": ["live", "items"], "additionalProperties": false,
      "properties": {"live": {"type": "boolean"}, "batch": {"type": "string"},
        "items": {"type": "array", "items": {"type": "object", "additionalProperties": false,
          "properties": {"id": {"type": "string"},
            "lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}}}}}}}}}"#;
    let canonical = r#"{"type": "object", "required": ["id", "live", "lines"],
      "properties": {"id": {"type": "string"}, "live": {"type": "boolean"},
        "lines": {"type": "array", "items": {"type": "object", "required": ["sku", "batch"],
          "properties": {"sku": {"type": "string"}, "batch": {"type": "string"}}}}}}"#;
    let routes = |live: &str| {
        format!(
            r#"sources:
  - name: s
    path: /hooks/s
    verify: {{ kind: none }}
    schema: inbound.json
    rules:
      - name: r
        for_each: $.items[*]
        when: {{ all: [{{ path: $$.live, equals: true }}] }}
        emit:
          topic: t
          schema: canonical.json
          value:
            id: {{ path: $.id }}
            live: {{ path: {live} }}
            lines:
              each: $.lines[*]
              object:
                sku: {{ path: $.sku }}
                batch: {{ path: $$.batch, default: none }}
tests:
  - name: each item of a live batch
    source: s
    body: {{ live: true, batch: b1, items: [{{ id: "1", lines: [{{ sku: a }}] }}, {{ id: "2", lines: [] }}] }}
    expect:
      status: accepted
      events:
        - value: {{ id: "1", live: true, lines: [{{ sku: a, batch: b1 }}] }}
        - value: {{ id: "2", live: true, lines: [] }}
  - name: a test batch
    source: s
    body: {{ live: false, items: [{{ id: "3", lines: [{{ sku: c }}] }}] }}
    expect: {{ status: ignored }}
"#
        )
    };
    let write = |yaml: &str| {
        let dir = config(yaml);
        std::fs::write(dir.path().join("canonical.json"), canonical).unwrap();
        std::fs::write(dir.path().join("inbound.json"), inbound).unwrap();
        dir
    };
    let dir = write(&routes("$$.live"));
    let out = switchyard(&["test"], dir.path(), &[]);
    assert!(text(&out).ends_with("2 passed, 0 failed\n"), "{}", text(&out));
    // Looked for in the payload's schema, not in the items'.
    for (live, says) in [
        ("$$.nope", "rule 'r', value.live: $$.nope cannot exist in payloads valid for 'inbound.json'"),
        ("$$.batch", "rule 'r', value.live: produces string but the canonical schema 'canonical.json' wants boolean"),
        ("$.live", "rule 'r', value.live: $.live cannot exist in the values $.items[*] selects"),
    ] {
        let out = switchyard(&["validate", "-c", "routes.yaml"], write(&routes(live)).path(), &[]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert_says(&text(&out), &[says]);
    }
}

/// `body_value` makes the call's body one value: `{ path: $ }` forwards the event as it is (as
/// Benthos' `http_client` does), a path an array; `optional` sends no body when it finds nothing.
/// With `body` too it is refused.
#[test]
fn body_value_sends_the_event_as_it_is() {
    let routes = |extra: &str| {
        format!(
            r#"dispatch:
  - name: d
    topic: t
    group: g
    rules:
      - name: whole
        request: {{ method: POST, url: "http://o/events", body_value: {{ path: $ }}{extra} }}
      - name: items
        request: {{ method: PUT, url: "http://o/items", body_value: {{ path: $.items, optional: true }} }}
tests:
  - name: the event as it is
    topic: t
    body: {{ order_id: "7", items: [a, b], nested: {{ x: 1 }} }}
    expect:
      calls:
        - {{ url: http://o/events, body: {{ order_id: "7", items: [a, b], nested: {{ x: 1 }} }} }}
        - {{ url: http://o/items, body: [a, b] }}
  - name: no items, no body
    topic: t
    body: {{ order_id: "8" }}
    expect:
      calls:
        - {{ url: http://o/events, body: {{ order_id: "8" }} }}
        - {{ url: http://o/items, body: null }}
"#
        )
    };
    let dir = config(&routes(""));
    let out = switchyard(&["test"], dir.path(), &[]);
    assert!(text(&out).ends_with("2 passed, 0 failed\n"), "{}", text(&out));
    let both = config(&routes(", body: { id: { path: $.order_id } }"));
    let out = switchyard(&["validate", "-c", "routes.yaml"], both.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_says(
        &text(&out),
        &[
            "routes.yaml:7:70: dispatch rule 'whole': give body (named properties) or body_value (one value, e.g. { path: $ } for the event as it is), not both",
        ],
    );
}

/// A port something else holds stops `serve` at once, saying how to pick another.
#[test]
fn a_port_in_use_is_named_with_the_way_out() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = crate::common::switchyard_command(&["serve", "--listen", &addr], &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let says = format!("cannot listen on {addr}: Address already in use");
    assert!(text(&out).contains(&says) && text(&out).contains("--listen or SWITCHYARD_LISTEN"), "{}", text(&out));
}

#[test]
fn a_canonical_if_then_else_binds_only_the_events_whose_constants_prove_or_rule_out_its_if() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.json"),
        r#"{"type": "object", "properties": {"id": {"type": "string"}, "s": {"type": "string"}, "kind": {"type": "string"}}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("out.json"),
        r#"{"type": "object", "required": ["kind", "id"],
            "properties": {"kind": {"enum": ["payment", "refund"]}, "id": {"type": "string"},
                           "refund_id": {"type": "string"}, "amount": {"type": ["integer", "string"]}},
            "allOf": [{"if": {"properties": {"kind": {"const": "refund"}}},
                       "then": {"required": ["refund_id"], "properties": {"amount": {"type": "integer"}}},
                       "else": {"required": ["amount"], "properties": {"amount": {"type": "string"}}}}]}"#,
    )
    .unwrap();
    let validate_value = |value: &str| {
        let rule = format!("      - name: r\n        emit: {{ topic: t, schema: out.json, value: {{ {value} }} }}\n");
        validate_source(dir.path(), &rule)
    };
    let validate = |kind: &str| validate_value(&format!("kind: {kind}, id: {{ path: $.id }}, amount: {{ path: $.s }}"));
    // A payment is not a refund: what the schema asks of refunds does not bind it.
    let out = validate("{ const: payment }");
    assert!(out.contains("routes.yaml: valid"), "{out}");
    // A kind read from the webhook may be either: the benefit of the doubt.
    let out = validate("{ path: $.kind }");
    assert!(out.contains("routes.yaml: valid"), "{out}");
    // A constant the enum does not hold would break every event.
    assert_says(
        &validate("{ const: refnd }"),
        &[
            r#"rule 'r', value.kind: the constant "refnd" is not one of the values 'out.json' allows ("payment", "refund"); did you mean "refund"?"#,
        ],
    );
    // And so would a value a lookup gives.
    assert_says(
        &validate("{ path: $.kind, then: [{ lookup: { table: { a: payment, b: refnd } } }] }"),
        &[
            r#"rule 'r', value.kind: the lookup's "refnd" (for 'b') is not one of the values 'out.json' allows ("payment", "refund"); did you mean "refund"?"#,
        ],
    );
    // A refund is bound by all of it.
    assert_says(
        &validate("{ const: refund }"),
        &[
            "rule 'r' never produces 'refund_id', which its canonical schema 'out.json' requires",
            "rule 'r', value.amount: produces string but the canonical schema 'out.json' wants integer",
        ],
    );
    // And what is not a refund by the `else`: a payment needs an amount, and a string one.
    assert_says(
        &validate_value("kind: { const: payment }, id: { path: $.id }"),
        &["rule 'r' never produces 'amount', which its canonical schema 'out.json' requires"],
    );
    assert_says(
        &validate_value("kind: { const: payment }, id: { path: $.id }, amount: { const: 5 }"),
        &["rule 'r', value.amount: produces integer but the canonical schema 'out.json' wants string"],
    );
    // Neither binds a refund's, nor an event whose kind is read from the webhook.
    let out =
        validate_value("kind: { const: refund }, id: { path: $.id }, refund_id: { path: $.id }, amount: { const: 5 }");
    assert!(out.contains("routes.yaml: valid"), "{out}");
    let out = validate_value("kind: { path: $.kind }, id: { path: $.id }, amount: { const: 5 }");
    assert!(out.contains("routes.yaml: valid"), "{out}");
}

/// A canonical `dependentRequired` (draft 7: `dependencies` with a list) binds a rule that
/// produces the property: it must produce the ones required with it.
#[test]
fn a_canonical_dependent_required_binds_a_rule_producing_the_property() {
    let dir = tempfile::tempdir().unwrap();
    let props = r#""type": "object", "properties": {"id": {"type": "string"}, "refund_id": {"type": "string"}, "reason": {"type": "string"}}"#;
    let files = [
        ("in.json", r#"{"type": "object", "properties": {"id": {"type": "string"}}}"#.to_owned()),
        ("2020.json", format!(r#"{{{props}, "dependentRequired": {{"refund_id": ["reason"]}}}}"#)),
        // The schema form of `dependencies` is another keyword's (`dependentSchemas`).
        (
            "draft7.json",
            format!(r#"{{{props}, "dependencies": {{"refund_id": ["reason"], "id": {{"required": ["x"]}}}}}}"#),
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let validate = |schema: &str, value: &str| {
        let rule = format!("      - name: r\n        emit: {{ topic: t, schema: {schema}, value: {{ {value} }} }}\n");
        validate_source(dir.path(), &rule)
    };
    for schema in ["2020.json", "draft7.json"] {
        let out = validate(schema, "id: { path: $.id }");
        assert!(out.contains("routes.yaml: valid"), "{out}");
        let out = validate(schema, "id: { path: $.id }, refund_id: { path: $.id }, reason: { const: duplicate }");
        assert!(out.contains("routes.yaml: valid"), "{out}");
        assert_says(
            &validate(schema, "id: { path: $.id }, refund_id: { path: $.id }"),
            &[&format!(
                "rule 'r' produces 'refund_id' but never 'reason', which its canonical schema '{schema}' requires wherever 'refund_id' is (dependentRequired)"
            )],
        );
    }
}

/// `unevaluatedProperties: false`, the way draft 2020-12 closes a schema composed with `allOf`
/// and `$ref`, refuses a name no part of the schema declares: produced into a canonical event,
/// or read from the inbound payload.
#[test]
fn unevaluated_properties_false_refuses_what_no_part_of_the_schema_declares() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "envelope.json",
            r#"{"type": "object", "properties": {"id": {"type": "string"}, "kind": {"type": "string"}}}"#,
        ),
        (
            "in.json",
            r#"{"allOf": [{"$ref": "envelope.json"}], "properties": {"amount": {"type": "integer"}},
                "unevaluatedProperties": false}"#,
        ),
        (
            "out.json",
            r#"{"allOf": [{"$ref": "envelope.json"}], "properties": {"cents": {"type": "integer"}},
                "required": ["id"], "unevaluatedProperties": false}"#,
        ),
        // A part that may take names it does not list (a pattern): the benefit of the doubt.
        (
            "patterned.json",
            r#"{"allOf": [{"$ref": "envelope.json"}, {"patternProperties": {"^x_": {}}}], "unevaluatedProperties": false}"#,
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let validate = |schema: &str, value: &str| {
        let rule = format!("      - name: r\n        emit: {{ topic: t, schema: {schema}, value: {{ {value} }} }}\n");
        validate_source(dir.path(), &rule)
    };
    // Names from the envelope and from the schema's own properties are all evaluated.
    let out = validate("out.json", "id: { path: $.id }, kind: { path: $.kind }, cents: { path: $.amount }");
    assert!(out.contains("routes.yaml: valid"), "{out}");
    assert_says(
        &validate("out.json", "id: { path: $.id }, cents: { path: $.amount }, note: { const: a }"),
        &[
            "rule 'r', value.note: 'note' is not a property of the canonical schema 'out.json' (its 'unevaluatedProperties: false' refuses what no part of it declares)",
        ],
    );
    let out = validate("patterned.json", "id: { path: $.id }, x_note: { const: a }");
    assert!(out.contains("routes.yaml: valid"), "{out}");
    // In the inbound payload, a name no part declares cannot be there.
    assert_says(
        &validate("out.json", "id: { path: $.id }, cents: { path: $.amonut }"),
        &[
            "rule 'r', value.cents: $.amonut cannot exist in payloads valid for 'in.json': 'amonut' is not one of the properties the schema allows there; did you mean 'amount'?",
        ],
    );
}

/// A constant (or a lookup's value) the canonical schema's value keywords refuse (`pattern`,
/// `minLength`, `format`, `minimum`, …) would break every event: an error, worded as the
/// validator the pipeline runs words it.
#[test]
fn a_constant_the_canonical_value_keywords_refuse_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.json"), r#"{"type": "object", "properties": {"x": {"type": "string"}}}"#)
        .unwrap();
    std::fs::write(
        dir.path().join("out.json"),
        r#"{"type": "object", "properties": {
              "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}, "amount": {"type": "number", "minimum": 0},
              "at": {"type": "string", "format": "date-time"}, "country": {"type": "string", "minLength": 2}}}"#,
    )
    .unwrap();
    let validate = |value: &str| {
        let rule = format!("      - name: r\n        emit: {{ topic: t, schema: out.json, value: {{ {value} }} }}\n");
        validate_source(dir.path(), &rule)
    };
    let good = "currency: { const: USD }, amount: { const: 5 }, at: { const: '2023-11-06T14:30:00Z' }, \
                country: { path: $.x, then: [{ lookup: { table: { a: US, b: GB } } }] }";
    let out = validate(good);
    assert!(out.contains("routes.yaml: valid"), "{out}");
    let bad = good
        .replace("USD", "usd")
        .replace("5 }", "-1 }")
        .replace("'2023-11-06T14:30:00Z'", "yesterday")
        .replace("GB", "G");
    let out = validate(&bad);
    assert_says(
        &out,
        &[
            r#"rule 'r', value.currency: the constant "usd" breaks 'out.json': "usd" does not match "^[A-Z]{3}$""#,
            "rule 'r', value.amount: the constant -1 breaks 'out.json': -1 is less than the minimum of 0",
            r#"rule 'r', value.at: the constant "yesterday" breaks 'out.json': "yesterday" is not a "date-time""#,
            r#"rule 'r', value.country: the lookup's "G" (for 'b') breaks 'out.json': "G" is shorter than 2 characters"#,
        ],
    );
    // A default, produced as written for every webhook that lacks the value.
    assert_says(
        &validate("currency: { path: $.x, default: usd }"),
        &[r#"rule 'r', value.currency: the default "usd" breaks 'out.json': "usd" does not match "^[A-Z]{3}$""#],
    );
    let out = validate("currency: { path: $.x, default: USD }");
    assert!(out.contains("routes.yaml: valid"), "{out}");
}

/// A condition testing for a value the schema never allows there (its `const` or `enum`, for
/// the event types the rule takes), or for a type it never allows, is decided before any event
/// comes: a warning, with the value meant.
#[test]
fn a_condition_the_schema_decides_before_any_event_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.json"),
        r#"{"type": "object", "required": ["amount", "type"],
            "properties": {"type": {"type": "string"}, "status": {"type": "string"}, "amount": {"type": "integer"}},
            "if": {"properties": {"type": {"const": "checkout"}}},
            "then": {"properties": {"status": {"enum": ["paid", "unpaid"]}}}}"#,
    )
    .unwrap();
    let validate = |when: &str| {
        let rule = format!(
            "      - name: r\n        when: {when}\n        emit: {{ topic: t, schema: out.json, value: {{ s: {{ path: $.status }} }} }}\n"
        );
        std::fs::write(dir.path().join("out.json"), r#"{"type": "object"}"#).unwrap();
        validate_source(dir.path(), &rule)
    };
    let says = |value: &str, near: &str| {
        format!(
            "warning: rule 'r', when: $.status is never \"{value}\" in payloads valid for 'in.json' (the schema allows only \"paid\", \"unpaid\"){near}"
        )
    };
    let checkout = |test: &str| validate(&format!("{{ event_type: checkout, all: [{{ path: $.status, {test} }}] }}"));
    let out = checkout("equals: unpaidd");
    assert_says(&out, &[&says("unpaidd", "; did you mean \"unpaid\"?")]);
    let out = checkout("in: [paid, refunded]");
    assert_says(&out, &[&says("refunded", "")]);
    assert!(!out.contains("\"paid\" in payloads"), "{out}");
    let out = checkout("not_in: [unpaid]");
    assert!(!out.contains("is never"), "{out}");
    // Another event type, or any: the enum may not bind the payload, nothing is said.
    let out = validate("{ all: [{ path: $.status, equals: unpaidd }] }");
    assert!(out.contains("routes.yaml: valid") && !out.contains("is never"), "{out}");
    // A value or a test of a type the schema never allows there.
    let any = |test: &str| validate(&format!("{{ all: [{test}] }}"));
    assert_says(
        &any(r#"{ path: $.amount, equals: "100" }"#),
        &[
            r#"warning: rule 'r', when: $.amount is never "100" in payloads valid for 'in.json' (the schema allows only integer there)"#,
        ],
    );
    assert_says(
        &any("{ path: $.status, gte: 5 }"),
        &[
            "warning: rule 'r', when: $.status is never a number in payloads valid for 'in.json' (the schema allows only string there): the test never holds",
        ],
    );
    assert_says(
        &any(r#"{ path: $.amount, starts_with: "1" }"#),
        &[
            "warning: rule 'r', when: $.amount is never a string in payloads valid for 'in.json' (the schema allows only integer there): the test never holds",
        ],
    );
    // A value required and never null is always there.
    assert_says(
        &any("{ path: $.amount, exists: false }"),
        &[
            "warning: rule 'r', when: $.amount is always there in payloads valid for 'in.json' (required, never null): the test never holds",
        ],
    );
    let fine = [
        "{ path: $.amount, equals: 100 }",
        "{ path: $.amount, lt: 5.5 }",
        "{ path: $.status, contains: pa }",
        "{ path: $.status, exists: false }",
    ];
    for fine in fine {
        let out = any(fine);
        assert!(!out.contains("is never"), "{fine}: {out}");
    }
}

#[test]
fn a_canonical_additional_properties_false_refuses_what_its_own_properties_do_not_list() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("in.json", r#"{"type": "object", "properties": {"id": {"type": "string"}}}"#),
        // Names by pattern: `x_…` may be there although `properties` does not list it.
        (
            "patterned.json",
            r#"{"type": "object", "additionalProperties": false, "patternProperties": {"^x_": {"type": "string"}},
                "properties": {"id": {"type": "string"}}}"#,
        ),
        ("base.json", r#"{"type": "object", "additionalProperties": false, "properties": {"id": {"type": "string"}}}"#),
        // `extra` listed beside a closed base: the base still refuses it, in every event.
        ("extended.json", r#"{"allOf": [{"$ref": "base.json"}, {"properties": {"extra": {"type": "string"}}}]}"#),
    ];
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let validate = |schema: &str, field: &str| {
        let rule = format!(
            "      - name: r\n        emit: {{ topic: t, schema: {schema}, value: {{ id: {{ path: $.id }}, {field}: {{ const: a }} }} }}\n"
        );
        validate_source(dir.path(), &rule)
    };
    let out = validate("patterned.json", "x_note");
    assert!(out.contains("routes.yaml: valid"), "{out}");
    assert_says(
        &validate("extended.json", "extra"),
        &[
            "rule 'r', value.extra: 'extra' is not a property of the canonical schema 'extended.json' (one part of it lists it, but another's 'additionalProperties: false' refuses it",
        ],
    );
}

#[test]
fn an_inbound_one_of_holds_where_the_rules_filter_leaves_one_branch() {
    let dir = tempfile::tempdir().unwrap();
    let branch = |kind: &str, field: &str| {
        format!(
            r#"{{"properties": {{"type": {{"const": "{kind}"}}, "data": {{"type": "object", "additionalProperties": false,
                 "required": ["{field}"], "properties": {{"{field}": {{"type": "string"}}}}}}}}}}"#
        )
    };
    let inbound = format!(
        r#"{{"type": "object", "required": ["type", "data"], "properties": {{"type": {{"enum": ["card", "bank"]}}}},
            "oneOf": [{}, {}]}}"#,
        branch("card", "last4"),
        branch("bank", "iban")
    );
    std::fs::write(dir.path().join("in.json"), &inbound).unwrap();
    std::fs::write(dir.path().join("out.json"), r#"{"type": "object", "properties": {"n": {"type": "integer"}}}"#)
        .unwrap();
    let validate = |when: &str, path: &str| {
        let rule = format!(
            "      - name: r\n        when: {when}\n        emit: {{ topic: t, schema: out.json, value: {{ n: {{ path: {path}, optional: true }} }} }}\n"
        );
        validate_source(dir.path(), &rule)
    };
    // Cards only: the card branch holds, so its closed `data` and its types bind the rule.
    assert_says(
        &validate("{ event_type: card }", "$.data.iban"),
        &[
            "rule 'r', value.n: $.data.iban cannot exist in payloads valid for 'in.json': 'iban' is not one of the properties the schema allows there",
        ],
    );
    assert_says(
        &validate("{ event_type: card }", "$.data.last4"),
        &["rule 'r', value.n: produces string but the canonical schema 'out.json' wants integer"],
    );
    // Not a bank: but a payload without a type matches the bank branch too (it does not require one).
    let untyped = inbound.replace(r#""required": ["type", "data"], "#, "");
    std::fs::write(dir.path().join("in.json"), &untyped).unwrap();
    let out = validate("{ all: [{ path: $.type, not_in: [bank] }] }", "$.data.iban");
    assert!(out.contains("routes.yaml: valid"), "{out}");
    std::fs::write(dir.path().join("in.json"), &inbound).unwrap();
    // Either kind: a name one branch declares may be there, and its type is not sure.
    let out = validate("{ event_type: [card, bank] }", "$.data.iban");
    assert!(out.contains("routes.yaml: valid"), "{out}");
    // A branch below the payload's root is not chosen by the payload's own `type`.
    let nested = r#"{"type": "object", "properties": {"type": {"type": "string"}, "method": {"type": "object",
        "properties": {"x": {"description": "any"}},
        "if": {"properties": {"type": {"const": "card"}}}, "then": {"properties": {"x": {"type": "integer"}}},
        "oneOf": [{"properties": {"type": {"const": "card"}}, "additionalProperties": false},
                  {"properties": {"type": {"const": "bank"}, "y": {"type": "string"}}}]}}}"#;
    std::fs::write(dir.path().join("in.json"), nested).unwrap();
    std::fs::write(dir.path().join("out.json"), r#"{"type": "object", "properties": {"n": {"type": "string"}}}"#)
        .unwrap();
    let out = validate("{ event_type: card }", "$.method.x");
    assert!(out.contains("routes.yaml: valid"), "{out}");
    let out = validate("{ event_type: card }", "$.method.y");
    assert!(out.contains("routes.yaml: valid"), "{out}");
    // Nor is one of the items an `each` reads.
    let items = r#"{"type": "object", "properties": {"type": {"type": "string"}, "items": {"type": "array", "items": {
        "oneOf": [{"properties": {"type": {"const": "card"}}, "additionalProperties": false},
                  {"properties": {"type": {"const": "bank"}, "x": {"type": "string"}}}]}}}}"#;
    std::fs::write(dir.path().join("in.json"), items).unwrap();
    std::fs::write(dir.path().join("out.json"), r#"{"type": "object"}"#).unwrap();
    let rule = "      - name: r\n        when: { event_type: card }\n        emit: { topic: t, schema: out.json, value: { n: { each: \"$.items[*]\", path: $.x } } }\n";
    let out = validate_source(dir.path(), rule);
    assert!(out.contains("routes.yaml: valid"), "{out}");
    std::fs::write(dir.path().join("in.json"), inbound).unwrap();
    let out = validate("{}", "$.data.ibn");
    assert!(out.contains("routes.yaml: valid"), "{out}");
    assert!(
        out.contains("$.data.ibn: 'ibn' is not declared in payloads valid for 'in.json'; did you mean 'iban'?"),
        "{out}"
    );
}

#[test]
fn a_schema_whose_refs_lead_to_one_place_many_ways_is_read_once() {
    // Each level refers to the next four ways (4^7 ways to the end): the check and the
    // projected parse follow each level once.
    let dir = tempfile::tempdir().unwrap();
    let mut defs = serde_json::Map::new();
    for i in 0..7 {
        let next = serde_json::json!({"$ref": format!("#/$defs/l{}", i + 1)});
        let (all, any) = (serde_json::json!([next, next]), serde_json::json!([next, {"allOf": [next]}]));
        let level =
            serde_json::json!({"allOf": all, "anyOf": any, "properties": {format!("p{i}"): {"type": "string"}}});
        defs.insert(format!("l{i}"), level);
    }
    defs.insert("l7".into(), serde_json::json!({"properties": {"id": {"type": "string"}}}));
    let inbound = serde_json::json!({"$defs": defs, "$ref": "#/$defs/l0"});
    std::fs::write(dir.path().join("in.json"), inbound.to_string()).unwrap();
    std::fs::write(dir.path().join("out.json"), r#"{"type": "object"}"#).unwrap();
    let rule = "      - name: r\n        emit: { topic: t, schema: out.json, value: { a: { path: $.id }, b: { path: $.p6 }, c: { path: $.ids } } }\n";
    let out = validate_source(dir.path(), rule);
    assert!(out.contains("routes.yaml: valid"), "{out}");
    assert!(out.contains("$.ids: 'ids' is not declared in payloads valid for 'in.json'; did you mean 'id'?"), "{out}");
}

#[test]
fn a_dispatch_template_reads_the_properties_a_composed_schema_declares() {
    // The event's schema is built from parts: its properties are in the files it refers to.
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("customer.json", r#"{"type": "object", "properties": {"id": {"type": "string"}}}"#),
        (
            "base.json",
            r#"{"type": "object", "required": ["order_id"], "properties": {"order_id": {"type": "string"}, "customer": {"$ref": "customer.json"}}}"#,
        ),
        ("event.json", r#"{"allOf": [{"$ref": "base.json"}, {"properties": {"note": {"type": "string"}}}]}"#),
    ];
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let validate = |url: &str| {
        let yaml = format!(
            "dispatch:\n  - name: d\n    topic: t\n    group: g\n    schema: event.json\n    rules:\n      - name: r\n        request: {{ method: POST, url: \"http://orders/{url}\" }}\n"
        );
        std::fs::write(dir.path().join("routes.yaml"), yaml).unwrap();
        text(&switchyard(&["validate"], dir.path(), &[]))
    };
    let out = validate("{order_id}/{customer.id}/{note}");
    assert!(out.contains("routes.yaml: valid"), "{out}");
    assert_says(
        &validate("{order_id}/{ordr_id}"),
        &[
            "template variable '{ordr_id}' is not a property of the canonical event in 'event.json': did you mean '{order_id}'?",
        ],
    );
    assert_says(
        &validate("{customer.idd}"),
        &[
            "template variable '{customer.idd}' is not a property of the canonical event in 'event.json': did you mean '{customer.id}'?",
        ],
    );
}
