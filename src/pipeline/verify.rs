//! Stage 1: signature verification over the raw body, before anything parses it.
//!
//! The HMAC over the body is computed once per secret and compared with each candidate
//! signature in constant time. HMAC-SHA256 is aws-lc's (already linked for TLS), not RustCrypto's
//! `hmac` + `sha2`: on a CPU without SHA extensions its assembly SHA-256 takes half the time
//! (bench/README.md, *The signature's SHA-256*), and with them it uses them too. Twilio's
//! scheme has a file of its own (`verify/twilio.rs`), and so has Adyen's, whose signatures are
//! inside the body (`verify/adyen.rs`); SendGrid's is an ECDSA P-256 signature, checked
//! with its public key. A token or Basic credentials (no signature: the secret itself is sent)
//! are compared by their SHA-256 digests, in constant time. A source that lists several schemes
//! (`Verifier::All`, Adyen's Basic credentials and HMAC) is checked against each in turn.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::{digest, hmac};
use base64::Engine;
use http::HeaderMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Inbound;
use crate::routes::verify::{Encoding, Secret, SigningKey, Verifier};

pub mod adyen;
mod twilio;

/// Most signatures one header may carry; more is treated as malformed.
const MAX_SIGNATURES: usize = 16;

/// Checks a webhook against its source's scheme; the error is safe to show the sender.
pub fn verify(verifier: &Verifier, input: &Inbound) -> Result<(), String> {
    check(verifier, input).map_err(|(_, why)| why)
}

/// [`verify`], naming the scheme that refused (one of `All`'s, in their order).
pub fn check<'v>(verifier: &'v Verifier, input: &Inbound) -> Result<(), (&'v Verifier, String)> {
    match verifier {
        Verifier::All(all) => all.iter().try_for_each(|v| check(v, input)),
        one => verify_one(one, input).map_err(|why| (one, why)),
    }
}

