//! The projected parse (only what a source reads is built) against the whole document: every
//! member of the shipped Stripe samples is replaced by other JSON values, or removed, and the
//! stages after parsing must answer the same either way.

use serde_json::{Value as Json, json};
use switchyard::pipeline::{self, Input, parse};
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

#[test]
fn every_stage_after_parsing_answers_the_same_on_the_projected_document() {
    let routes = shipped();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let checkout: Json =
        serde_json::from_slice(&std::fs::read(root.join("samples/stripe/checkout_session_completed.json")).unwrap())
            .unwrap();
    let mut intent = checkout.clone();
    intent["type"] = json!("payment_intent.succeeded");
    intent["data"]["object"] = json!({"id": "pi_1", "object": "payment_intent", "amount_received": 1234,
        "currency": "eur", "status": "succeeded", "customer": null, "metadata": {"order_id": "A-1"},
        "payment_method_types": ["sepa_debit"], "latest_charge": {"id": "ch_1", "outcome": {"type": "authorized"}}});
    let (mut checked, mut accepted, mut rejected) = (0, 0, 0);
    let headers = http::HeaderMap::new();
    for source in &routes.sources {
        for doc in variants(&checkout).into_iter().chain(variants(&intent)) {
            let body = serde_json::to_vec(&doc).unwrap();
            let projected = parse::parse(&body, &source.reads).unwrap();
            let whole = pipeline::route(source, Input::webhook(&doc, &headers));
            assert_eq!(pipeline::route(source, Input::webhook(&projected, &headers)), whole, "{doc}");
            checked += 1;
            match whole {
                Ok(pipeline::Outcome::Publish { .. }) => accepted += 1,
                Err(_) => rejected += 1,
                Ok(pipeline::Outcome::Ignored(_) | pipeline::Outcome::Reply { .. }) => {}
            }
        }
    }
    // The variants reach every outcome, so the comparison means something.
    assert!(checked > 1000 && accepted > 100 && rejected > 100, "{checked} {accepted} {rejected}");
}
