//! Compiled signature schemes: a source's verifier (which scheme, which secrets, what
//! tolerance) from its `verify:` block, and a dispatch rule's signer from its `sign:` block.
//!
//! The checking and the signing themselves are [`crate::pipeline::verify`].

use aws_lc_rs::{hmac, signature};
use http::HeaderName;

/// A secret's bytes; never printed.
#[derive(Clone)]
pub struct Secret(pub Vec<u8>);

/// A signing secret with its HMAC-SHA256 key already absorbed, so checking a webhook starts
/// from a copy instead of hashing the key again; never printed.
#[derive(Clone)]
pub struct SigningKey {
    pub key: hmac::Key,
}

impl SigningKey {
    pub fn new(bytes: Vec<u8>) -> SigningKey {
        SigningKey { key: hmac::Key::new(hmac::HMAC_SHA256, &bytes) }
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// How a digest is written in its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
}

/// A source's signature scheme.
#[derive(Clone, Debug)]
pub enum Verifier {
    /// Explicitly unsigned (`kind: none`); `validate` warns about it.
    None,
    /// `Stripe-Signature: t=<unix>,v1=<hex>…`, HMAC-SHA256 over `<t>.<body>`.
    Stripe { secrets: Vec<SigningKey>, tolerance_secs: u64 },
    /// HMAC-SHA256 of the raw body in one header, e.g. GitHub's `X-Hub-Signature-256: sha256=<hex>`.
    HmacSha256 { secrets: Vec<SigningKey>, header: HeaderName, prefix: String, encoding: Encoding },
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64> …`.
    StandardWebhooks { secrets: Vec<SigningKey>, tolerance_secs: u64 },
    /// Slack's scheme: `<signature header>: v0=<hex>`, HMAC-SHA256 over `v0:<t>:<body>`, `t`
    /// in the timestamp header. Zoom signs the same way under its own header names.
    Slack { secrets: Vec<SigningKey>, tolerance_secs: u64, headers: V0Headers },
    /// Twitch EventSub: `Twitch-Eventsub-Message-Signature: sha256=<hex>` over the message id,
    /// the RFC 3339 timestamp and the body, each from its `Twitch-Eventsub-Message-*` header.
    Twitch { secrets: Vec<SigningKey>, tolerance_secs: u64 },
    /// Twilio: `X-Twilio-Signature: <base64>`, HMAC-SHA1 (HMAC-SHA256 when
    /// `X-Twilio-Webhooks-Signature-Settings` says so) over the URL Twilio called and the
    /// form's fields, sorted. No timestamp: Twilio's scheme has no replay window.
    Twilio { secrets: Vec<Secret>, url: TwilioUrl },
    /// SendGrid's event webhook: `X-Twilio-Email-Event-Webhook-Signature: <base64 DER>`, an
    /// ECDSA P-256 SHA-256 signature over the `X-Twilio-Email-Event-Webhook-Timestamp` and the
    /// body, checked with SendGrid's public verification key.
    SendGrid { keys: Vec<PublicKey>, tolerance_secs: u64 },
    /// A shared token sent as it is in a header, after an optional prefix: GitLab's
    /// `X-Gitlab-Token: <token>`, or `Authorization: Bearer <token>` (the default).
    Token { secrets: Vec<Secret>, header: HeaderName, prefix: String },
    /// HTTP Basic authentication (RFC 7617): `Authorization: Basic <base64 of user:password>`;
    /// each secret is `user:password`. Adyen's and PayPal's notifications can be guarded so.
    Basic { secrets: Vec<Secret> },
    /// Square: `X-Square-HmacSha256-Signature: <base64>`, HMAC-SHA256 over the notification
    /// URL (as the subscription has it, verbatim) followed by the body. No timestamp.
    Square { secrets: Vec<SigningKey>, url: String },
    /// Adyen's standard notifications: each item of the batch carries a base64 HMAC-SHA256 of
    /// its main fields in `additionalData.hmacSignature`, under a hex-encoded key.
    Adyen { secrets: Vec<SigningKey> },
    /// Several schemes (a `verify:` list), every one of which must pass, in order: Adyen's
    /// Basic credentials and its HMAC signatures. Never empty, never nested, never with `None`.
    All(Vec<Verifier>),
}

impl Verifier {
    /// The request headers that carry the secret itself, not a signature made with it (a
    /// `token`'s; Basic credentials come in `Authorization`): never to be kept or shown.
    pub fn secret_headers(&self) -> impl Iterator<Item = &HeaderName> {
        self.schemes().iter().filter_map(|v| match v {
            Verifier::Token { header, .. } => Some(header),
            _ => None,
        })
    }

    /// The schemes checked: `All`'s, or this one.
    pub fn schemes(&self) -> &[Verifier] {
        match self {
            Verifier::All(all) => all,
            one => std::slice::from_ref(one),
        }
    }
}

/// A P-256 public key, parsed once.
#[derive(Clone)]
pub struct PublicKey(pub signature::ParsedPublicKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublicKey(P-256)")
    }
}

impl PublicKey {
    /// From base64 DER (SubjectPublicKeyInfo, as SendGrid shows it) or PEM; the error is a
    /// human sentence.
    pub fn parse(text: &str) -> Result<PublicKey, String> {
        let b64: String = text
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .flat_map(|line| line.chars().filter(|c| !c.is_whitespace()))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| "public key is not base64 (SendGrid shows its verification key as base64)".to_string())?;
        signature::ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, der)
            .map(PublicKey)
            .map_err(|_| "public key is not an ECDSA P-256 public key (SendGrid's verification key)".into())
    }
}

/// The URL a Twilio source is called at, spelled both ways Twilio may have signed it: with the
/// port (the scheme's default when the URL names none) and without.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwilioUrl {
    pub without_port: String,
    pub with_port: String,
}

/// `text` as an absolute http or https URL; the error is a human sentence.
fn absolute_url(text: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = text.parse().map_err(|e| format!("url '{text}' is not a URL: {e}"))?;
    let (Some(scheme), Some(_)) = (uri.scheme_str(), uri.authority()) else {
        return Err(format!(
            "url '{text}' is not absolute: give it as the sender's console has it, e.g. https://hooks.example.com/webhooks/in"
        ));
    };
    if !matches!(scheme, "http" | "https") {
        return Err(format!("url '{text}' is not http or https"));
    }
    Ok(uri)
}

impl TwilioUrl {
    /// From the URL as Twilio's console has it; the error is a human sentence.
    pub fn parse(text: &str) -> Result<TwilioUrl, String> {
        let uri = absolute_url(text)?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(format!("url '{text}' is not absolute"));
        };
        if uri.query().is_some() || authority.as_str().contains('@') {
            return Err(format!(
                "url '{text}' has a query or user info: give the URL without them (the request's query is added as it comes)"
            ));
        }
        // What follows the authority, exactly as written (`http::Uri` would add a `/`).
        let rest = &text[scheme.len() + 3 + authority.as_str().len()..];
        let host = authority.host();
        let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() };
        let port = authority.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
        Ok(TwilioUrl {
            without_port: format!("{scheme}://{host}{rest}"),
            with_port: format!("{scheme}://{host}:{port}{rest}"),
        })
    }
}

/// The header names of Slack's scheme as one sender uses it (lower case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V0Headers {
    pub timestamp: &'static str,
    pub signature: &'static str,
}

pub const SLACK: V0Headers = V0Headers { timestamp: "x-slack-request-timestamp", signature: "x-slack-signature" };
pub const ZOOM: V0Headers = V0Headers { timestamp: "x-zm-request-timestamp", signature: "x-zm-signature" };

/// The verifier kinds a config may name.
pub const KINDS: &[&str] = &[
    "stripe",
    "hmac-sha256",
    "standard-webhooks",
    "slack",
    "zoom",
    "twitch",
    "twilio",
    "sendgrid",
    "square",
    "adyen",
    "token",
    "basic",
    "none",
];

/// The kinds a dispatch rule's `sign:` may name, as its error messages list them.
const SIGN_KINDS: &str = "'stripe', 'hmac-sha256', 'standard-webhooks', 'slack', 'zoom', 'twitch', 'token' or 'basic'";

use super::Ctx;
use crate::config::model::{Verify, VerifyConfig};
use base64::Engine;

const DEFAULT_TOLERANCE_SECS: u64 = 300;
/// Twitch tells its receivers to refuse messages older than 10 minutes.
const TWITCH_TOLERANCE_SECS: u64 = 600;
/// Secrets shorter than this (besides a `whsec_` prefix) are warned about.
const MIN_SECRET_BYTES: usize = 16;

/// Compiles a dispatch rule's `sign` block, which says how its calls are signed: a
/// `verify` block's kinds and keys, without `none` or a tolerance (those are the receiver's).
pub(super) fn compile_signer(ctx: &mut Ctx, cfg: &VerifyConfig, owner: &str) -> Option<Verifier> {
    if cfg.kind.value == "none" {
        ctx.error(
            cfg.kind.referenced,
            format!("a call is signed with {SIGN_KINDS}; leave 'sign' out to send it unsigned"),
        );
        return None;
    }
    let sender = match cfg.kind.value.as_str() {
        "twilio" => Some("Twilio"),
        "sendgrid" => Some("SendGrid"),
        "square" => Some("Square"),
        "adyen" => Some("Adyen"),
        _ => None,
    };
    if let Some(sender) = sender {
        let message =
            format!("'{}' checks webhooks that {sender} sends; a call is signed with {SIGN_KINDS}", cfg.kind.value);
        ctx.error(cfg.kind.referenced, message);
        return None;
    }
    if let Some(t) = &cfg.tolerance_secs {
        ctx.error(
            t.referenced,
            "'tolerance_secs' is for verifying: the receiver chooses it; a signed call carries the time it was sent",
        );
        return None;
    }
    compile(ctx, cfg, owner)
}

/// Compiles a source's `verify:`, one block or a list whose every scheme must pass; `at` is
/// where an empty list is reported.
pub(super) fn compile_source(
    ctx: &mut Ctx,
    verify: &Verify,
    owner: &str,
    at: serde_saphyr::Location,
) -> Option<Verifier> {
    let all = match verify {
        Verify::One(cfg) => return compile(ctx, cfg, owner),
        Verify::All(all) => all,
    };
    if all.is_empty() {
        let message = format!(
            "{owner}: 'verify: []' checks nothing: list the schemes every webhook must pass, or write 'kind: none' to take unsigned webhooks"
        );
        ctx.error(at, message);
        return None;
    }
    let mut listed = Vec::new();
    let mut ok = true;
    for cfg in all {
        if cfg.kind.value == "none" && all.len() > 1 {
            let message = format!("{owner}: 'none' cannot be listed with other schemes: every scheme listed must pass");
            ctx.error(cfg.kind.referenced, message);
            ok = false;
            continue;
        }
        match compile(ctx, cfg, owner) {
            Some(v) => listed.push(v),
            None => ok = false,
        }
    }
    match listed.len() {
        _ if !ok => None,
        1 => listed.pop(),
        _ => Some(Verifier::All(listed)),
    }
}

/// Compiles a `verify` block of `owner` (e.g. `source 'stripe'`). Secrets are taken after
/// env expansion; empty ones (an unset `${OLD_SECRET:-}` during rotation) are skipped.
pub(super) fn compile(ctx: &mut Ctx, cfg: &VerifyConfig, owner: &str) -> Option<Verifier> {
    let kind = cfg.kind.value.as_str();
    ctx.at_least(&cfg.tolerance_secs, 1, "tolerance_secs");
    let tolerance_secs = cfg.tolerance_secs.as_ref().map_or(DEFAULT_TOLERANCE_SECS, |t| t.value);
    let only = |ctx: &mut Ctx, allowed: &[&str]| {
        let given = [
            ("secrets", !cfg.secrets.is_empty(), cfg.kind.referenced),
            (
                "tolerance_secs",
                cfg.tolerance_secs.is_some(),
                cfg.tolerance_secs.as_ref().map_or(cfg.kind.referenced, |t| t.referenced),
            ),
            ("header", cfg.header.is_some(), cfg.header.as_ref().map_or(cfg.kind.referenced, |t| t.referenced)),
            ("prefix", cfg.prefix.is_some(), cfg.prefix.as_ref().map_or(cfg.kind.referenced, |t| t.referenced)),
            ("encoding", cfg.encoding.is_some(), cfg.encoding.as_ref().map_or(cfg.kind.referenced, |t| t.referenced)),
            (
                "secret_encoding",
                cfg.secret_encoding.is_some(),
                cfg.secret_encoding.as_ref().map_or(cfg.kind.referenced, |t| t.referenced),
            ),
            ("url", cfg.url.is_some(), cfg.url.as_ref().map_or(cfg.kind.referenced, |t| t.referenced)),
            (
                "public_keys",
                !cfg.public_keys.is_empty(),
                cfg.public_keys.first().map_or(cfg.kind.referenced, |t| t.referenced),
            ),
        ];
        let mut ok = true;
        for (key, present, at) in given {
            if present && !allowed.contains(&key) {
                ctx.error(at, format!("'{key}' does not apply to verifier kind '{kind}'"));
                ok = false;
            }
        }
        ok
    };
    match kind {
        "none" => {
            only(ctx, &[]).then_some(())?;
            ctx.warning(
                cfg.kind.referenced,
                format!("{owner} accepts unsigned webhooks (verify: none): anyone who can reach it can publish events"),
            );
            Some(Verifier::None)
        }
        "stripe" => {
            only(ctx, &["secrets", "tolerance_secs"]).then_some(())?;
            let secrets = secrets(ctx, cfg, owner, |s| Ok(s.as_bytes().to_vec()))?;
            Some(Verifier::Stripe { secrets, tolerance_secs })
        }
        "slack" | "zoom" => {
            only(ctx, &["secrets", "tolerance_secs"]).then_some(())?;
            let secrets = secrets(ctx, cfg, owner, |s| Ok(s.as_bytes().to_vec()))?;
            let headers = if kind == "slack" { SLACK } else { ZOOM };
            Some(Verifier::Slack { secrets, tolerance_secs, headers })
        }
        "twitch" => {
            only(ctx, &["secrets", "tolerance_secs"]).then_some(())?;
            let secrets = secrets(ctx, cfg, owner, |s| Ok(s.as_bytes().to_vec()))?;
            let tolerance_secs = cfg.tolerance_secs.as_ref().map_or(TWITCH_TOLERANCE_SECS, |t| t.value);
            Some(Verifier::Twitch { secrets, tolerance_secs })
        }
        "twilio" => {
            only(ctx, &["secrets", "url"]).then_some(())?;
            let Some(text) = &cfg.url else {
                let message = format!(
                    "{owner}: kind 'twilio' needs 'url', the URL Twilio posts to (its signature covers it), e.g. url: \"${{PUBLIC_URL}}/webhooks/twilio\""
                );
                ctx.error(cfg.kind.referenced, message);
                return None;
            };
            let url = TwilioUrl::parse(&ctx.url_text(text)?).map_err(|e| ctx.error(text.referenced, e)).ok();
            let secrets = raw_secrets(ctx, cfg, owner, |s| Ok(s.as_bytes().to_vec()))?;
            Some(Verifier::Twilio { secrets: secrets.into_iter().map(Secret).collect(), url: url? })
        }
        "sendgrid" => {
            only(ctx, &["public_keys", "tolerance_secs"]).then_some(())?;
            let (mut keys, mut unresolved, mut broken) = (Vec::new(), false, false);
            for text in &cfg.public_keys {
                match ctx.text(text).as_deref().map(str::trim) {
                    None => unresolved = true,
                    Some("") => {}
                    Some(value) => match PublicKey::parse(value) {
                        Ok(key) => keys.push(key),
                        Err(e) => {
                            ctx.error(text.referenced, e);
                            broken = true;
                        }
                    },
                }
            }
            if broken {
                return None;
            }
            if keys.is_empty() && !unresolved {
                let message = format!(
                    "{owner}: kind 'sendgrid' needs 'public_keys', SendGrid's verification key, e.g. public_keys: [\"${{SENDGRID_WEBHOOK_PUBLIC_KEY}}\"]"
                );
                ctx.error(cfg.kind.referenced, message);
                return None;
            }
            Some(Verifier::SendGrid { keys, tolerance_secs })
        }
        "square" => {
            only(ctx, &["secrets", "url"]).then_some(())?;
            let Some(text) = &cfg.url else {
                let message = format!(
                    "{owner}: kind 'square' needs 'url', the notification URL of the Square subscription (its signature covers it), e.g. url: \"${{PUBLIC_URL}}/webhooks/square\""
                );
                ctx.error(cfg.kind.referenced, message);
                return None;
            };
            let url = ctx.url_text(text)?;
            if let Err(e) = absolute_url(&url) {
                ctx.error(text.referenced, e);
                return None;
            }
            let secrets = secrets(ctx, cfg, owner, |s| Ok(s.as_bytes().to_vec()))?;
            Some(Verifier::Square { secrets, url })
        }
        "adyen" => {
            only(ctx, &["secrets"]).then_some(())?;
            let secrets = secrets(ctx, cfg, owner, |s| {
                hex::decode(s.trim())
                    .map_err(|_| "an Adyen HMAC key is hex, as the Customer Area shows it (64 hex digits)")
            })?;
            Some(Verifier::Adyen { secrets })
        }
        "token" => {
            only(ctx, &["secrets", "header", "prefix"]).then_some(())?;
            let header = match &cfg.header {
                Some(h) => ctx.header_name(&h.value, h.referenced)?,
                None => http::header::AUTHORIZATION,
            };
            let prefix = match &cfg.prefix {
                Some(p) => ctx.text_or_name(p)?,
                None if cfg.header.is_none() => "Bearer ".to_owned(),
                None => String::new(),
            };
            let secrets = raw_secrets(ctx, cfg, owner, |s| match http::HeaderValue::from_str(s) {
                Ok(_) if s.trim() == s => Ok(s.as_bytes().to_vec()),
                _ => Err("a token is sent as it is in a header: it must be visible ASCII, without spaces around it"),
            })?;
            Some(Verifier::Token { secrets: secrets.into_iter().map(Secret).collect(), header, prefix })
        }
        "basic" => {
            only(ctx, &["secrets"]).then_some(())?;
            let secrets = raw_secrets(ctx, cfg, owner, |s| match s.split_once(':') {
                Some((user, _)) if !user.is_empty() => Ok(s.as_bytes().to_vec()),
                _ => Err("a secret of kind 'basic' is user:password, e.g. \"${WEBHOOK_USER}:${WEBHOOK_PASSWORD}\""),
            })?;
            Some(Verifier::Basic { secrets: secrets.into_iter().map(Secret).collect() })
        }
        "standard-webhooks" => {
            only(ctx, &["secrets", "tolerance_secs"]).then_some(())?;
            let secrets = secrets(ctx, cfg, owner, |s| {
                let raw = s.strip_prefix("whsec_").unwrap_or(s);
                base64::engine::general_purpose::STANDARD
                    .decode(raw)
                    .map_err(|_| "secret is not valid base64 (Standard Webhooks secrets look like whsec_<base64>)")
            })?;
            Some(Verifier::StandardWebhooks { secrets, tolerance_secs })
        }
        "hmac-sha256" => {
            only(ctx, &["secrets", "header", "prefix", "encoding", "secret_encoding"]).then_some(())?;
            let header = match &cfg.header {
                Some(h) => ctx.header_name(&h.value, h.referenced)?,
                None => HeaderName::from_static("x-hub-signature-256"),
            };
            let encoding = match cfg.encoding.as_ref().map(|e| (e.value.as_str(), e.referenced)) {
                None | Some(("hex", _)) => Encoding::Hex,
                Some(("base64", _)) => Encoding::Base64,
                Some((other, at)) => {
                    ctx.error(at, format!("unknown encoding '{other}', expected 'hex' or 'base64'"));
                    return None;
                }
            };
            let prefix = match &cfg.prefix {
                Some(p) => ctx.text_or_name(p)?,
                None if cfg.header.is_none() => "sha256=".to_owned(),
                None => String::new(),
            };
            let secrets = match cfg.secret_encoding.as_ref().map(|e| (e.value.as_str(), e.referenced)) {
                None | Some(("text", _)) => secrets(ctx, cfg, owner, |s| Ok(s.as_bytes().to_vec()))?,
                Some(("hex", _)) => secrets(ctx, cfg, owner, |s| {
                    hex::decode(s.trim()).map_err(|_| "secret_encoding is 'hex', but this secret is not hex digits")
                })?,
                Some(("base64", _)) => secrets(ctx, cfg, owner, |s| {
                    base64::engine::general_purpose::STANDARD
                        .decode(s.trim())
                        .map_err(|_| "secret_encoding is 'base64', but this secret is not base64")
                })?,
                Some((other, at)) => {
                    ctx.error(at, format!("unknown secret_encoding '{other}', expected 'text', 'hex' or 'base64'"));
                    return None;
                }
            };
            Some(Verifier::HmacSha256 { secrets, header, prefix, encoding })
        }
        other => {
            ctx.error(
                cfg.kind.referenced,
                format!("unknown verifier kind '{other}', expected one of {}", KINDS.join(", ")),
            );
            None
        }
    }
}

/// The key of a `hmac_sha256` step: its secret from the environment, checked as a verifier's
/// is. `None` when the variable is unset and that is only a warning here.
pub(super) fn step_key(ctx: &mut Ctx, secret: &crate::config::model::Text) -> Option<SigningKey> {
    if !secret.value.contains("${") {
        ctx.warning(
            secret.referenced,
            "this secret is written in the file: read it from the environment instead, e.g. \"${HMAC_SECRET}\"",
        );
    }
    let value = ctx.text(secret)?;
    if value.is_empty() {
        ctx.error(secret.referenced, "the secret of hmac_sha256 is empty: anyone could compute its digests");
        return None;
    }
    if value.len() < MIN_SECRET_BYTES {
        let message = format!(
            "this secret has only {} bytes: anyone who sees a digest can guess a short secret offline; use at least {MIN_SECRET_BYTES} random bytes",
            value.len()
        );
        ctx.warning(secret.referenced, message);
    }
    Some(SigningKey::new(value.into_bytes()))
}

/// The usable secrets as HMAC-SHA256 keys.
fn secrets(
    ctx: &mut Ctx,
    cfg: &VerifyConfig,
    owner: &str,
    decode: impl Fn(&str) -> Result<Vec<u8>, &'static str>,
) -> Option<Vec<SigningKey>> {
    Some(raw_secrets(ctx, cfg, owner, decode)?.into_iter().map(SigningKey::new).collect())
}

/// The usable secrets, decoded; every written, empty, undecodable or short one is reported.
fn raw_secrets(
    ctx: &mut Ctx,
    cfg: &VerifyConfig,
    owner: &str,
    decode: impl Fn(&str) -> Result<Vec<u8>, &'static str>,
) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut unresolved = false;
    for text in &cfg.secrets {
        if !text.value.contains("${") {
            ctx.warning(
                text.referenced,
                "this secret is written in the file: read it from the environment instead, e.g. \"${WEBHOOK_SECRET}\"",
            );
        }
        let Some(value) = ctx.text(text) else {
            unresolved = true;
            continue;
        };
        if value.is_empty() {
            continue;
        }
        let key = match decode(&value) {
            Ok(key) => key,
            Err(message) => {
                ctx.error(text.referenced, message);
                continue;
            }
        };
        // What an attacker would have to guess: the key without its well-known prefix.
        let strength = key.len().min(value.strip_prefix("whsec_").unwrap_or(&value).len());
        if strength == 0 {
            ctx.error(
                text.referenced,
                "this secret is empty once its 'whsec_' prefix is taken off: anyone could sign with it",
            );
            continue;
        }
        if strength < MIN_SECRET_BYTES {
            let bytes = if strength == 1 { "byte" } else { "bytes" };
            // A token or password is sent as it is: no signature to guess it from, but a
            // short one can be guessed by trying it.
            let message = if matches!(cfg.kind.value.as_str(), "token" | "basic") {
                format!(
                    "this secret has only {strength} {bytes}: a short token or password can be guessed by trying it; use at least {MIN_SECRET_BYTES} random bytes"
                )
            } else {
                format!(
                    "this secret has only {strength} {bytes} besides any 'whsec_' prefix: one signed webhook lets anyone who sees it guess a short secret offline; use at least {MIN_SECRET_BYTES} random bytes (Stripe's and Standard Webhooks' secrets have 24 or more)"
                )
            };
            ctx.warning(text.referenced, message);
        }
        out.push(key);
    }
    if out.is_empty() && !unresolved {
        ctx.error(cfg.kind.referenced, format!("{owner} has no usable secret in 'secrets' (empty ones are skipped)"));
        return None;
    }
    Some(out)
}
