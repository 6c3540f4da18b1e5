//! OAuth 2.0 access tokens for a dispatcher's calls (`oauth2:` of a rule): got from the
//! authorization server with the client-credentials grant (RFC 6749, section 4.4), kept until
//! shortly before they expire, one request at a time per client however many calls wait, and
//! dropped when a service answers 401 (the next attempt gets a new one).
//!
//! Written here rather than with the `oauth2` crate: the grant is one form POST, and that
//! crate would bring a second reqwest.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;

use crate::routes::dispatch::OAuth2;

/// How long before it expires a token is replaced.
const EARLY: Duration = Duration::from_secs(30);
/// A token whose answer says nothing of its lifetime is kept this long.
const UNSAID_LIFETIME: Duration = Duration::from_secs(300);
/// Longest wait for the token endpoint.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The tokens of one dispatcher's clients, by client (token endpoint, id, scopes, params).
#[derive(Default)]
pub struct Tokens {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Token>>>>>,
}

#[derive(Clone)]
struct Token {
    value: String,
    renew_at: Instant,
}

/// The token endpoint's answer (RFC 6749, section 5.1).
#[derive(Deserialize)]
struct Issued {
    access_token: String,
    token_type: String,
    expires_in: Option<f64>,
}

impl Tokens {
    /// A token for `client`'s calls: the kept one, or a new one from the token endpoint. The
    /// error is a sentence for logs and dead letters, without the secret.
    pub async fn get(&self, http: &reqwest::Client, client: &OAuth2) -> Result<String, String> {
        let slot = self.slot(client);
        // Held while a token is fetched: calls that wait take the one it gets.
        let mut kept = slot.lock().await;
        if let Some(token) = kept.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(token.value.clone());
        }
        let token = fetch(http, client).await?;
        let value = token.value.clone();
        *kept = Some(token);
        Ok(value)
    }

    /// Drops `client`'s token if it is still `value` (a service refused it: 401).
    pub async fn forget(&self, client: &OAuth2, value: &str) {
        let slot = self.slot(client);
        let mut kept = slot.lock().await;
        if kept.as_ref().is_some_and(|t| t.value == value) {
            *kept = None;
        }
    }

    fn slot(&self, client: &OAuth2) -> Arc<tokio::sync::Mutex<Option<Token>>> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(client.cache_key()).or_default().clone()
    }
}

/// Largest token answer read: a token is a few KiB at most.
const MAX_ANSWER: usize = 64 * 1024;

/// The answer's body, refused past [`MAX_ANSWER`].
async fn read_capped(mut res: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| format!("the token endpoint's answer broke off: {e}"))? {
        if bytes.len() + chunk.len() > MAX_ANSWER {
            return Err(format!("the token endpoint's answer is larger than {} KiB", MAX_ANSWER / 1024));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// One token request.
async fn fetch(http: &reqwest::Client, client: &OAuth2) -> Result<Token, String> {
    let secret = String::from_utf8_lossy(&client.client_secret.0);
    let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
    let scope = client.scopes.join(" ");
    if !scope.is_empty() {
        form.push(("scope", &scope));
    }
    form.extend(client.params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut req = http.post(&client.token_url).timeout(TIMEOUT).header("accept", "application/json");
    if client.in_body {
        form.push(("client_id", &client.client_id));
        form.push(("client_secret", &secret));
    } else {
        // RFC 6749, section 2.3.1: each form-encoded, then HTTP Basic.
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let credentials = format!("{}:{}", encode(&client.client_id), encode(&secret));
        let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
        req = req.header("authorization", format!("Basic {basic}"));
    }
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&form).finish();
    let asked = Instant::now();
    let res =
        req.header("content-type", "application/x-www-form-urlencoded").body(body).send().await.map_err(|e| {
            format!("the token endpoint did not answer: {}", crate::text::error_chain(&e.without_url()))
        })?;
    let status = res.status();
    let bytes = read_capped(res).await?;
    if !status.is_success() {
        let start =
            String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).split_whitespace().collect::<Vec<_>>().join(" ");
        return Err(format!("the token endpoint answered HTTP {}: {start}", status.as_u16()));
    }
    let issued: Issued = serde_json::from_slice(&bytes)
        .map_err(|e| format!("the token endpoint's answer is not a token (RFC 6749 5.1): {e}"))?;
    if !issued.token_type.eq_ignore_ascii_case("bearer") {
        return Err(format!("the token endpoint issued a '{}' token, not a bearer token", issued.token_type));
    }
    if issued.access_token.is_empty() || http::HeaderValue::from_str(&issued.access_token).is_err() {
        return Err("the token endpoint issued an access token that cannot be sent in a header".into());
    }
    let lifetime = match issued.expires_in {
        Some(secs) if secs.is_finite() && secs > 0.0 => Duration::from_secs_f64(secs.min(1e9)),
        _ => UNSAID_LIFETIME,
    };
    // Renewed `EARLY` before it expires, or halfway through a short life.
    let keep = lifetime.saturating_sub(EARLY).max(lifetime / 2);
    Ok(Token { value: issued.access_token, renew_at: asked + keep })
}
