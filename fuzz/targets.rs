//! The fuzz targets' bodies, shared by `fuzz_targets/*.rs` (libFuzzer) and
//! `tests/it/fuzz_corpus.rs` (replays the committed corpus on every `cargo test`).
//!
//! Each target checks properties, not just "no panic": a forged signature never verifies,
//! a correct one always does, a planned URL never leaves its configured origin or path,
//! a projected parse answers like the whole document.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine;
use http::{HeaderMap, HeaderValue};
use percent_encoding::percent_decode_str;
use serde_json::Value as Json;
use switchyard::config::{self, Loaded};
use switchyard::dry_run;
use switchyard::pipeline::plan::{self, Delivered};
use switchyard::pipeline::verify::{sign, stripe_signature};
use switchyard::pipeline::{self, Inbound, Input, parse};
use switchyard::routes::dispatch::Var;
use switchyard::routes::template::{self, Part};
use switchyard::routes::verify::{Encoding, Secret, SigningKey, TwilioUrl, Verifier};
use switchyard::routes::{self, EnvMode, Routes};

const SECRET: &[u8] = b"whsec_fuzz";
const NOW: i64 = 1_700_000_000;

/// The repository root (targets run from `fuzz/`, tests from the root).
fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if here.join("routes.yaml").exists() { here.to_path_buf() } else { here.join("..") }
}

/// The shipped routes, compiled once with the defaults of every variable.
fn shipped() -> &'static Routes {
    static ROUTES: OnceLock<Routes> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let loaded = config::load(&root().join("routes.yaml")).expect("shipped routes.yaml parses");
        let env = |k: &str| (k == "STRIPE_WEBHOOK_SECRET").then(|| String::from_utf8_lossy(SECRET).into_owned());
        routes::compile(&loaded, &env, EnvMode::STRICT).expect("shipped routes.yaml compiles").0
    })
}

/// Checks a webhook posted without a query.
fn verify(verifier: &Verifier, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), String> {
    pipeline::verify::verify(verifier, &Inbound { headers, query: None, body, now, verify: true })
}

/// A Twilio verifier with these secrets.
fn twilio(secrets: &[&[u8]]) -> Verifier {
    let url = TwilioUrl::parse("https://hooks.example.com/twilio").expect("a URL");
    Verifier::Twilio { secrets: secrets.iter().map(|s| Secret(s.to_vec())).collect(), url }
}

/// Splits `data` at NUL bytes into at most `n` UTF-8 (lossy) fields.
fn fields(data: &[u8], n: usize) -> Vec<String> {
    data.splitn(n, |b| *b == 0).map(|f| String::from_utf8_lossy(f).into_owned()).collect()
}

