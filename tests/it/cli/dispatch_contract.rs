//! The static contract check of dispatch rules: the event types, paths and template variables a
//! rule reads must exist in the events the sources publish on its topic.

use super::*;

/// A dispatcher `d` of topic `t` and group `g`, down to its one rule's name, `call` (line 6 of
/// the text), for [`contract`]'s `dispatch`.
const ONE_DISPATCH_RULE: &str = "dispatch:
  - name: d
    topic: t
    group: g
    rules:
      - name: call
";

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
    // The type read through the member's own `$ref`.
    write(
        "paid.json",
        r##"{"allOf": [{"$ref": "envelope.json"}], "$defs": {"kind": {"const": "payment_successful"}},
             "properties": {"event_type": {"$ref": "#/$defs/kind"}, "transaction_id": {"type": "string"}}}"##,
    );
    assert_says(
        &routes(&typo),
        &["(paid.json, failed.json allow only payment_declined, payment_failed, payment_successful)"],
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

/// A dispatch rule's `when.event_type` reads where its dispatcher's `event_type` says, by
/// default the event's `event_type` property: where the events cannot have one (a closed schema
/// without it), the rule would never call, and the warning names the property that holds the
/// type the rule takes. Said on the dispatcher, types are read there, misspelt ones warned about.
#[test]
fn a_dispatch_event_type_the_events_cannot_have_is_warned_about_with_the_property_meant() {
    let rule = format!(
        "{ONE_DISPATCH_RULE}        when: {{ event_type: payment }}\n        request: {{ method: POST, url: \"http://orders/x\" }}\n"
    );
    let out = contract(GOOD, &rule);
    assert_says(
        &out,
        &[
            "routes.yaml:21:29: warning: this rule would never call: its when.event_type reads $.event_type (the \
             dispatcher's event_type), and $.event_type cannot exist in events valid for 'out.json': 'event_type' is \
             not one of the properties the schema allows there; the type is in 'kind': say so on the dispatcher with \
             `event_type: $.kind`",
            "routes.yaml: valid",
        ],
    );
    // As the warning says: then no warning, and a misspelt type is one.
    let fixed = rule.replace("    group: g\n", "    group: g\n    event_type: $.kind\n");
    let out = contract(GOOD, &fixed);
    assert!(out.contains("routes.yaml: valid") && !out.contains("would never call"), "{out}");
    let out = contract(GOOD, &fixed.replace("event_type: payment }", "event_type: paymnt }"));
    assert_says(
        &out,
        &[
            "routes.yaml:22:29: warning: this rule would never call: no event on its topic has kind 'paymnt' (out.json allows only payment)",
        ],
    );
}

/// A dispatcher's `event_type` may be a Kafka header of the record, as the shipped routes set
/// one: `check --topic` (the dispatcher's own `rules_for`) takes the event by it.
#[test]
fn a_dispatcher_reads_the_event_type_where_its_event_type_says() {
    let shipped = std::fs::read_to_string(repo().join("routes.yaml")).unwrap();
    let group = "    group: ${DISPATCH_GROUP:-switchyard-orders}\n";
    assert!(shipped.contains(group));
    let by_header = shipped.replace(group, &format!("{group}    event_type: {{ header: event_type }}\n"));
    let dir = config(&by_header);
    std::fs::write(dir.path().join("event.json"), serde_json::to_string(&shipped_event()).unwrap()).unwrap();
    let check = |header: &str| {
        let args =
            ["check", "--topic", "payments", "--payload", "event.json", "--header", header, "--header", "event_id: e1"];
        let out = switchyard(&args, dir.path(), &[]);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let taken = check("event_type: payment_successful");
    assert_eq!(taken["calls"][0]["method"], "PATCH", "{taken}");
    let passed = check("event_type: payment_failed");
    assert_eq!(passed["calls"], serde_json::json!([]));
    assert_eq!(
        passed["passed_over"][0]["why"],
        "when.event_type takes \"payment_successful\", and the event type (header event_type) is \"payment_failed\""
    );
    let out = switchyard(&["validate"], dir.path(), &[]);
    assert!(out.status.success() && !text(&out).contains("warning: this rule"), "{}", text(&out));
}

/// The shipped example event, as the order service's dispatcher takes it.
fn shipped_event() -> serde_json::Value {
    serde_json::json!({"event_type": "payment_successful", "event_timestamp": "2023-11-06T14:30:00Z",
        "order_id": "12345", "customer_id": "789", "payment_amount": 100.0, "payment_method": "Credit Card",
        "transaction_id": "ABC123XYZ", "currency": "USD", "payment_status": "Success"})
}

/// Event types are read as text: where the events hold a number at the dispatcher's
/// `event_type`, no `when.event_type` ever holds.
#[test]
fn a_dispatch_event_type_the_events_hold_as_a_number_is_warned_about() {
    let yaml = "dispatch:
  - name: d
    topic: t
    group: g
    schema: num.json
    rules:
      - name: call
        when: { event_type: \"7\" }
        request: { method: POST, url: \"http://orders/x\" }
";
    let dir = config(yaml);
    let schema = r#"{"type": "object", "properties": {"event_type": {"type": "integer"}}}"#;
    std::fs::write(dir.path().join("num.json"), schema).unwrap();
    let out = switchyard(&["validate"], dir.path(), &[]);
    assert_says(
        &text(&out),
        &[
            "routes.yaml:8:29: warning: this rule would never call: its when.event_type reads $.event_type (the \
             dispatcher's event_type), and $.event_type is never a string in events valid for 'num.json' (the schema \
             allows only integer there); say on the dispatcher where the type is (`event_type: $.kind`, or \
             `{ header: event_type }`)",
            "routes.yaml: valid",
        ],
    );
}
