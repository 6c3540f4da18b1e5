//! The static contract check of source rules: what a rule reads must be allowed by its inbound
//! schema, what it produces must be valid for its canonical schema, for every event it can make.

use super::*;

/// `switchyard validate` of a config in `dir` of one unsigned source `s`, its payloads described
/// by `in.json` and their event types at `$.type`, with `rules` (list items, indented 6).
fn validate_source(dir: &Path, rules: &str) -> String {
    let yaml = format!(
        "sources:\n  - name: s\n    path: /hooks/s\n    verify: {{ kind: none }}\n    schema: in.json\n    event_type: $.type\n    rules:\n{rules}"
    );
    std::fs::write(dir.join("routes.yaml"), yaml).unwrap();
    text(&switchyard(&["validate"], dir, &[]))
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

    // The same definitions reached by their plain names (`$anchor`, draft 2019-09 on).
    for (file, name) in [("in.json", "text"), ("out.json", "cents")] {
        let schema = std::fs::read_to_string(dir.path().join(file)).unwrap();
        let schema = schema
            .replace(&format!(r#""{name}": {{"type""#), &format!(r#""{name}": {{"$anchor": "{name}", "type""#))
            .replace(&format!("#/$defs/{name}"), &format!("#{name}"));
        write(file, &schema);
    }
    write("routes.yaml", routes);
    let out = switchyard(&["validate"], dir.path(), &[]);
    assert_says(
        &text(&out),
        &["routes.yaml:8:89: rule 'r', value.cents: produces string but the canonical schema 'out.json' wants integer"],
    );
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

/// Schemas published under URLs (`$id: https://…`) refer to each other by URL; they are read
/// from the files laid out as the URLs are, beside the schema, never fetched: `validate` and
/// `check` validate through them, the contract check follows them, and a `$ref` no file
/// stands for is named with the way out.
#[test]
fn schemas_that_refer_to_each_other_by_id_url_are_read_from_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let file = dir.path().join(name);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    };
    write(
        "schemas/in.json",
        r#"{"type": "object", "required": ["id", "total"],
            "properties": {"id": {"type": "string"}, "total": {"type": "integer"}}}"#,
    );
    // One `$ref` relative to the `$id`, one absolute, and one in a file whose own `$id` is its base.
    write(
        "schemas/out.json",
        r#"{"$id": "https://example.com/schemas/out.json", "type": "object", "required": ["id", "price"],
            "properties": {"id": {"$ref": "common/id.json"},
                           "price": {"$ref": "https://example.com/schemas/common/money.json"}}}"#,
    );
    write("schemas/common/id.json", r#"{"type": "string", "minLength": 1}"#);
    write(
        "schemas/common/money.json",
        r#"{"$id": "https://example.com/schemas/common/money.json", "type": "object", "required": ["amount", "currency"],
            "properties": {"amount": {"type": "integer"}, "currency": {"$ref": "currency.json"}}}"#,
    );
    write("schemas/common/currency.json", r#"{"type": "string", "pattern": "^[A-Z]{3}$"}"#);
    let routes = |currency: &str| {
        format!(
            "sources:
  - name: s
    path: /hooks/s
    verify: {{ kind: none }}
    schema: schemas/in.json
    rules:
      - name: r
        emit:
          topic: t
          schema: schemas/out.json
          value:
            id: {{ path: $.id }}
            price:
              object:
                amount: {{ path: $.total }}
                currency: {{ const: {currency} }}
"
        )
    };
    write("routes.yaml", &routes("USD"));
    let out = switchyard(&["validate"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    write("payload.json", r#"{"id": "a-1", "total": 500}"#);
    let out = text(&switchyard(&["check", "--source", "s", "--payload", "payload.json"], dir.path(), &[]));
    assert_says(&out, &[r#""status": "accepted""#, r#""amount": 500"#, r#""currency": "USD""#]);
    // What the files behind the URLs say holds: an empty id breaks `common/id.json`.
    write("payload.json", r#"{"id": "", "total": 500}"#);
    let out = text(&switchyard(&["check", "--source", "s", "--payload", "payload.json"], dir.path(), &[]));
    assert_says(&out, &[r#""http_status": 500"#, r#""path": "/id""#]);

    // The contract check reads `currency.json` through two URLs.
    write("routes.yaml", &routes("usd"));
    let out = text(&switchyard(&["validate"], dir.path(), &[]));
    assert_says(
        &out,
        &[
            r#"routes.yaml:16:36: rule 'r', value.price.currency: the constant "usd" breaks 'schemas/out.json': "usd" does not match "^[A-Z]{3}$""#,
        ],
    );

    // A URL outside every `$id` folder is not fetched.
    write("routes.yaml", &routes("USD"));
    write("schemas/common/id.json", r#"{"$ref": "https://schemas.example.org/id.json"}"#);
    let out = text(&switchyard(&["validate"], dir.path(), &[]));
    assert_says(
        &out,
        &[
            "routes.yaml:10:19: schema './schemas/out.json' is invalid",
            "https://schemas.example.org/id.json",
            "it is not under the $id folder of a schema read here (https://example.com/schemas/, https://example.com/schemas/common/); Switchyard reads schemas from files, never over the network",
        ],
    );
}

/// The values a schema allows at a path are read through the value's own `$ref`s and the
/// branches of its `anyOf` (each branch binding it: their values together), not only its own
/// `const` and `enum`; a branch that binds nothing leaves it open.
#[test]
fn the_values_a_schema_allows_are_read_through_the_values_own_refs_and_branches() {
    let dir = tempfile::tempdir().unwrap();
    let schema = |last_branch: &str| {
        let text = format!(
            r##"{{"type": "object", "required": ["status"], "$defs": {{"unpaid": {{"enum": ["unpaid", "no_payment_required"]}}}},
                "properties": {{"status": {{"anyOf": [{{"const": "paid"}}, {{"$ref": "#/$defs/unpaid"}}{last_branch}]}}}}}}"##
        );
        std::fs::write(dir.path().join("in.json"), text).unwrap();
        std::fs::write(dir.path().join("out.json"), r#"{"type": "object"}"#).unwrap();
        let rule = "      - name: r
        when: { all: [{ path: $.status, equals: payed }] }
        emit: { topic: t, schema: out.json, value: { s: { path: $.status } } }
";
        validate_source(dir.path(), rule)
    };
    assert_says(
        &schema(""),
        &[
            r#"warning: rule 'r', when: $.status is never "payed" in payloads valid for 'in.json' (the schema allows only "paid", "unpaid", "no_payment_required")"#,
        ],
    );
    let out = schema(r#", {"type": "string"}"#);
    assert!(out.contains("routes.yaml: valid") && !out.contains("is never"), "{out}");
}

/// A source's `event_type` and `event_id` paths are held to its inbound schema: an event type
/// that cannot be there would take every webhook past every rule that names one. The event type
/// may be in what a rule's `for_each` selects (Adyen's items) instead of at the payload's root.
#[test]
fn a_source_event_type_or_id_that_cannot_exist_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.json"),
        r#"{"type": "object", "additionalProperties": false,
            "properties": {"type": {"type": "string"}, "id": {"type": "string"},
                           "items": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                                     "properties": {"code": {"type": "string"}}}}}}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("out.json"), r#"{"type": "object"}"#).unwrap();
    let validate = |event_type: &str, event_id: &str, lines: &str| {
        let yaml = format!(
            "sources:
  - name: s
    path: /hooks/s
    verify: {{ kind: none }}
    schema: in.json
    event_type: {event_type}
    event_id: {event_id}
    rules:
      - name: r
{lines}        emit: {{ topic: t, schema: out.json, value: {{ x: {{ const: 1 }} }} }}
"
        );
        std::fs::write(dir.path().join("routes.yaml"), yaml).unwrap();
        text(&switchyard(&["validate"], dir.path(), &[]))
    };
    let paid = "        when: { event_type: paid }\n";
    let out = validate("$.typ", "$.idd", paid);
    assert_says(
        &out,
        &[
            "routes.yaml:6:17: source 's', event_type: $.typ cannot exist in payloads valid for 'in.json': 'typ' is \
             not one of the properties the schema allows there; did you mean 'type'?",
            "routes.yaml:7:15: warning: source 's', event_id: $.idd cannot exist in payloads valid for 'in.json': 'idd' \
             is not one of the properties the schema allows there; did you mean 'id'?",
            "1 error",
        ],
    );
    assert!(validate("$.type", "$.id", paid).contains("routes.yaml: valid"));
    // Where no rule names an event type, it is only ever missing from logs and answers.
    let out = validate("$.typ", "$.id", "");
    assert_says(&out, &["routes.yaml:6:17: warning: source 's', event_type: $.typ cannot exist", "routes.yaml: valid"]);
    // In the items a `for_each` selects, not at the root: read there.
    let items = "        for_each: \"$.items[*]\"\n        when: { event_type: paid }\n";
    assert!(validate("$.code", "$.id", items).contains("routes.yaml: valid"), "{}", validate("$.code", "$.id", items));
    let out = validate("$.cod", "$.id", items);
    assert_says(
        &out,
        &["routes.yaml:6:17: source 's', event_type: $.cod cannot exist in payloads valid for 'in.json'"],
    );
}

/// A closed schema's `patternProperties` take the names they match, and hold them to their
/// schemas: on the inbound side a path to a name no pattern matches cannot exist, and one a
/// pattern matches has its type; on the canonical side a name no pattern matches is refused.
#[test]
fn pattern_properties_take_the_names_they_match_and_no_others() {
    let dir = tempfile::tempdir().unwrap();
    // A closed object of a string `id` and the members `pattern` takes, of type `ty`.
    let write = |file: &str, pattern: &str, ty: &str| {
        let schema = format!(
            r#"{{"type": "object", "additionalProperties": false, "required": ["id"],
                "properties": {{"id": {{"type": "string"}}}}, "patternProperties": {{"{pattern}": {{"type": "{ty}"}}}}}}"#
        );
        std::fs::write(dir.path().join(file), schema).unwrap();
    };
    write("in.json", "^x-", "string");
    write("out.json", "^meta_", "integer");
    let out = validate_source(
        dir.path(),
        "      - name: r
        emit:
          topic: t
          schema: out.json
          value:
            id: { path: $.id }
            meta_count: { path: \"$['x-count']\" }
            shop: { const: a }
            meta_n: { const: 1 }
            meta_o: { path: $.other, default: 2 }
            meta_x: { path: \"$['x-n']\", then: [to_number, { round: 0 }] }
",
    );
    assert_says(
        &out,
        &[
            "routes.yaml:14:33: rule 'r', value.meta_count: produces string but the canonical schema 'out.json' wants integer",
            "routes.yaml:15:28: rule 'r', value.shop: 'shop' is not a property of the canonical schema 'out.json'",
            "routes.yaml:17:29: rule 'r', value.meta_o: $.other cannot exist in payloads valid for 'in.json': 'other' \
             is not one of the properties the schema allows there",
            "3 errors",
        ],
    );
    // A pattern Rust's `regex` cannot read (a look-ahead) may take any name.
    write("out.json", "^(?!secret)", "string");
    let out = validate_source(
        dir.path(),
        "      - name: r\n        emit: { topic: t, schema: out.json, value: { id: { path: $.id }, shop: { const: a } } }\n",
    );
    assert!(out.contains("routes.yaml: valid"), "{out}");
}