fn verify_one(verifier: &Verifier, input: &Inbound) -> Result<(), String> {
    let Inbound { headers, body, now, query, .. } = *input;
    match verifier {
        Verifier::None => Ok(()),
        Verifier::All(_) => check(verifier, input).map_err(|(_, why)| why),
        Verifier::Stripe { secrets, tolerance_secs } => stripe(secrets, *tolerance_secs, headers, body, now),
        Verifier::HmacSha256 { secrets, header, prefix, encoding } => {
            let value = header_str(headers, header.as_str())?;
            let digest = value
                .strip_prefix(prefix.as_str())
                .ok_or_else(|| format!("{header} does not start with '{prefix}'"))?;
            let candidate = match encoding {
                Encoding::Hex => hex::decode(digest.trim()).ok(),
                Encoding::Base64 => base64::engine::general_purpose::STANDARD.decode(digest.trim()).ok(),
            }
            .ok_or_else(|| format!("{header} is not a valid digest"))?;
            matches_any(secrets, &[body], &[candidate])
        }
        Verifier::StandardWebhooks { secrets, tolerance_secs } => {
            let id = header_str(headers, "webhook-id")?;
            let ts = header_str(headers, "webhook-timestamp")?;
            let t: i64 = ts.trim().parse().map_err(|_| "webhook-timestamp is not a unix timestamp".to_string())?;
            fresh(t, now, *tolerance_secs)?;
            let sigs = header_str(headers, "webhook-signature")?;
            let candidates: Vec<Vec<u8>> = sigs
                .split(' ')
                .filter_map(|s| s.strip_prefix("v1,"))
                .take(MAX_SIGNATURES + 1)
                .filter_map(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .collect();
            check_count(candidates.len(), "webhook-signature")?;
            matches_any(secrets, &[id.as_bytes(), b".", ts.as_bytes(), b".", body], &candidates)
        }
        Verifier::Slack { secrets, tolerance_secs, headers: names } => {
            let ts = header_str(headers, names.timestamp)?;
            let t: i64 = ts.trim().parse().map_err(|_| format!("{} is not a unix timestamp", names.timestamp))?;
            fresh(t, now, *tolerance_secs)?;
            let signature = header_str(headers, names.signature)?;
            let digest = signature
                .strip_prefix("v0=")
                .ok_or_else(|| format!("{} does not start with 'v0='", names.signature))?;
            let mut candidate = [0u8; 32];
            hex::decode_to_slice(digest.trim(), &mut candidate)
                .map_err(|_| format!("{} is not a valid digest", names.signature))?;
            matches_any(secrets, &[b"v0:", ts.as_bytes(), b":", body], &[candidate])
        }
        Verifier::Twitch { secrets, tolerance_secs } => {
            let id = header_str(headers, TWITCH_ID)?;
            let ts = header_str(headers, TWITCH_TIMESTAMP)?;
            let at = OffsetDateTime::parse(ts.trim(), &Rfc3339)
                .map_err(|_| format!("{TWITCH_TIMESTAMP} is not an RFC 3339 timestamp"))?;
            fresh(at.unix_timestamp(), now, *tolerance_secs)?;
            let signature = header_str(headers, TWITCH_SIGNATURE)?;
            let digest = signature
                .strip_prefix("sha256=")
                .ok_or_else(|| format!("{TWITCH_SIGNATURE} does not start with 'sha256='"))?;
            let mut candidate = [0u8; 32];
            hex::decode_to_slice(digest.trim(), &mut candidate)
                .map_err(|_| format!("{TWITCH_SIGNATURE} is not a valid digest"))?;
            matches_any(secrets, &[id.as_bytes(), ts.as_bytes(), body], &[candidate])
        }
        Verifier::Twilio { secrets, url } => twilio::verify(secrets, url, headers, query, body),
        Verifier::SendGrid { keys, tolerance_secs } => {
            let ts = header_str(headers, SENDGRID_TIMESTAMP)?;
            let t: i64 = ts.trim().parse().map_err(|_| format!("{SENDGRID_TIMESTAMP} is not a unix timestamp"))?;
            fresh(t, now, *tolerance_secs)?;
            let signature = base64::engine::general_purpose::STANDARD
                .decode(header_str(headers, SENDGRID_SIGNATURE)?.trim())
                .map_err(|_| format!("{SENDGRID_SIGNATURE} is not base64"))?;
            let signed = [ts.as_bytes(), body].concat();
            match keys.iter().any(|k| k.0.verify_sig(&signed, &signature).is_ok()) {
                true => Ok(()),
                false => Err(NO_MATCH.into()),
            }
        }
        Verifier::Square { secrets, url } => {
            let signature = header_str(headers, SQUARE_SIGNATURE)?;
            let mut candidate = [0u8; 32];
            match base64::engine::general_purpose::STANDARD.decode_slice(signature.trim(), &mut candidate) {
                Ok(32) => matches_any(secrets, &[url.as_bytes(), body], &[candidate]),
                _ => Err(format!("{SQUARE_SIGNATURE} is not a valid digest")),
            }
        }
        Verifier::Adyen { secrets } => adyen::verify(secrets, body),
        Verifier::Token { secrets, header, prefix } => {
            let value = header_str(headers, header.as_str())?;
            let token = strip_prefix_ignore_case(value, prefix)
                .ok_or_else(|| format!("{header} does not start with '{}'", prefix.trim_end()))?;
            known(secrets, token.trim().as_bytes())
                .then_some(())
                .ok_or_else(|| format!("{header} holds no known token"))
        }
        Verifier::Basic { secrets } => {
            let value = header_str(headers, "authorization")?;
            let encoded = strip_prefix_ignore_case(value, "Basic ")
                .ok_or("authorization is not Basic credentials (Authorization: Basic <base64 of user:password>)")?;
            let credentials = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| "authorization's Basic credentials are not base64".to_string())?;
            known(secrets, &credentials).then_some(()).ok_or_else(|| "unknown user or wrong password".into())
        }
    }
}

/// `value` without `prefix`, whose letters may be in either case (`Bearer`, `bearer`: RFC 9110
/// auth schemes are case-insensitive).
fn strip_prefix_ignore_case<'v>(value: &'v str, prefix: &str) -> Option<&'v str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &value[prefix.len()..])
}

/// True when `given` is one of `secrets`. Their SHA-256 digests are compared, in constant time,
/// so neither the comparison's time nor its length check tells how much of a guess was right.
fn known(secrets: &[Secret], given: &[u8]) -> bool {
    secrets.iter().any(|s| same_secret(given, &s.0))
}

/// True when `given` is `secret`, compared by SHA-256 digest in constant time: neither the
/// time nor a length check tells how much of a guess was right.
pub fn same_secret(given: &[u8], secret: &[u8]) -> bool {
    let (given, secret) = (digest::digest(&digest::SHA256, given), digest::digest(&digest::SHA256, secret));
    verify_slices_are_equal(secret.as_ref(), given.as_ref()).is_ok()
}

const SQUARE_SIGNATURE: &str = "x-square-hmacsha256-signature";

