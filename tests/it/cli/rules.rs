//! `validate` on what rules say: conditions, values and steps, paths into headers and batches,
//! and a dispatch rule's request (URL, hosts, statuses, signing, OAuth2).

use super::*;

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

/// `form:` sends the body as form fields (Twilio's Messages API here); `check` shows the text
/// sent, and a case's `body` matches it written as the text or as the fields, in any order.
/// With `body` or `body_value` too it is refused.
#[test]
fn form_fields_are_sent_form_encoded() {
    let routes = |extra: &str| {
        format!(
            r#"dispatch:
  - name: sms
    topic: t
    group: g
    rules:
      - name: text_the_customer
        request:
          method: POST
          url: https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json
          form:
            To: {{ path: $.phone }}
            Body: {{ template: "Order {{$.order_id}} has shipped" }}
            MediaUrl: {{ path: $.photos, optional: true }}{extra}
tests:
  - name: the fields, in another order
    topic: t
    body: {{ order_id: "7", phone: "+15551234567", photos: [a.png, b.png] }}
    expect:
      calls:
        - body: {{ MediaUrl: [a.png, b.png], To: "+15551234567", Body: Order 7 has shipped }}
  - name: the text
    topic: t
    body: {{ order_id: "8", phone: "+15551234567" }}
    expect:
      calls:
        - headers: {{ Content-Type: application/x-www-form-urlencoded }}
          body: To=%2B15551234567&Body=Order+8+has+shipped
  - name: a wrong field fails
    topic: t
    body: {{ order_id: "9", phone: "+15551234567" }}
    expect:
      calls:
        - body: {{ To: "+15551234567", Body: Order 10 has shipped }}
"#
        )
    };
    let dir = config(&routes(""));
    let out = switchyard(&["test"], dir.path(), &[]);
    assert_says(
        &text(&out),
        &[
            "ok   the fields, in another order",
            "ok   the text",
            "call 0: body differs\n       expected \"Body=Order+10+has+shipped&To=%2B15551234567\"\n       got      \"To=%2B15551234567&Body=Order+9+has+shipped\"",
            "2 passed, 1 failed",
        ],
    );
    let event = r#"{"order_id": "7", "phone": "+15551234567", "photos": ["a.png"]}"#;
    std::fs::write(dir.path().join("event.json"), event).unwrap();
    let out = switchyard(&["check", "--topic", "t", "--payload", "event.json"], dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let call = &shown["calls"][0];
    assert_eq!(call["headers"]["content-type"], "application/x-www-form-urlencoded", "{shown}");
    assert_eq!(call["body"], "To=%2B15551234567&Body=Order+7+has+shipped&MediaUrl=a.png", "{shown}");
    for extra in ["\n          body: { id: { path: $.order_id } }", "\n          body_value: { path: $ }"] {
        let both = config(&routes(extra));
        let out = switchyard(&["validate", "-c", "routes.yaml"], both.path(), &[]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert_says(
            &text(&out),
            &[
                "routes.yaml:11:17: dispatch rule 'text_the_customer': give body, body_value or form (form fields), not two of them",
            ],
        );
    }
}
