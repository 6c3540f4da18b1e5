//! `validate` on the config's shape: unknown keys, wrong types, Kafka properties, limits,
//! files and includes, variables and roles, its output formats and the committed routes schema.

use super::*;

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

/// A config in a folder whose name a URI must encode (a space, a `#`, an accent) reads its
/// schemas and their `$ref`s as any other does: before, every schema there was "invalid".
#[test]
fn schemas_in_a_folder_whose_name_has_a_space_are_read() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("My Routes #1 é");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("routes.yaml"), SOURCE.replace("min.json", "canonical event.json")).unwrap();
    std::fs::write(dir.join("canonical event.json"), r#"{"$ref": "order%20id.json"}"#).unwrap();
    std::fs::write(dir.join("order id.json"), r#"{"properties": {"order_id": {"type": "string"}}}"#).unwrap();
    let out = switchyard(&["validate"], &dir, &[("S", "x")]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(dir.join("payload.json"), r#"{"id": 5, "type": "x"}"#).unwrap();
    let out = text(&switchyard(&["check", "--source", "s", "--payload", "payload.json"], &dir, &[("S", "x")]));
    assert_says(&out, &[r#""http_status": 500"#, r#""path": "/order_id""#]);
}

/// A file the config names (an included file, a schema, a `$ref`'s target) is read only when
/// it is a regular file: a device is named with why, instead of hanging `validate` (reading
/// `/dev/zero` never ends).
#[test]
fn a_device_the_config_names_is_refused_not_read() {
    let out = invalid(&format!("include: [/dev/zero]\n{SOURCE}"));
    assert_says(&out, &["routes.yaml:1:11: cannot read included file '/dev/zero': not a file"]);
    let out = invalid(&SOURCE.replace("min.json", "/dev/zero"));
    assert_says(&out, &["routes.yaml:10:19: cannot read schema '/dev/zero': not a file"]);
    let dir = config(&SOURCE.replace("min.json", "ref.json"));
    std::fs::write(dir.path().join("ref.json"), r#"{"properties": {"id": {"$ref": "/dev/zero"}}}"#).unwrap();
    let out = text(&switchyard(&["validate"], dir.path(), &[("S", "x")]));
    assert_says(
        &out,
        &["routes.yaml:10:19: schema './ref.json' is invalid", "cannot read schema '/dev/zero': not a file"],
    );
}

#[test]
fn duplicate_route_paths_are_refused() {
    let second = SOURCE.replace("sources:\n", "").replace("name: s\n", "name: s2\n");
    let out = invalid(&format!("{SOURCE}{second}"));
    assert!(out.contains("routes.yaml:14:11: duplicate route path '/hooks/s': source 's' already serves it"), "{out}");
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

/// Every unset variable of one string is named, not only the first: one run of `validate`
/// (warnings) or `serve` (errors) lists all a user has to set.
#[test]
fn every_unset_variable_of_a_string_is_named() {
    let dir = config(&calling("${ORDERS_URL}/tenants/${ORDERS_TENANT}/x", ""));
    let out = switchyard(&["validate"], dir.path(), &[("S", "whsec_0123456789abcdefghijklmn")]);
    assert!(out.status.success(), "{}", text(&out));
    assert_says(
        &text(&out),
        &[
            "routes.yaml:19:39: warning: environment variable 'ORDERS_URL' is not set",
            "routes.yaml:19:39: warning: environment variable 'ORDERS_TENANT' is not set",
        ],
    );
    let (code, out) = serve_role(dir.path(), "all", &[]);
    assert_eq!(code, Some(1), "{out}");
    for name in ["S", "ORDERS_URL", "ORDERS_TENANT"] {
        assert!(out.contains(&format!("environment variable '{name}' is not set")), "{out}");
    }
}

/// `${VAR}` reads the environment in the strings of a `const`, a `default`, a `template` and a
/// condition's values as in every other string: before, they were sent as written. In a
/// template, `${$.id}` stays a dollar sign before a placeholder.
#[test]
fn constants_defaults_templates_and_condition_values_read_the_environment() {
    let yaml = r#"sources:
  - name: s
    path: /hooks/s
    verify: { kind: stripe, secrets: ["${S}"] }
    event_type: $.type
    rules:
      - name: r
        when: { all: [{ path: $.account, equals: "${ACCOUNT}" }] }
        emit:
          topic: t
          schema: canonical.json
          value:
            shop: { const: "${SHOP}" }
            note: { template: "from ${SHOP}: ${$.id}" }
            tier: { path: $.tier, default: "${TIER:-basic}" }
"#;
    let dir = config(yaml);
    let canonical = r#"{"type": "object", "properties": {"shop": {"type": "string", "pattern": "^[a-z]+$"}}}"#;
    std::fs::write(dir.path().join("canonical.json"), canonical).unwrap();
    std::fs::write(dir.path().join("mine.json"), r#"{"type": "t", "id": "e1", "account": "acct_1"}"#).unwrap();
    std::fs::write(dir.path().join("theirs.json"), r#"{"type": "t", "id": "e2", "account": "acct_2"}"#).unwrap();
    let env = [("S", "whsec_0123456789abcdefghijklmn"), ("ACCOUNT", "acct_1"), ("SHOP", "acme")];
    let out = switchyard(&["check", "--source", "s", "--payload", "mine.json"], dir.path(), &env);
    assert!(out.status.success(), "{}", text(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        shown["events"][0]["value"],
        serde_json::json!({"shop": "acme", "note": "from acme: $e1", "tier": "basic"}),
        "{shown}"
    );
    let out = switchyard(&["check", "--source", "s", "--payload", "theirs.json"], dir.path(), &env);
    assert!(text(&out).contains("\"status\": \"ignored\""), "{}", text(&out));
    // Unset, each is a warning, and the stand-in `$SHOP` is not held to the schema's pattern,
    // which the real value is for; a real value is.
    let out = switchyard(&["validate"], dir.path(), &[("S", "whsec_0123456789abcdefghijklmn")]);
    assert!(out.status.success(), "{}", text(&out));
    assert_says(
        &text(&out),
        &[
            "routes.yaml:8:23: warning: environment variable 'ACCOUNT' is not set",
            "routes.yaml:13:28: warning: environment variable 'SHOP' is not set",
            "routes.yaml:14:31: warning: environment variable 'SHOP' is not set",
        ],
    );
    let env = [("S", "whsec_0123456789abcdefghijklmn"), ("ACCOUNT", "a"), ("SHOP", "ACME")];
    let out = switchyard(&["validate"], dir.path(), &env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_says(&text(&out), &["the constant \"ACME\" breaks 'canonical.json'"]);
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
fn a_config_that_does_nothing_is_warned_about() {
    let dir = config("kafka: { brokers: localhost:9092 }\n");
    let out = switchyard(&["validate"], dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("routes.yaml:1:1: warning: no 'sources' and no 'dispatch'"), "{}", text(&out));
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
