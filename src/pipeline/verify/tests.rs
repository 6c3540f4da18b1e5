//! Verifier tests with fixed vectors: Stripe's (made by stripe-python, kept in
//! `tests/fixtures/stripe/signature_vectors.json`), GitHub's documented example, the
//! Standard Webhooks specification's example, Slack's (made by slack_sdk's
//! `SignatureVerifier.generate_signature`) and Twitch's (accepted by pyTwitchAPI's
//! `EventSubWebhook._verify_signature`).

use super::*;
use crate::routes::verify::{Encoding, SigningKey, Verifier};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Checks a webhook without a query (every scheme but Twilio's ignores it).
fn verify(verifier: &Verifier, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), String> {
    super::verify(verifier, &Inbound { headers, query: None, body, now, verify: true })
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    h
}

fn key(secret: &[u8]) -> SigningKey {
    SigningKey::new(secret.to_vec())
}

fn stripe_with(secrets: &[&str]) -> Verifier {
    Verifier::Stripe {
        secrets: secrets.iter().map(|s| SigningKey::new(s.as_bytes().to_vec())).collect(),
        tolerance_secs: 300,
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/stripe/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn stripe_vectors_from_the_official_library_verify() {
    let doc: serde_json::Value = serde_json::from_slice(&fixture("signature_vectors.json")).unwrap();
    for v in doc["vectors"].as_array().unwrap() {
        let body = match v.get("payload_file") {
            Some(f) => fixture(f.as_str().unwrap()),
            None => v["payload"].as_str().unwrap().as_bytes().to_vec(),
        };
        let t = v["timestamp"].as_i64().unwrap();
        let header = v["header"].as_str().unwrap();
        let verifier = stripe_with(&[v["secret"].as_str().unwrap()]);
        assert_eq!(verify(&verifier, &headers(&[("stripe-signature", header)]), &body, t + 10), Ok(()));
        // Our signer produces the very same header.
        assert_eq!(stripe_signature(v["secret"].as_str().unwrap().as_bytes(), t, &body), header);
        // One changed byte breaks it.
        let mut tampered = body.clone();
        tampered[0] ^= 1;
        assert!(verify(&verifier, &headers(&[("stripe-signature", header)]), &tampered, t).is_err());
    }
}

#[test]
fn stripe_accepts_any_v1_and_any_secret_during_rotation() {
    let body = b"{}";
    let good = stripe_signature(b"new", 100, body);
    let v1 = good.split("v1=").nth(1).unwrap();
    let header = format!("t=100,v1={},v0=abc,v1={v1}", "00".repeat(32));
    assert_eq!(verify(&stripe_with(&["old", "new"]), &headers(&[("stripe-signature", &header)]), body, 100), Ok(()));
    assert!(verify(&stripe_with(&["old"]), &headers(&[("stripe-signature", &header)]), body, 100).is_err());
    // v1 values that are not 64 hex digits can never match and do not hide the one that does.
    let odd = format!("t=100,v1=abcd,v1=zz,v1={v1}00,v1={v1}");
    assert_eq!(verify(&stripe_with(&["new"]), &headers(&[("stripe-signature", &odd)]), body, 100), Ok(()));
    let short = verify(&stripe_with(&["new"]), &headers(&[("stripe-signature", "t=100,v1=0000")]), body, 100);
    assert_eq!(short.unwrap_err(), "no signature matches", "a v1 is there, it just cannot match");
    let upper = format!("t=100,v1={}", v1.to_uppercase());
    assert_eq!(verify(&stripe_with(&["new"]), &headers(&[("stripe-signature", &upper)]), body, 100), Ok(()));
}

#[test]
fn stripe_rejects_stale_missing_and_malformed_headers() {
    let v = stripe_with(&["s"]);
    let body = b"{}";
    let sig = stripe_signature(b"s", 1000, body);
    let stale = verify(&v, &headers(&[("stripe-signature", &sig)]), body, 1000 + 301).unwrap_err();
    assert!(stale.contains("tolerance"), "{stale}");
    assert!(verify(&v, &headers(&[("stripe-signature", &sig)]), body, 1000 - 301).is_err());
    assert_eq!(verify(&v, &headers(&[("stripe-signature", &sig)]), body, 1000 + 300), Ok(()));
    assert_eq!(verify(&v, &HeaderMap::new(), body, 1000).unwrap_err(), "missing stripe-signature header");
    for bad in [
        "",
        "garbage",
        "v1=abcd",
        "t=,v1=ab",
        "t=abc,v1=ab",
        "t=99999999999999999999999,v1=ab",
        "t=1000",
        "t=1000,v1=zz",
        "t=1000,t=1000,v1=ab",
    ] {
        assert!(verify(&v, &headers(&[("stripe-signature", bad)]), body, 1000).is_err(), "{bad:?} passed");
    }
    let many = format!("t=1000{}", ",v1=00".repeat(5000));
    assert!(verify(&v, &headers(&[("stripe-signature", &many)]), body, 1000).unwrap_err().contains("more than"));
}

#[test]
fn github_hmac_sha256_documented_example() {
    let v = Verifier::HmacSha256 {
        secrets: vec![SigningKey::new(b"It's a Secret to Everybody".to_vec())],
        header: HeaderName::from_static("x-hub-signature-256"),
        prefix: "sha256=".into(),
        encoding: Encoding::Hex,
    };
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(verify(&v, &headers(&[("x-hub-signature-256", sig)]), b"Hello, World!", 0), Ok(()));
    assert!(verify(&v, &headers(&[("x-hub-signature-256", sig)]), b"Hello, World?", 0).is_err());
    assert!(verify(&v, &headers(&[("x-hub-signature-256", &sig[7..])]), b"Hello, World!", 0).is_err());
}

#[test]
fn standard_webhooks_specification_example() {
    let v = Verifier::StandardWebhooks {
        secrets: vec![SigningKey::new(
            base64::engine::general_purpose::STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
        )],
        tolerance_secs: 300,
    };
    let h = headers(&[
        ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
        ("webhook-timestamp", "1614265330"),
        ("webhook-signature", "v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
    ]);
    let body = br#"{"test": 2432232314}"#;
    assert_eq!(verify(&v, &h, body, 1614265330), Ok(()));
    assert!(verify(&v, &h, body, 1614265330 + 301).is_err());
    assert!(verify(&v, &h, br#"{"test": 2432232315}"#, 1614265330).is_err());
}

#[test]
fn what_sign_makes_every_verifier_accepts() {
    let verifiers = [
        stripe_with(&["whsec_a", "whsec_b"]),
        Verifier::HmacSha256 {
            secrets: vec![key(b"gh")],
            header: HeaderName::from_static("x-hub-signature-256"),
            prefix: "sha256=".into(),
            encoding: Encoding::Hex,
        },
        Verifier::HmacSha256 {
            secrets: vec![key(b"shop")],
            header: HeaderName::from_static("x-shopify-hmac-sha256"),
            prefix: String::new(),
            encoding: Encoding::Base64,
        },
        Verifier::StandardWebhooks { secrets: vec![key(b"sw")], tolerance_secs: 300 },
    ];
    let body = br#"{"id": "evt_1"}"#;
    for v in &verifiers {
        let signed = sign(v, body, 5_000, "msg_1");
        assert!(!signed.is_empty(), "{v:?}");
        let pairs: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(verify(v, &headers(&pairs), body, 5_010), Ok(()), "{v:?}");
        assert!(verify(v, &headers(&pairs), b"{}", 5_010).is_err(), "{v:?}");
    }
    assert!(sign(&Verifier::None, body, 0, "m").is_empty());
    assert!(sign(&Verifier::StandardWebhooks { secrets: vec![], tolerance_secs: 1 }, body, 0, "m").is_empty());
}

/// A receiver that knows only one of the signer's secrets (mid-rotation) accepts the call:
/// Stripe's and Standard Webhooks' headers carry a signature per secret.
#[test]
fn signing_with_several_secrets_satisfies_a_receiver_that_knows_any_one() {
    let body = br#"{"order_id": "1"}"#;
    let signers = [
        stripe_with(&["whsec_new", "whsec_old"]),
        Verifier::StandardWebhooks { secrets: vec![key(b"new"), key(b"old")], tolerance_secs: 300 },
    ];
    let receivers = [
        [stripe_with(&["whsec_old"]), stripe_with(&["whsec_new"])],
        [
            Verifier::StandardWebhooks { secrets: vec![key(b"old")], tolerance_secs: 300 },
            Verifier::StandardWebhooks { secrets: vec![key(b"new")], tolerance_secs: 300 },
        ],
    ];
    for (signer, receivers) in signers.iter().zip(&receivers) {
        let signed = sign(signer, body, 7_000, "msg_orders_0_42");
        let pairs: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        for receiver in receivers {
            assert_eq!(verify(receiver, &headers(&pairs), body, 7_000), Ok(()), "{signer:?} → {receiver:?}");
        }
    }
    let signed = sign(&signers[1], body, 7_000, "msg_orders_0_42");
    assert!(signed.contains(&("webhook-id".into(), "msg_orders_0_42".into())));
}

/// Made by slack_sdk 3 (`SignatureVerifier("8f742231b10e8888abcd99yyyzzz85a5")`): a slash
/// command's form body, as in Slack's documentation, and an Events API `url_verification`.
const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const SLACK_VECTORS: &[(&str, &str)] = &[
    (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebbhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c659f",
        "v0=43329d86d4c938bec4275223d770789c6148e61f22cb6cdfa486252f08420025",
    ),
    (
        r#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#,
        "v0=f9bd80929259f3f6d5fe3a3186c453c89cd1ad4862815a15837584f31c993652",
    ),
];

fn slack(secrets: &[&str]) -> Verifier {
    let secrets = secrets.iter().map(|s| key(s.as_bytes())).collect();
    Verifier::Slack { secrets, tolerance_secs: 300, headers: crate::routes::verify::SLACK }
}

#[test]
fn slack_vectors_from_the_official_library_verify_and_are_signed_alike() {
    let t = 1531420618;
    for (body, signature) in SLACK_VECTORS {
        let sent = headers(&[("X-Slack-Request-Timestamp", "1531420618"), ("X-Slack-Signature", signature)]);
        assert_eq!(verify(&slack(&["old_secret_of_16_bytes", SLACK_SECRET]), &sent, body.as_bytes(), t + 299), Ok(()));
        let signed = sign(&slack(&[SLACK_SECRET]), body.as_bytes(), t, "");
        assert_eq!(
            signed,
            vec![
                ("x-slack-request-timestamp".to_owned(), t.to_string()),
                ("x-slack-signature".to_owned(), signature.to_string())
            ]
        );
        let mut tampered = body.as_bytes().to_vec();
        tampered[0] ^= 1;
        assert_eq!(verify(&slack(&[SLACK_SECRET]), &sent, &tampered, t), Err(NO_MATCH.to_owned()));
    }
}

/// Zoom signs as Slack does, under its own header names: the same signature verifies there
/// (and only there) for a `zoom` source.
#[test]
fn zoom_is_slacks_scheme_under_its_own_header_names() {
    let (body, signature) = SLACK_VECTORS[1];
    let zoom = Verifier::Slack {
        secrets: vec![key(SLACK_SECRET.as_bytes())],
        tolerance_secs: 300,
        headers: crate::routes::verify::ZOOM,
    };
    let t = 1531420618;
    let sent = headers(&[("x-zm-request-timestamp", "1531420618"), ("x-zm-signature", signature)]);
    assert_eq!(verify(&zoom, &sent, body.as_bytes(), t), Ok(()));
    let slacks = headers(&[("X-Slack-Request-Timestamp", "1531420618"), ("X-Slack-Signature", signature)]);
    assert_eq!(verify(&zoom, &slacks, body.as_bytes(), t), Err("missing x-zm-request-timestamp header".into()));
    let signed = sign(&zoom, body.as_bytes(), t, "");
    assert_eq!(signed[1], ("x-zm-signature".to_owned(), signature.to_owned()));
}

#[test]
fn slack_refuses_stale_missing_and_malformed_headers_by_name() {
    let (body, signature) = SLACK_VECTORS[1];
    let t = 1531420618;
    let check = |pairs: &[(&str, &str)], now| verify(&slack(&[SLACK_SECRET]), &headers(pairs), body.as_bytes(), now);
    let ts = ("X-Slack-Request-Timestamp", "1531420618");
    let sig = ("X-Slack-Signature", signature);
    assert_eq!(check(&[ts, sig], t + 301), Err("signature timestamp is outside the 300 s tolerance".into()));
    assert_eq!(check(&[sig], t), Err("missing x-slack-request-timestamp header".into()));
    assert_eq!(check(&[ts], t), Err("missing x-slack-signature header".into()));
    let not_time = ("X-Slack-Request-Timestamp", "yesterday");
    assert_eq!(check(&[not_time, sig], t), Err("x-slack-request-timestamp is not a unix timestamp".into()));
    let v1 = ("X-Slack-Signature", "v1=00");
    assert_eq!(check(&[ts, v1], t), Err("x-slack-signature does not start with 'v0='".into()));
    let short = ("X-Slack-Signature", "v0=abcd");
    assert_eq!(check(&[ts, short], t), Err("x-slack-signature is not a valid digest".into()));
}

/// A Twitch EventSub challenge (the example of Twitch's documentation), signed with
/// `TWITCH_SECRET`; pyTwitchAPI 4's `EventSubWebhook._verify_signature` accepts it.
const TWITCH_SECRET: &str = "s3cRe7-twitch-eventsub-secret";
const TWITCH_ID: &str = "e76c6bd4-55c9-4987-8304-da1588d8988b";
const TWITCH_AT: &str = "2019-11-16T10:11:12.634234626Z";
const TWITCH_BODY: &str = r#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"webhook_callback_verification_pending","type":"channel.follow","version":"2","cost":1,"condition":{"broadcaster_user_id":"12826"},"transport":{"method":"webhook","callback":"https://example.com/webhooks/callback"},"created_at":"2019-11-16T10:11:12.634234626Z"}}"#;
const TWITCH_SIGNATURE: &str = "sha256=fd5654b62bffe5233b272fed5de488a01fb1038767feb33c1358571098bb7e19";
/// `TWITCH_AT` in unix seconds.
const TWITCH_T: i64 = 1573899072;

fn twitch(secrets: &[&str]) -> Verifier {
    Verifier::Twitch { secrets: secrets.iter().map(|s| key(s.as_bytes())).collect(), tolerance_secs: 600 }
}

fn twitch_headers(id: &str, at: &str, signature: &str) -> HeaderMap {
    headers(&[
        ("Twitch-Eventsub-Message-Id", id),
        ("Twitch-Eventsub-Message-Timestamp", at),
        ("Twitch-Eventsub-Message-Signature", signature),
    ])
}

#[test]
fn twitch_vector_verifies_within_ten_minutes_and_signing_round_trips() {
    let sent = twitch_headers(TWITCH_ID, TWITCH_AT, TWITCH_SIGNATURE);
    let body = TWITCH_BODY.as_bytes();
    assert_eq!(verify(&twitch(&["an-older-secret-of-twitch", TWITCH_SECRET]), &sent, body, TWITCH_T + 600), Ok(()));
    let stale = verify(&twitch(&[TWITCH_SECRET]), &sent, body, TWITCH_T + 601);
    assert_eq!(stale, Err("signature timestamp is outside the 600 s tolerance".into()));
    let mut tampered = body.to_vec();
    tampered[2] ^= 1;
    assert_eq!(verify(&twitch(&[TWITCH_SECRET]), &sent, &tampered, TWITCH_T), Err(NO_MATCH.into()));
    // The message id is signed: another id with the same signature is refused.
    let other = twitch_headers("another-id", TWITCH_AT, TWITCH_SIGNATURE);
    assert_eq!(verify(&twitch(&[TWITCH_SECRET]), &other, body, TWITCH_T), Err(NO_MATCH.into()));

    // A call signed the Twitch way carries the id, the time in whole seconds, and verifies.
    let signed = sign(&twitch(&[TWITCH_SECRET]), body, TWITCH_T, "msg_1");
    let names: Vec<&str> = signed.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["Twitch-Eventsub-Message-Id", "Twitch-Eventsub-Message-Timestamp", "Twitch-Eventsub-Message-Signature"]
    );
    assert_eq!((signed[0].1.as_str(), signed[1].1.as_str()), ("msg_1", "2019-11-16T10:11:12Z"));
    let pairs: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(verify(&twitch(&[TWITCH_SECRET]), &headers(&pairs), body, TWITCH_T), Ok(()));
}

#[test]
fn twitch_refuses_missing_and_malformed_headers_by_name() {
    let check = |h: HeaderMap| verify(&twitch(&[TWITCH_SECRET]), &h, TWITCH_BODY.as_bytes(), TWITCH_T);
    let unix = twitch_headers(TWITCH_ID, "1573899072", TWITCH_SIGNATURE);
    assert_eq!(check(unix), Err("twitch-eventsub-message-timestamp is not an RFC 3339 timestamp".into()));
    let bare = twitch_headers(TWITCH_ID, TWITCH_AT, &TWITCH_SIGNATURE["sha256=".len()..]);
    assert_eq!(check(bare), Err("twitch-eventsub-message-signature does not start with 'sha256='".into()));
    let short = twitch_headers(TWITCH_ID, TWITCH_AT, "sha256=abc");
    assert_eq!(check(short), Err("twitch-eventsub-message-signature is not a valid digest".into()));
    let no_id =
        headers(&[("Twitch-Eventsub-Message-Timestamp", TWITCH_AT), ("Twitch-Eventsub-Message-Signature", "x")]);
    assert_eq!(check(no_id), Err("missing twitch-eventsub-message-id header".into()));
}

/// Twilio's vectors: the first is the example of Twilio's security documentation; all were
/// made by the official library (twilio 9.13.0, `RequestValidator.compute_signature`) and
/// accepted by its `validate`.
mod twilio {
    use super::*;
    use crate::routes::verify::{Secret, TwilioUrl};

    const FORM: &str = "application/x-www-form-urlencoded";

    fn twilio(url: &str) -> Verifier {
        let secrets = vec![Secret(b"an-old-auth-token".to_vec()), Secret(b"12345".to_vec())];
        Verifier::Twilio { secrets, url: TwilioUrl::parse(url).unwrap() }
    }

    fn check(v: &Verifier, pairs: &[(&str, &str)], query: Option<&str>, body: &[u8]) -> Result<(), String> {
        super::super::verify(v, &Inbound { headers: &headers(pairs), query, body, now: 0, verify: true })
    }

    /// A call's fields, in an order of their own: Twilio signs them sorted.
    fn call() -> Vec<u8> {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("To", "+18005551212")
            .append_pair("Digits", "1234")
            .append_pair("CallSid", "CA1234567890ABCDE")
            .append_pair("From", "+12349013030")
            .append_pair("Caller", "+12349013030")
            .finish()
            .into_bytes()
    }

    #[test]
    fn the_documented_example_verifies_with_and_without_the_port() {
        let v = twilio("https://mycompany.com/myapp.php");
        let query = Some("foo=1&bar=2");
        let signed = |sig| [("content-type", FORM), ("x-twilio-signature", sig)];
        assert_eq!(check(&v, &signed("0/KCTR6DLpKmkAf8muzZqo1nDgQ="), query, &call()), Ok(()));
        // The same, signed over `https://mycompany.com:443/…`.
        assert_eq!(check(&v, &signed("EpDEmp1PyjDYp77YxYU3GILBWzE="), query, &call()), Ok(()));
        // …and configured with the port: either spelling still verifies.
        let with_port = twilio("https://mycompany.com:443/myapp.php");
        assert_eq!(check(&with_port, &signed("0/KCTR6DLpKmkAf8muzZqo1nDgQ="), query, &call()), Ok(()));
        // The query, the fields and the URL are all covered.
        let sig = signed("0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert_eq!(check(&v, &sig, Some("foo=1&bar=3"), &call()), Err(NO_MATCH.into()));
        assert_eq!(check(&v, &sig, None, &call()), Err(NO_MATCH.into()));
        let mut more = call();
        more.extend_from_slice(b"&Digits=9");
        assert_eq!(check(&v, &sig, query, &more), Err(NO_MATCH.into()));
        assert_eq!(check(&twilio("https://mycompany.com/other.php"), &sig, query, &call()), Err(NO_MATCH.into()));
        // A field sent twice, the same, is signed once.
        let mut twice = call();
        twice.extend_from_slice(b"&Digits=1234");
        assert_eq!(check(&v, &sig, query, &twice), Ok(()));
    }

    #[test]
    fn shared_key_webhooks_say_hmac_sha256() {
        let v = twilio("https://mycompany.com/myapp.php");
        let query = Some("foo=1&bar=2");
        let sha256 = "Rmm4Vzj+Ky7JGoWXMCsZDZuHDszLr9xvdbvitrDr4/M=";
        let settings = "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256";
        let pairs = [
            ("content-type", FORM),
            ("x-twilio-signature", sha256),
            ("x-twilio-webhooks-signature-settings", settings),
        ];
        assert_eq!(check(&v, &pairs, query, &call()), Ok(()));
        // Without the header, the signature is taken as HMAC-SHA1's, and does not match.
        assert_eq!(check(&v, &pairs[..2], query, &call()), Err(NO_MATCH.into()));
        let unknown = [pairs[0], pairs[1], ("x-twilio-webhooks-signature-settings", "algorithm=HMAC_MD5")];
        assert_eq!(
            check(&v, &unknown, query, &call()),
            Err("x-twilio-webhooks-signature-settings names an algorithm Switchyard does not know: HMAC_MD5".into())
        );
    }

    #[test]
    fn a_json_body_is_covered_by_body_sha256() {
        let v = twilio("https://mycompany.com/myapp.php");
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        let query = format!("bodySHA256={hash}");
        let pairs = [("content-type", "application/json"), ("x-twilio-signature", "y77kIzt2vzLz71DgmJGsen2scGs=")];
        assert_eq!(check(&v, &pairs, Some(&query), body), Ok(()));
        let tampered = br#"{"property": "value", "boolean": false}"#;
        assert_eq!(
            check(&v, &pairs, Some(&query), tampered),
            Err("the body's SHA-256 is not the URL's bodySHA256".into())
        );
        // A body that is neither a form nor hashed in the URL is not covered: refused.
        assert_eq!(
            check(&v, &pairs, None, body),
            Err("the body is not a form and the URL has no bodySHA256, so the signature does not cover it".into())
        );
    }

    #[test]
    fn repeated_and_unicode_fields_and_what_dev_signs() {
        let v = Verifier::Twilio {
            secrets: vec![Secret(b"12345".to_vec())],
            url: TwilioUrl::parse("https://mycompany.com/sms").unwrap(),
        };
        // Made with a multi-valued dict: To = [+1b, +1a, +1a], Body = "héllo wörld".
        let body = "To=%2B1b&Body=h%C3%A9llo+w%C3%B6rld&To=%2B1a&To=%2B1a".as_bytes();
        let pairs = [("content-type", FORM), ("x-twilio-signature", "V3xVsWNSUU1rZMk+8MJciXszliI=")];
        assert_eq!(check(&v, &pairs, None, body), Ok(()));
        // `switchyard dev` signs its curl the same way.
        assert_eq!(sign(&v, body, 0, "m"), [("X-Twilio-Signature".to_owned(), pairs[1].1.to_owned())]);
        // Malformed or missing signatures are refused with the reason.
        assert_eq!(check(&v, &pairs[..1], None, body), Err("missing x-twilio-signature header".into()));
        let bad = [pairs[0], ("x-twilio-signature", "not base64!")];
        assert_eq!(check(&v, &bad, None, body), Err("x-twilio-signature is not base64".into()));
    }

    #[test]
    fn urls_are_spelled_with_and_without_their_port() {
        let url = TwilioUrl::parse("https://hooks.example.com/webhooks/twilio").unwrap();
        assert_eq!(url.without_port, "https://hooks.example.com/webhooks/twilio");
        assert_eq!(url.with_port, "https://hooks.example.com:443/webhooks/twilio");
        let url = TwilioUrl::parse("http://10.0.0.7:8080/t").unwrap();
        assert_eq!(
            (url.without_port.as_str(), url.with_port.as_str()),
            ("http://10.0.0.7/t", "http://10.0.0.7:8080/t")
        );
        assert_eq!(TwilioUrl::parse("http://[::1]/t").unwrap().with_port, "http://[::1]:80/t");
        assert_eq!(TwilioUrl::parse("https://h.example").unwrap().without_port, "https://h.example");
        for bad in ["/webhooks/twilio", "ftp://h/x", "https://h/x?a=1", "https://u:p@h/x", "not a url"] {
            assert!(TwilioUrl::parse(bad).is_err(), "{bad}");
        }
    }
}

/// SendGrid's vector: a key pair made with `cryptography`, the signature by its ECDSA, and
/// accepted by SendGrid's library (sendgrid 6, `EventWebhook.verify_signature`).
mod sendgrid {
    use super::*;
    use crate::routes::verify::PublicKey;

    const KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEAsXQNCMO7zJr/CxME1R9dqZ/SUsl2zC3k8/j5lxTHsSgD6H2JgzgSSripZSoymTXIuTxy0zaMYgV2tVnIGl2iQ==";
    const SIGNATURE: &str =
        "MEUCIGcsuum8CqHBqxji9XIx33hG+iMTgWQdOcFvFQRkXsDvAiEAutR+gE9zEEGFRJiASOw5L3NaN0q7m2dKvdYfULG2tBQ=";
    const BODY: &str = "[{\"email\":\"example@test.com\",\"event\":\"bounce\",\"reason\":\"550 5.1.1 no such user\",\"sg_event_id\":\"sg_ev_1\",\"timestamp\":1600112492}]\r\n";
    const T: i64 = 1600112502;

    fn sendgrid(keys: &[&str]) -> Verifier {
        Verifier::SendGrid { keys: keys.iter().map(|k| PublicKey::parse(k).unwrap()).collect(), tolerance_secs: 300 }
    }

    fn signed(signature: &str, t: &str) -> HeaderMap {
        headers(&[("x-twilio-email-event-webhook-signature", signature), ("x-twilio-email-event-webhook-timestamp", t)])
    }

    #[test]
    fn the_librarys_vector_verifies_and_nothing_else_does() {
        let t = T.to_string();
        // Another key first: a rotation keeps both.
        let other = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEQh0lLl1szzL79NkAMgFXhvXZ9zukxSI+7TaE0B0qof9DbaH9jGIFMaJA46+eswNENvyJrO8hND2D8BZ+AbtKqQ==";
        let v = sendgrid(&[other, KEY]);
        assert_eq!(verify(&v, &signed(SIGNATURE, &t), BODY.as_bytes(), T + 300), Ok(()));
        assert_eq!(verify(&v, &signed(SIGNATURE, &t), BODY.trim_end().as_bytes(), T), Err(NO_MATCH.into()));
        assert_eq!(verify(&v, &signed(SIGNATURE, &(T + 1).to_string()), BODY.as_bytes(), T), Err(NO_MATCH.into()));
        assert_eq!(verify(&sendgrid(&[other]), &signed(SIGNATURE, &t), BODY.as_bytes(), T), Err(NO_MATCH.into()));
        let stale = verify(&v, &signed(SIGNATURE, &t), BODY.as_bytes(), T + 301);
        assert_eq!(stale, Err("signature timestamp is outside the 300 s tolerance".into()));
        let bad = verify(&v, &signed("not base64!", &t), BODY.as_bytes(), T);
        assert_eq!(bad, Err("x-twilio-email-event-webhook-signature is not base64".into()));
        let missing = verify(&v, &HeaderMap::new(), BODY.as_bytes(), T);
        assert_eq!(missing, Err("missing x-twilio-email-event-webhook-timestamp header".into()));
        // Nothing can sign for SendGrid but SendGrid.
        assert!(sign(&v, BODY.as_bytes(), T, "m").is_empty());
    }

    #[test]
    fn keys_are_base64_der_or_pem_of_p256() {
        let pem = format!("-----BEGIN PUBLIC KEY-----\n{}\n{}\n-----END PUBLIC KEY-----\n", &KEY[..64], &KEY[64..]);
        let v = sendgrid(&[&pem]);
        assert_eq!(verify(&v, &signed(SIGNATURE, &T.to_string()), BODY.as_bytes(), T), Ok(()));
        assert!(PublicKey::parse("not a key").unwrap_err().contains("not base64"));
        assert!(PublicKey::parse("aGVsbG8=").unwrap_err().contains("not an ECDSA P-256 public key"));
    }
}

/// Square's vector: made with Python's `hmac` and accepted by Square's official library
/// (squareup 46, `square.utils.webhooks_helper.verify_signature`), which refused it for the
/// same URL with a trailing `/`.
mod square {
    use super::*;

    const KEY: &str = "Zq3uZ6_jAq9XGkXW1zvq1w";
    const URL: &str = "https://hooks.example.com/webhooks/square";
    const BODY: &str = r#"{"merchant_id":"6SSW7HV8K2ST5","type":"payment.updated","event_id":"13b867cf-db3d-4b1c-90b6-2f32a9d78124","created_at":"2023-11-06T14:30:00.000Z","data":{"type":"payment","id":"KkAkhdMsgzn59SM8A89WgKwekxLZY","object":{"payment":{"id":"KkAkhdMsgzn59SM8A89WgKwekxLZY","amount_money":{"amount":10000,"currency":"USD"},"status":"COMPLETED","order_id":"12345","reference_id":"12345","customer_id":"789","source_type":"CARD"}}}}"#;
    const SIGNATURE: &str = "Oa/9tJuU+k5qalHTPn2UQRamoAUXCuC2grjMWUoj+/w=";

    fn square(url: &str, secrets: &[&str]) -> Verifier {
        Verifier::Square { secrets: secrets.iter().map(|s| key(s.as_bytes())).collect(), url: url.into() }
    }

    fn signed(signature: &str) -> HeaderMap {
        headers(&[("x-square-hmacsha256-signature", signature)])
    }

    #[test]
    fn the_official_librarys_vector_verifies_and_is_what_switchyard_signs() {
        let v = square(URL, &["an-old-signature-key", KEY]);
        assert_eq!(verify(&v, &signed(SIGNATURE), BODY.as_bytes(), 0), Ok(()));
        // No timestamp: any time.
        assert_eq!(verify(&v, &signed(SIGNATURE), BODY.as_bytes(), i64::MAX), Ok(()));
        let own = sign(&square(URL, &[KEY]), BODY.as_bytes(), 0, "m");
        assert_eq!(own, vec![("X-Square-HmacSha256-Signature".to_owned(), SIGNATURE.to_owned())]);
    }

    #[test]
    fn another_url_body_or_key_breaks_it() {
        let other_url = square(&format!("{URL}/"), &[KEY]);
        assert_eq!(verify(&other_url, &signed(SIGNATURE), BODY.as_bytes(), 0), Err(NO_MATCH.into()));
        let v = square(URL, &[KEY]);
        assert_eq!(verify(&v, &signed(SIGNATURE), BODY.replace("10000", "10001").as_bytes(), 0), Err(NO_MATCH.into()));
        assert_eq!(verify(&square(URL, &["another"]), &signed(SIGNATURE), BODY.as_bytes(), 0), Err(NO_MATCH.into()));
        let not_a_digest = Err("x-square-hmacsha256-signature is not a valid digest".to_owned());
        assert_eq!(verify(&v, &signed("not base64!"), BODY.as_bytes(), 0), not_a_digest);
        // Base64, but not 32 bytes.
        assert_eq!(verify(&v, &signed("aGVsbG8="), BODY.as_bytes(), 0), not_a_digest);
        let long = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
        assert_eq!(verify(&v, &signed(&long), BODY.as_bytes(), 0), not_a_digest);
        let missing = verify(&v, &HeaderMap::new(), BODY.as_bytes(), 0);
        assert_eq!(missing, Err("missing x-square-hmacsha256-signature header".into()));
    }
}

/// Secrets sent as they are: a token in a header, HTTP Basic credentials.
mod shared_secrets {
    use super::*;
    use crate::routes::verify::Secret;
    use http::header::AUTHORIZATION;

    fn secrets(values: &[&str]) -> Vec<Secret> {
        values.iter().map(|s| Secret(s.as_bytes().to_vec())).collect()
    }

    fn bearer(tokens: &[&str]) -> Verifier {
        Verifier::Token { secrets: secrets(tokens), header: AUTHORIZATION, prefix: "Bearer ".into() }
    }

    #[test]
    fn a_bearer_token_is_one_of_the_secrets_after_its_scheme_in_either_case() {
        let v = bearer(&["old-token-0123456789", "new-token-0123456789"]);
        for value in ["Bearer new-token-0123456789", "bearer old-token-0123456789", "BEARER new-token-0123456789 "] {
            assert_eq!(verify(&v, &headers(&[("authorization", value)]), b"{}", 0), Ok(()), "{value}");
        }
        let refused = |value: &str| verify(&v, &headers(&[("authorization", value)]), b"{}", 0).unwrap_err();
        assert_eq!(refused("Bearer new-token-012345678"), "authorization holds no known token");
        assert_eq!(refused("Bearer new-token-01234567890"), "authorization holds no known token");
        assert_eq!(refused("Bearer "), "authorization holds no known token");
        assert_eq!(refused("new-token-0123456789"), "authorization does not start with 'Bearer'");
        assert_eq!(refused("Basic bmV3LXRva2VuLTAxMjM0NTY3ODk="), "authorization does not start with 'Bearer'");
        // A multi-byte character where the prefix would end is no panic, just a refusal.
        let mut odd = HeaderMap::new();
        odd.insert(AUTHORIZATION, HeaderValue::from_bytes("Beare\u{e9}x".as_bytes()).unwrap());
        assert!(verify(&v, &odd, b"{}", 0).is_err());
        assert_eq!(verify(&v, &HeaderMap::new(), b"{}", 0), Err("missing authorization header".into()));
    }

    #[test]
    fn gitlabs_token_has_a_header_of_its_own_and_no_prefix() {
        let header = HeaderName::from_static("x-gitlab-token");
        let v = Verifier::Token { secrets: secrets(&["gitlab-secret-token"]), header, prefix: String::new() };
        assert_eq!(verify(&v, &headers(&[("x-gitlab-token", "gitlab-secret-token")]), b"{}", 0), Ok(()));
        assert!(verify(&v, &headers(&[("x-gitlab-token", "gitlab-secret-tokem")]), b"{}", 0).is_err());
        assert!(verify(&v, &headers(&[("authorization", "Bearer gitlab-secret-token")]), b"{}", 0).is_err());
        assert_eq!(sign(&v, b"{}", 0, "m"), vec![("x-gitlab-token".to_owned(), "gitlab-secret-token".to_owned())]);
    }

    #[test]
    fn basic_credentials_are_one_of_the_user_password_secrets() {
        let v = Verifier::Basic { secrets: secrets(&["adyen:a-long-password-1", "adyen:a-long-password-2"]) };
        let basic =
            |credentials: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials));
        let check = |value: &str| verify(&v, &headers(&[("authorization", value)]), b"{}", 0);
        assert_eq!(check(&basic("adyen:a-long-password-2")), Ok(()));
        assert_eq!(check(&basic("adyen:a-long-password-1").replace("Basic", "basic")), Ok(()));
        let wrong = Err("unknown user or wrong password".to_owned());
        assert_eq!(check(&basic("adyen:a-long-password-3")), wrong);
        assert_eq!(check(&basic("adyeN:a-long-password-1")), wrong);
        assert_eq!(check(&basic("adyen:")), wrong);
        assert_eq!(check("Basic not*base64"), Err("authorization's Basic credentials are not base64".into()));
        assert!(check("Bearer adyen:a-long-password-1").unwrap_err().starts_with("authorization is not Basic"));
        // What `dev` and a dispatcher's `sign: { kind: basic }` send.
        let sent = sign(&v, b"{}", 0, "m");
        assert_eq!(sent, vec![("Authorization".to_owned(), basic("adyen:a-long-password-1"))]);
        assert_eq!(verify(&v, &headers(&[("authorization", &sent[0].1)]), b"{}", 0), Ok(()));
    }
}