const SENDGRID_TIMESTAMP: &str = "x-twilio-email-event-webhook-timestamp";
const SENDGRID_SIGNATURE: &str = "x-twilio-email-event-webhook-signature";
const TWITCH_ID: &str = "twitch-eventsub-message-id";
const TWITCH_TIMESTAMP: &str = "twitch-eventsub-message-timestamp";
const TWITCH_SIGNATURE: &str = "twitch-eventsub-message-signature";

fn stripe(secrets: &[SigningKey], tolerance: u64, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), String> {
    let header = header_str(headers, "stripe-signature")?;
    let mut t: Option<&str> = None;
    // A SHA-256 MAC is 32 bytes: decoded in place, without an allocation per signature.
    let mut candidates = [[0u8; 32]; MAX_SIGNATURES];
    let (mut seen, mut count) = (0, 0);
    for item in header.split(',') {
        let Some((k, v)) = item.trim().split_once('=') else {
            return Err("Stripe-Signature is malformed: expected t=<timestamp>,v1=<signature>".into());
        };
        match k {
            "t" if t.is_none() => t = Some(v),
            "t" => return Err("Stripe-Signature has more than one t".into()),
            "v1" => {
                seen += 1;
                if seen > MAX_SIGNATURES {
                    return Err(format!("Stripe-Signature has more than {MAX_SIGNATURES} v1 signatures"));
                }
                // A v1 that is not 64 hex digits can never match; keep looking at the others.
                if hex::decode_to_slice(v, &mut candidates[count]).is_ok() {
                    count += 1;
                }
            }
            _ => {} // other schemes (v0, future ones) are ignored, as Stripe's libraries do
        }
    }
    let t = t.ok_or("Stripe-Signature has no timestamp (t=)")?;
    let ts: i64 = t.parse().map_err(|_| "Stripe-Signature timestamp is not a unix timestamp".to_string())?;
    check_count(seen, "Stripe-Signature")?;
    fresh(ts, now, tolerance)?;
    matches_any(secrets, &[t.as_bytes(), b".", body], &candidates[..count])
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, String> {
    let value = headers.get(name).ok_or_else(|| format!("missing {name} header"))?;
    value.to_str().map_err(|_| format!("{name} header is not visible ASCII"))
}

fn check_count(n: usize, header: &str) -> Result<(), String> {
    match n {
        0 => Err(format!("{header} has no v1 signature")),
        n if n > MAX_SIGNATURES => Err(format!("{header} has more than {MAX_SIGNATURES} signatures")),
        _ => Ok(()),
    }
}

fn fresh(t: i64, now: i64, tolerance: u64) -> Result<(), String> {
    if now.abs_diff(t) > tolerance {
        return Err(format!("signature timestamp is outside the {tolerance} s tolerance"));
    }
    Ok(())
}

/// True when any candidate equals HMAC(secret, parts…) for any secret.
fn matches_any<C: AsRef<[u8]>>(secrets: &[SigningKey], parts: &[&[u8]], candidates: &[C]) -> Result<(), String> {
    if candidates.is_empty() {
        return Err(NO_MATCH.into());
    }
    for secret in secrets {
        let tag = mac(&secret.key, parts);
        if candidates.iter().any(|c| verify_slices_are_equal(tag.as_ref(), c.as_ref()).is_ok()) {
            return Ok(());
        }
    }
    Err(NO_MATCH.into())
}

/// HMAC-SHA256 of the concatenated `parts` under `key`.
fn mac(key: &hmac::Key, parts: &[&[u8]]) -> hmac::Tag {
    let mut context = hmac::Context::with_key(key);
    for part in parts {
        context.update(part);
    }
    context.sign()
}

const NO_MATCH: &str = "no signature matches";

/// Signs like Stripe does: the `Stripe-Signature` header value for `body` at time `t`.
pub fn stripe_signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    stripe_header(&hmac::Key::new(hmac::HMAC_SHA256, secret), t, body)
}

fn stripe_header(key: &hmac::Key, t: i64, body: &[u8]) -> String {
    stripe_header_of(std::slice::from_ref(key), t, body)
}

/// `t=<t>,v1=<sig>[,v1=<sig>…]`: one signature per key, as Stripe sends during a rotation.
fn stripe_header_of(keys: &[hmac::Key], t: i64, body: &[u8]) -> String {
    let t = t.to_string();
    let mut header = format!("t={t}");
    for key in keys {
        header.push_str(",v1=");
        header.push_str(&hex::encode(mac(key, &[t.as_bytes(), b".", body])));
    }
    header
}

