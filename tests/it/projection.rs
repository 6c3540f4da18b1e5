//! The projected parse (only what a source reads is built) against the whole document: every
//! member of the shipped Stripe samples is replaced by other JSON values, or removed, and the
//! stages after parsing must answer the same either way.

use serde_json::{Value as Json, json};
use switchyard::pipeline::{self, Input, parse};
use switchyard::routes::projection::Projection;
use switchyard::routes::{self, EnvMode, Routes};

fn shipped() -> Routes {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let loaded = switchyard::config::load(&root.join("routes.yaml")).unwrap();
    let env = |k: &str| (k == "STRIPE_WEBHOOK_SECRET").then(|| "whsec_test".to_string());
    routes::compile(&loaded, &env, EnvMode::STRICT).unwrap().0
}

/// JSON Pointers of every value in `doc` (the root included).
fn pointers(doc: &Json, at: String, out: &mut Vec<String>) {
    match doc {
        Json::Object(m) => {
            m.iter().for_each(|(k, v)| pointers(v, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out))
        }
        Json::Array(a) => a.iter().enumerate().for_each(|(i, v)| pointers(v, format!("{at}/{i}"), out)),
        _ => {}
    }
    out.push(at);
}

fn variants(doc: &Json) -> Vec<Json> {
    let replacements = [
        json!(null),
        json!(0),
        json!(-1.5),
        json!("x"),
        json!("evt_1"),
        json!(true),
        json!([]),
        json!({}),
        json!({"a": 1}),
    ];
    let mut all = vec![doc.clone()];
    let mut at = Vec::new();
    pointers(doc, String::new(), &mut at);
    for pointer in at.iter().filter(|p| !p.is_empty()) {
        for r in &replacements {
            let mut changed = doc.clone();
            *changed.pointer_mut(pointer).unwrap() = r.clone();
            all.push(changed);
        }
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let mut removed = doc.clone();
        match removed.pointer_mut(parent).unwrap() {
            Json::Object(m) => drop(m.remove(&key.replace("~1", "/").replace("~0", "~"))),
            Json::Array(a) => drop(a.remove(key.parse::<usize>().unwrap())),
            _ => unreachable!(),
        }
        all.push(removed);
    }
    all
}

/// The shipped checkout sample, and a payment intent made from it.
fn samples() -> (Json, Json) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let checkout: Json =
        serde_json::from_slice(&std::fs::read(root.join("samples/stripe/checkout_session_completed.json")).unwrap())
            .unwrap();
    let mut intent = checkout.clone();
    intent["type"] = json!("payment_intent.succeeded");
    intent["data"]["object"] = json!({"id": "pi_1", "object": "payment_intent", "amount_received": 1234,
        "currency": "eur", "status": "succeeded", "customer": null, "metadata": {"order_id": "A-1"},
        "payment_method_types": ["sepa_debit"], "latest_charge": {"id": "ch_1", "outcome": {"type": "authorized"}}});
    (checkout, intent)
}

/// Every source of `routes` answers every variant of both samples the same from the projected
/// document as from the whole one, and the variants reach every outcome, so the comparison means
/// something.
fn answers_the_same(routes: &Routes) {
    let (checkout, intent) = samples();
    let (mut checked, mut accepted, mut rejected) = (0, 0, 0);
    let headers = http::HeaderMap::new();
    for source in &routes.sources {
        for doc in variants(&checkout).into_iter().chain(variants(&intent)) {
            let body = serde_json::to_vec(&doc).unwrap();
            let projected = parse::parse(&body, &source.reads).unwrap();
            let whole = pipeline::route(source, Input::webhook(&doc, &headers, None));
            assert_eq!(pipeline::route(source, Input::webhook(&projected, &headers, None)), whole, "{doc}");
            checked += 1;
            match whole {
                Ok(pipeline::Outcome::Publish { .. }) => accepted += 1,
                Err(_) => rejected += 1,
                Ok(pipeline::Outcome::Ignored(_) | pipeline::Outcome::Reply { .. }) => {}
            }
        }
    }
    assert!(checked > 1000 && accepted > 100 && rejected > 100, "{checked} {accepted} {rejected}");
}