/// Signature headers: `<header value> NUL <body>`. Every scheme parses the header without
/// panicking; nothing but the real HMAC verifies; the real HMAC always does.
pub fn signature_header(data: &[u8]) {
    let (header, body) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(value) = HeaderValue::from_bytes(header) else { return };
    let secrets = [b"old".as_slice(), SECRET].iter().map(|s| SigningKey::new(s.to_vec())).collect::<Vec<_>>();
    let verifiers = [
        ("stripe-signature", Verifier::Stripe { secrets: secrets.clone(), tolerance_secs: 300 }),
        (
            "x-hub-signature-256",
            Verifier::HmacSha256 {
                secrets: secrets.clone(),
                header: http::HeaderName::from_static("x-hub-signature-256"),
                prefix: "sha256=".into(),
                encoding: Encoding::Hex,
            },
        ),
        ("webhook-signature", Verifier::StandardWebhooks { secrets: secrets.clone(), tolerance_secs: 300 }),
        ("x-twilio-signature", twilio(&[b"old", SECRET])),
        (
            "x-square-hmacsha256-signature",
            Verifier::Square { secrets: secrets.clone(), url: "https://hooks.example.com/square".into() },
        ),
        ("authorization", Verifier::Basic { secrets: vec![Secret(b"user:whsec_fuzz".to_vec())] }),
        // Adyen's signatures are in the body: any body is read as a notification.
        ("x-adyen", Verifier::Adyen { secrets: secrets.clone() }),
        (
            "x-token",
            Verifier::Token {
                secrets: vec![Secret(SECRET.to_vec())],
                header: http::HeaderName::from_static("x-token"),
                prefix: "Token ".into(),
            },
        ),
    ];
    for (name, verifier) in &verifiers {
        let mut headers = HeaderMap::new();
        headers.insert(*name, value.clone());
        headers.insert("webhook-id", HeaderValue::from_static("msg_1"));
        headers.insert("webhook-timestamp", HeaderValue::from_static("1700000000"));
        headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded"));
        if let Err(why) = verify(verifier, &headers, body, NOW) {
            assert!(!why.contains("whsec_fuzz"), "an error shows the secret: {why}");
        } else if matches!(verifier, Verifier::Stripe { .. }) {
            // Accepted: the header must carry the genuine signature of this body.
            let t = stripe_t(value.to_str().unwrap_or_default());
            let genuine = t.map(|t| stripe_signature(SECRET, t, body)).unwrap_or_default();
            let v1 = genuine.split_once(",v1=").map(|(_, v)| v.to_string()).unwrap_or_default();
            let old = t.map(|t| stripe_signature(b"old", t, body)).unwrap_or_default();
            let v1_old = old.split_once(",v1=").map(|(_, v)| v.to_string()).unwrap_or_default();
            // Hex is case-insensitive: an upper-case copy of the genuine signature is the same MAC.
            let shown = value.to_str().unwrap_or_default().to_ascii_lowercase();
            assert!(shown.contains(&v1) || shown.contains(&v1_old), "a forged Stripe signature verified");
        } else if matches!(verifier, Verifier::Twilio { .. }) {
            // Accepted: the header is the genuine signature of this form, under either secret.
            let shown = value.to_str().unwrap_or_default().trim();
            let genuine = |secret: &[u8]| sign(&twilio(&[secret]), body, NOW, "").remove(0).1;
            assert!(shown == genuine(SECRET) || shown == genuine(b"old"), "a forged Twilio signature verified");
        } else if let Verifier::Square { url, .. } = verifier {
            // Accepted: the header is the genuine signature of this body, under either secret.
            let signed = |secret: &[u8]| {
                let v = Verifier::Square { secrets: vec![SigningKey::new(secret.to_vec())], url: url.clone() };
                sign(&v, body, NOW, "").remove(0).1
            };
            let shown = value.to_str().unwrap_or_default().trim();
            assert!(shown == signed(SECRET) || shown == signed(b"old"), "a forged Square signature verified");
        } else if matches!(verifier, Verifier::Basic { .. } | Verifier::Token { .. }) {
            // Accepted: the header holds the secret itself (Basic: base64 of `user:secret`)
            // after its scheme, in any letter case.
            let shown = value.to_str().unwrap_or_default();
            let (scheme, rest) = shown.split_at(shown.find(' ').map_or(0, |i| i + 1));
            let given = match verifier {
                Verifier::Basic { .. } => {
                    assert!(scheme.eq_ignore_ascii_case("basic "), "Basic credentials under scheme '{scheme}'");
                    base64::engine::general_purpose::STANDARD.decode(rest.trim()).unwrap_or_default()
                }
                _ => {
                    assert!(scheme.eq_ignore_ascii_case("token "), "a token under scheme '{scheme}'");
                    rest.trim().as_bytes().to_vec()
                }
            };
            let expected =
                if matches!(verifier, Verifier::Basic { .. }) { b"user:whsec_fuzz".as_slice() } else { SECRET };
            assert_eq!(given, expected, "forged credentials verified: {shown}");
        }
    }
    // The genuine signature, with the fuzzed header's items appended, still verifies.
    let genuine = stripe_signature(SECRET, NOW, body);
    let extra = String::from_utf8_lossy(header);
    let combined = if extra.is_empty() { genuine.clone() } else { format!("{genuine},{extra}") };
    let stripe = &verifiers[0].1;
    let mut headers = HeaderMap::new();
    headers.insert("stripe-signature", HeaderValue::from_str(&genuine).expect("hex header"));
    assert_eq!(verify(stripe, &headers, body, NOW), Ok(()), "a genuine signature was refused");
    if let Ok(v) = HeaderValue::from_str(&combined) {
        headers.insert("stripe-signature", v);
        let result = verify(stripe, &headers, body, NOW);
        // Well-formed: visible ASCII (what `Stripe-Signature` is made of), `k=v` items, no second `t`.
        let ascii = header.iter().all(|b| (0x20..0x7f).contains(b));
        let clean = ascii
            && extra.split(',').all(|item| {
                let k = item.trim().split_once('=').map(|(k, _)| k);
                k.is_some_and(|k| k != "t")
            });
        if clean && extra.split(',').filter(|i| i.trim().starts_with("v1=")).count() < 15 {
            assert_eq!(result, Ok(()), "extra well-formed items broke a genuine signature: {extra:?}");
        }
    }
}

fn stripe_t(header: &str) -> Option<i64> {
    header.split(',').find_map(|i| i.trim().strip_prefix("t=")).and_then(|t| t.parse().ok())
}

/// Config loading: any text parses to a config or to diagnostics; a config that parses
/// compiles to routes or to diagnostics, never a panic.
pub fn config_load(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = root().join("fuzz.yaml");
    let Ok(file) = config::parse(&path, text) else { return };
    let loaded = Loaded { path, dir: root(), file, included: Vec::new() };
    let env = |k: &str| (k == "SET").then(|| "value".to_string());
    let _ = routes::compile(&loaded, &env, EnvMode::Lenient);
}