/// The headers that make `verifier` accept `body` at time `now`: how a dispatcher signs its
/// calls (`sign:`) and how `switchyard dev` signs its ready-to-paste requests. Stripe and
/// Standard Webhooks carry a signature for every secret (so a receiver rotating its secret
/// accepts the call under either); `hmac-sha256`, Slack's (Zoom's) and Twitch's have room for one, the
/// first secret's, and so do Square's, a token and Basic credentials (the secret itself, sent
/// as it is). `id` is the Standard Webhooks `webhook-id` (and Twitch's message id). Empty for
/// `none` or no secret.
pub fn sign(verifier: &Verifier, body: &[u8], now: i64, id: &str) -> Vec<(String, String)> {
    sign_request(verifier, None, body, now, id)
}

/// As [`sign`], for a request whose URL has `query`, which Twilio's signature covers.
pub fn sign_request(
    verifier: &Verifier,
    query: Option<&str>,
    body: &[u8],
    now: i64,
    id: &str,
) -> Vec<(String, String)> {
    let base64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let keys = |secrets: &[SigningKey]| secrets.iter().map(|s| s.key.clone()).collect::<Vec<_>>();
    match verifier {
        Verifier::None => Vec::new(),
        Verifier::All(all) => all.iter().flat_map(|v| sign_request(v, query, body, now, id)).collect(),
        Verifier::Stripe { secrets, .. } if !secrets.is_empty() => {
            vec![("Stripe-Signature".to_owned(), stripe_header_of(&keys(secrets), now, body))]
        }
        Verifier::HmacSha256 { secrets, header, prefix, encoding } => secrets
            .first()
            .map(|s| {
                let digest = mac(&s.key, &[body]);
                let digest = match encoding {
                    Encoding::Hex => hex::encode(digest),
                    Encoding::Base64 => base64(digest.as_ref()),
                };
                (header.as_str().to_owned(), format!("{prefix}{digest}"))
            })
            .into_iter()
            .collect(),
        Verifier::StandardWebhooks { secrets, .. } if !secrets.is_empty() => {
            let t = now.to_string();
            let signatures: Vec<String> = secrets
                .iter()
                .map(|s| {
                    format!("v1,{}", base64(mac(&s.key, &[id.as_bytes(), b".", t.as_bytes(), b".", body]).as_ref()))
                })
                .collect();
            vec![
                ("webhook-id".to_owned(), id.to_owned()),
                ("webhook-timestamp".to_owned(), t),
                ("webhook-signature".to_owned(), signatures.join(" ")),
            ]
        }
        Verifier::Slack { secrets, headers, .. } => secrets
            .first()
            .map(|s| {
                let t = now.to_string();
                let digest = hex::encode(mac(&s.key, &[b"v0:", t.as_bytes(), b":", body]));
                vec![(headers.timestamp.to_owned(), t), (headers.signature.to_owned(), format!("v0={digest}"))]
            })
            .unwrap_or_default(),
        Verifier::Twitch { secrets, .. } => secrets
            .first()
            .map(|s| {
                // Whole seconds: what Switchyard checks, and any RFC 3339 reader takes.
                let at = OffsetDateTime::from_unix_timestamp(now).unwrap_or(OffsetDateTime::UNIX_EPOCH);
                let t = at.format(&Rfc3339).unwrap_or_default();
                let digest = hex::encode(mac(&s.key, &[id.as_bytes(), t.as_bytes(), body]));
                vec![
                    ("Twitch-Eventsub-Message-Id".to_owned(), id.to_owned()),
                    ("Twitch-Eventsub-Message-Timestamp".to_owned(), t),
                    ("Twitch-Eventsub-Message-Signature".to_owned(), format!("sha256={digest}")),
                ]
            })
            .unwrap_or_default(),
        Verifier::Twilio { secrets, url } => twilio::sign(secrets, url, query, body),
        Verifier::Square { secrets, url } => secrets
            .first()
            .map(|s| {
                ("X-Square-HmacSha256-Signature".to_owned(), base64(mac(&s.key, &[url.as_bytes(), body]).as_ref()))
            })
            .into_iter()
            .collect(),
        Verifier::Token { secrets, header, prefix } => secrets
            .first()
            .map(|s| (header.as_str().to_owned(), format!("{prefix}{}", String::from_utf8_lossy(&s.0))))
            .into_iter()
            .collect(),
        Verifier::Basic { secrets } => secrets
            .first()
            .map(|s| ("Authorization".to_owned(), format!("Basic {}", base64(&s.0))))
            .into_iter()
            .collect(),
        // SendGrid signs with its private key: nothing here can. Adyen signs inside the body
        // (`adyen::sign`), not in a header.
        Verifier::Stripe { .. }
        | Verifier::StandardWebhooks { .. }
        | Verifier::SendGrid { .. }
        | Verifier::Adyen { .. } => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