#[test]
fn every_stage_after_parsing_answers_the_same_on_the_projected_document() {
    answers_the_same(&shipped());
}

/// The same with nested objects and `each` arrays, whose paths read the selected values: the
/// projection keeps those values whole.
#[test]
fn nested_values_and_arrays_answer_the_same_on_the_projected_document() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(root.join("schemas"), dir.path().join("schemas")).unwrap();
    std::fs::write(
        dir.path().join("nested.json"),
        r#"{"type": "object", "required": ["customer", "methods"],
            "properties": {"customer": {"type": "object", "required": ["email"]},
              "methods": {"type": "array", "minItems": 1, "items": {"type": "object"}}}}"#,
    )
    .unwrap();
    let yaml = r#"sources:
  - name: stripe
    path: /webhooks/stripe
    verify: { kind: stripe, secrets: ["whsec_test"] }
    schema: schemas/stripe/event.schema.json
    event_type: $.type
    rules:
      - name: nested
        when: { event_type: checkout.session.completed }
        emit:
          topic: t
          schema: nested.json
          value:
            customer:
              object:
                email: { path: $.data.object.customer_details.email }
                address:
                  object:
                    country: { path: $.data.object.customer_details.address.country, optional: true }
                    city: { path: $.data.object.customer_details.address.city, default: "?" }
            methods:
              each: "$.data.object.payment_method_types[*]"
              object:
                kind: { path: $, then: [upper] }
                enabled: { const: true }
            metadata_values: { each: "$.data.object.metadata.*", path: $, optional: true, then: [to_string] }
"#;
    std::fs::write(dir.path().join("routes.yaml"), yaml).unwrap();
    let loaded = switchyard::config::load(&dir.path().join("routes.yaml")).unwrap();
    let env = |_: &str| None;
    let routes = routes::compile(&loaded, &env, EnvMode::STRICT).unwrap().0;
    answers_the_same(&routes);
}

/// The same with the shipped schemas published under URLs: each file with an `$id`, one `$ref`
/// relative to it and one absolute. The projection still leaves out what nothing reads.
#[test]
fn schemas_with_ids_answer_the_same_on_the_projected_document() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("schemas/stripe")).unwrap();
    let copy = |name: &str, edit: &dyn Fn(String) -> String| {
        let text = std::fs::read_to_string(root.join("schemas").join(name)).unwrap();
        let with_id = text.replacen('{', &format!("{{\n  \"$id\": \"https://schemas.example.com/{name}\","), 1);
        std::fs::write(dir.path().join("schemas").join(name), edit(with_id)).unwrap();
    };
    let absolute = |text: String| {
        text.replace(
            "\"payment_intent.schema.json\"",
            "\"https://schemas.example.com/stripe/payment_intent.schema.json\"",
        )
    };
    copy("stripe/event.schema.json", &absolute);
    for name in
        ["stripe/checkout_session.schema.json", "stripe/payment_intent.schema.json", "stripe/currency.schema.json"]
    {
        copy(name, &|t| t);
    }
    copy("payment_successful.schema.json", &|t| t);
    std::fs::copy(root.join("routes.yaml"), dir.path().join("routes.yaml")).unwrap();
    let loaded = switchyard::config::load(&dir.path().join("routes.yaml")).unwrap();
    let env = |k: &str| (k == "STRIPE_WEBHOOK_SECRET").then(|| "whsec_test".to_string());
    let routes = routes::compile(&loaded, &env, EnvMode::STRICT).unwrap().0;
    let event = std::fs::read_to_string(dir.path().join("schemas/stripe/event.schema.json")).unwrap();
    assert!(event.contains("\"$id\": \"https://schemas.example.com/stripe/event.schema.json\""), "{event}");
    for source in &routes.sources {
        let Projection::Fields(top) = &source.reads else { panic!("{}: everything is built", source.name) };
        let data = Projection::of_member(top, "data");
        let Some(Projection::Fields(data)) = data else { panic!("{:?}", source.reads) };
        let object = Projection::of_member(data, "object");
        assert!(matches!(object, Some(Projection::Fields(_))), "{:?}", source.reads);
        assert!(Projection::of_member(top, "api_version").is_none(), "{:?}", source.reads);
    }
    answers_the_same(&routes);
}
