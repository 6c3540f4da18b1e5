//! Twilio's scheme, as its official library (`twilio.request_validator`) checks it: the
//! base64 HMAC in `X-Twilio-Signature` is over the URL Twilio called (with its query) followed
//! by each form field's name and value, sorted by name then value, duplicates once. A JSON
//! body is covered instead by `bodySHA256` in the URL, the hex SHA-256 of the body. The key is
//! the account's Auth Token, with HMAC-SHA1; a webhook signed with a shared key says
//! `algorithm=HMAC_SHA256` in `X-Twilio-Webhooks-Signature-Settings`.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::{digest, hmac};
use base64::Engine;
use http::HeaderMap;
use http::header::CONTENT_TYPE;

use super::{NO_MATCH, header_str};
use crate::pipeline::parse::{FORM, media_type};
use crate::routes::verify::{Secret, TwilioUrl};

const SIGNATURE: &str = "x-twilio-signature";
const SETTINGS: &str = "x-twilio-webhooks-signature-settings";

pub(super) fn verify(
    secrets: &[Secret],
    url: &TwilioUrl,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<(), String> {
    let signature = header_str(headers, SIGNATURE)?;
    let candidate = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| format!("{SIGNATURE} is not base64"))?;
    let algorithm = algorithm(headers)?;
    let signed = signed_text(url, headers, query, body)?;
    for secret in secrets {
        let key = hmac::Key::new(algorithm, &secret.0);
        // Twilio has signed the URL with its port and without; its library accepts either.
        for text in &signed {
            let tag = hmac::sign(&key, text);
            if verify_slices_are_equal(tag.as_ref(), &candidate).is_ok() {
                return Ok(());
            }
        }
    }
    Err(NO_MATCH.into())
}

/// `X-Twilio-Signature` for a form `body` posted to `url` with `query`: how `switchyard dev`
/// signs its ready-to-paste request (with the first secret).
pub(super) fn sign(secrets: &[Secret], url: &TwilioUrl, query: Option<&str>, body: &[u8]) -> Vec<(String, String)> {
    let Some(secret) = secrets.first() else { return Vec::new() };
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &secret.0);
    let mut text = url.without_port.clone().into_bytes();
    if let Some(q) = query {
        text.push(b'?');
        text.extend_from_slice(q.as_bytes());
    }
    text.extend(fields(body));
    let tag = hmac::sign(&key, &text);
    vec![("X-Twilio-Signature".to_owned(), base64::engine::general_purpose::STANDARD.encode(tag.as_ref()))]
}

fn algorithm(headers: &HeaderMap) -> Result<hmac::Algorithm, String> {
    let Some(value) = headers.get(SETTINGS) else { return Ok(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY) };
    let value = value.to_str().map_err(|_| format!("{SETTINGS} header is not visible ASCII"))?;
    let named = value
        .split(',')
        .filter_map(|part| part.split_once('='))
        .find(|(name, value)| name.trim() == "algorithm" && !value.trim().is_empty())
        .map(|(_, value)| value.trim().to_ascii_uppercase());
    match named.as_deref() {
        None | Some("HMAC_SHA1") => Ok(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
        Some("HMAC_SHA256") => Ok(hmac::HMAC_SHA256),
        Some(other) => Err(format!("{SETTINGS} names an algorithm Switchyard does not know: {other}")),
    }
}

/// What Twilio signed, spelled with the URL's port and without.
fn signed_text(url: &TwilioUrl, headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Result<[Vec<u8>; 2], String> {
    let form = headers.get(CONTENT_TYPE).and_then(media_type).as_deref() == Some(FORM);
    let body_hash = query.and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "bodySHA256"));
    let tail = match body_hash {
        Some((_, want)) => {
            let got = hex::encode(digest::digest(&digest::SHA256, body));
            if verify_slices_are_equal(got.as_bytes(), want.as_bytes()).is_err() {
                return Err("the body's SHA-256 is not the URL's bodySHA256".into());
            }
            Vec::new()
        }
        None if form => fields(body),
        None if body.is_empty() => Vec::new(),
        None => {
            return Err(
                "the body is not a form and the URL has no bodySHA256, so the signature does not cover it".into()
            );
        }
    };
    let spell = |url: &str| {
        let mut text = url.as_bytes().to_vec();
        if let Some(q) = query {
            text.push(b'?');
            text.extend_from_slice(q.as_bytes());
        }
        text.extend_from_slice(&tail);
        text
    };
    Ok([spell(&url.without_port), spell(&url.with_port)])
}

/// The form's fields as Twilio signs them: name and value, sorted, each pair once.
fn fields(body: &[u8]) -> Vec<u8> {
    let mut pairs: Vec<_> = form_urlencoded::parse(body).collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs.iter().flat_map(|(name, value)| [name.as_bytes(), value.as_bytes()]).flatten().copied().collect()
}