/// Arbitrary bytes posted to every shipped source (signatures off, as in `check`): every
/// outcome is an answer, and every planned call stays on the configured order service.
pub fn shipped_routes(data: &[u8]) {
    let routes = shipped();
    let headers = HeaderMap::new();
    let whole: Option<Json> = serde_json::from_slice(data).ok();
    for source in &routes.sources {
        // Parsing builds only what the source reads; whenever the whole body is JSON, the
        // projected document must give every later stage the same answer.
        if let Some(whole) = &whole {
            let projected =
                parse::parse(data, &source.reads).expect("the projected parse accepts what serde_json does");
            let (projected, whole) =
                (Input::webhook(&projected, &headers, None), Input::webhook(whole, &headers, None));
            assert_eq!(pipeline::route(source, projected), pipeline::route(source, whole));
        }
        let input = pipeline::Inbound { headers: &headers, query: None, body: data, now: NOW, verify: false };
        let outcome = dry_run::run(routes, source, &input);
        // The static contract check proved the shipped mappings always produce valid
        // canonical events: a 500 here would be a hole in that proof.
        if let dry_run::DryRun::Rejected { http_status, rejection } = &outcome {
            assert!(*http_status < 500, "{http_status}: {}", rejection.message);
        }
        if let dry_run::DryRun::Accepted { events, calls, .. } = outcome {
            for event in &events {
                let _ = serde_json::to_vec(&event.value).expect("events serialize");
            }
            for call in calls.iter().filter_map(|c| c.call.as_ref().ok()) {
                check_url(&call.url, "http://localhost:8081/orders/");
            }
        }
    }
}

/// URL templates: `<template> NUL <order_id> NUL <currency> NUL <event_id header>`. Any
/// template text parses or is refused; event values fill the shipped rule's path segment and
/// a query component, and the URL never leaves its origin or gains a path segment.
pub fn url_template(data: &[u8]) {
    let f = fields(data, 4);
    let get = |i: usize| f.get(i).cloned().unwrap_or_default();
    if let Ok(parts) = template::parse(&get(0)) {
        let vars = parts.iter().filter(|p| matches!(p, Part::Var(_))).count();
        assert!(vars <= get(0).matches('{').count());
    }
    let routes = shipped();
    let mut rule = routes.dispatchers[0].rules[0].clone();
    rule.query = vec![("cur rency".into(), vec![Part::Lit("x-".into()), Part::Var(Var::Property("currency".into()))])];
    let value: Json = serde_json::json!({
        "event_type": "payment_successful", "event_timestamp": "2023-11-06T14:30:00Z", "order_id": get(1),
        "customer_id": "789", "payment_amount": 100.0, "payment_method": "Credit Card",
        "transaction_id": "pi_1", "currency": get(2), "payment_status": "Success",
    });
    let event_id = get(3);
    let event = Delivered {
        key: Some(&event_id),
        headers: vec![("event_id", event_id.as_str())],
        value: &value,
        ..Default::default()
    };
    match plan::plan(&rule, &event) {
        Ok(call) => {
            let segment = check_url(&call.url, "http://localhost:8081/orders/");
            assert_eq!(
                percent_decode_str(segment).decode_utf8_lossy(),
                get(1),
                "the order id did not round-trip through its segment"
            );
            for (name, v) in &call.headers {
                assert!(HeaderValue::from_str(v).is_ok(), "header {name} holds {v:?}");
            }
        }
        Err(why) => {
            let id = get(1);
            let bad_segment = id.is_empty() || id == "." || id == "..";
            let bad_query = get(2).is_empty() || get(2) == "." || get(2) == "..";
            let bad_header = HeaderValue::from_str(&event_id).is_err();
            assert!(bad_segment || bad_query || bad_header, "refused a plannable event: {why}");
        }
    }
}

/// Asserts `url` is `prefix` + one encoded segment (+ an encoded query) and returns the segment.
fn check_url<'a>(url: &'a str, prefix: &str) -> &'a str {
    let rest = url.strip_prefix(prefix).unwrap_or_else(|| panic!("{url} left {prefix}"));
    let (segment, query) = rest.split_once('?').unwrap_or((rest, ""));
    let encoded = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b));
    assert!(encoded(segment) && !segment.is_empty(), "segment {segment:?} of {url}");
    assert!(segment != "." && segment != "..", "dot segment in {url}");
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("query pair {pair:?} in {url}"));
        assert!(encoded(k) && encoded(v), "query pair {pair:?} in {url}");
    }
    let uri: http::Uri = url.parse().unwrap_or_else(|e| panic!("{url} is not a URI: {e}"));
    assert_eq!((uri.host(), uri.port_u16()), (Some("localhost"), Some(8081)), "{url}");
    segment
}
