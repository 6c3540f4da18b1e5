//! Compiled dispatchers: which topic and group, which events, which HTTP call, what retry.
//!
//! URL templates are checked here so that event data can only ever fill path segments and
//! query values: scheme, host and port come from the config alone.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Method};
use serde_json::Value as Json;

use super::contract::event_types_allowed;
use super::expr::{self, Expr, Filter};
use super::template::{self, Part};
use super::verify::{Secret, Verifier};
use super::{Ctx, Schema};
use crate::config::model::{
    ClientTlsConfig, DispatchRuleConfig, DispatcherConfig, ExprConfig, OAuth2Config, OneOrMany, Spanned, Text,
};
use crate::pem::TlsFiles;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Dispatcher {
    pub name: String,
    pub topic: String,
    pub group: String,
    /// The declared `schema` of the events: the request templates were checked against it,
    /// and every event a rule takes is validated against it (`pipeline::plan::conforms`).
    /// Without one, the templates were checked against the canonical schemas the routes
    /// publish to the topic.
    pub schema: Option<Arc<Schema>>,
    pub dead_letter_topic: String,
    pub max_in_flight: usize,
    /// Calls started per second at most, evenly spaced (None: no limit).
    pub max_calls_per_second: Option<u64>,
    pub tls: ClientTls,
    pub rules: Vec<DispatchRule>,
}

/// A dispatcher's TLS files; read where the dispatcher runs (`dispatch::client`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// The CA certificates calls trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The client certificate and its key (mutual TLS).
    pub identity: Option<TlsFiles>,
}

impl ClientTls {
    pub fn files(&self) -> Vec<&Path> {
        let identity = self.identity.iter().flat_map(|i| [i.cert.as_path(), i.key.as_path()]);
        self.ca_file.iter().map(|p| p.as_path()).chain(identity).collect()
    }
}

#[derive(Clone, Debug)]
pub struct DispatchRule {
    pub name: String,
    pub when: Filter,
    pub method: Method,
    /// Fixed `scheme://host[:port]` written in the config.
    pub origin: String,
    /// The path after the origin; placeholders become single encoded segments.
    pub path: Vec<Part<Var>>,
    pub query: Vec<(String, Vec<Part<Var>>)>,
    pub headers: Vec<(HeaderName, Vec<Part<Var>>)>,
    /// The body's properties (`body:`), or, where `form` is set, its form fields (`form:`).
    pub body: Vec<(String, Expr)>,
    /// Instead of `body`: the body as one value (`body_value:`).
    pub body_value: Option<Expr>,
    /// `body` holds form fields, sent form-encoded (`pipeline::form`) instead of as JSON.
    pub form: bool,
    pub bearer_token: Option<Secret>,
    /// Where each call's bearer token comes from, when an authorization server issues it.
    pub oauth2: Option<Arc<OAuth2>>,
    /// How each call is signed (`sign:`), when it is: at send time, over the body as sent.
    pub sign: Option<Verifier>,
    /// The headers and query keys whose config text reads the environment: dry runs show
    /// their values as `<redacted>`, since a secret may be among them.
    pub env_headers: Vec<HeaderName>,
    pub env_query: Vec<String>,
    /// The same of the body: the `body` or `form` fields whose config reads the environment
    /// (a `const: "${API_KEY}"`), and whether `body_value` does.
    pub env_body: Vec<String>,
    pub env_body_value: bool,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

/// OAuth 2.0 client credentials: how to get an access token for a rule's calls.
#[derive(Debug)]
pub struct OAuth2 {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub scopes: Vec<String>,
    /// More form parameters of the token request (`audience`).
    pub params: Vec<(String, String)>,
    /// The client id and secret in the form (`client_secret_post`) instead of HTTP Basic.
    pub in_body: bool,
}

impl OAuth2 {
    /// What tells one client's tokens from another's: every setting but the secret.
    pub fn cache_key(&self) -> String {
        format!("{}\0{}\0{}\0{:?}", self.token_url, self.client_id, self.scopes.join(" "), self.params)
    }
}

/// What a request placeholder names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Var {
    /// A property of the canonical event, `{order_id}`; dots read nested objects,
    /// `{customer.id}`.
    Property(String),
    /// A Kafka header of the event, `{header.event_id}`.
    Header(String),
    /// The Kafka key, `{key}`.
    Key,
}

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub initial_delay: Duration,
    pub max_delay: Duration,
    pub max_elapsed: Duration,
    /// Statuses besides 2xx that count as done.
    pub done_on: Vec<u16>,
    /// 4xx statuses retried besides 408 and 429.
    pub retry_on: Vec<u16>,
}

impl RetryPolicy {
    /// Whether an answer with `status` (not done) is tried again rather than dead-lettered at
    /// once: 408, 429, every 5xx, and the rule's `retry_on`.
    pub fn retries(&self, status: u16) -> bool {
        matches!(status, 408 | 429 | 500..=599) || self.retry_on.contains(&status)
    }
}

/// What the config's source rules publish to one topic.
#[derive(Default)]
pub(super) struct Published {
    /// The canonical schemas of the events, each once.
    pub schemas: Vec<Arc<Schema>>,
    /// The Kafka headers each rule sets (names in lower case).
    pub rules: Vec<Vec<String>>,
}

pub(super) fn compile(
    ctx: &mut Ctx,
    cfg: &DispatcherConfig,
    published: &std::collections::HashMap<String, Published>,
) -> Option<Dispatcher> {
    let topic = ctx.text_or_name(&cfg.topic);
    let group = ctx.text_or_name(&cfg.group);
    let schema = cfg.schema.as_ref().and_then(|s| ctx.schema(s));
    // What the templates are checked against: the declared schema, or every canonical schema
    // published to the topic (a variable must be a property of at least one).
    let checked: Vec<Arc<Schema>> = match cfg.schema {
        Some(_) => schema.iter().cloned().collect(),
        None => topic.as_ref().and_then(|t| published.get(t)).map(|p| p.schemas.clone()).unwrap_or_default(),
    };
    let on_topic = topic.as_ref().and_then(|t| published.get(t)).filter(|p| !p.rules.is_empty());
    let dead_letter_topic = match &cfg.dead_letter_topic {
        Some(t) => ctx.text_or_name(t),
        None => topic.as_ref().map(|t| format!("{t}.dlq")),
    };
    let allowed: Vec<String> =
        cfg.allowed_hosts.iter().filter_map(|h| ctx.text(h)).map(|h| h.to_ascii_lowercase()).collect();
    ctx.at_least(&cfg.max_in_flight, 1, "max_in_flight");
    ctx.at_most(&cfg.max_in_flight, super::MAX_AT_ONCE, "max_in_flight", "beyond that it limits nothing");
    ctx.at_least(&cfg.max_calls_per_second, 1, "max_calls_per_second");
    let tls = compile_tls(ctx, cfg.tls.as_ref());
    let type_at = compile_type_at(ctx, cfg.event_type.as_ref());
    let mut rules = Vec::new();
    let mut ok = true;
    for r in &cfg.rules {
        match compile_rule(ctx, r, &type_at, &checked, &allowed, on_topic) {
            Some(rule) => rules.push(rule),
            None => ok = false,
        }
    }
    ok.then_some(())?;
    Some(Dispatcher {
        name: cfg.name.value.clone(),
        topic: topic?,
        group: group?,
        schema,
        dead_letter_topic: dead_letter_topic?,
        max_in_flight: cfg.max_in_flight.as_ref().map_or(64, |v| v.value.max(1) as usize),
        max_calls_per_second: cfg.max_calls_per_second.as_ref().map(|v| v.value.max(1)),
        tls: tls?,
        rules,
    })
}

/// The paths of a dispatcher's `tls:` block, relative to the config's folder. The files are
/// read where the dispatcher runs, as `kafka.properties`' are: they need not exist where the
/// config is validated.
fn compile_tls(ctx: &mut Ctx, cfg: Option<&Spanned<ClientTlsConfig>>) -> Option<ClientTls> {
    let Some(spanned) = cfg else { return Some(ClientTls::default()) };
    let (cfg, at) = (&spanned.value, spanned.referenced);
    let mut file = |t: &Option<Text>| t.as_ref().and_then(|t| ctx.text(t)).map(|p| ctx.dir.join(p));
    let (ca_file, cert, key) = (file(&cfg.ca_file), file(&cfg.cert_file), file(&cfg.key_file));
    if cfg.cert_file.is_some() != cfg.key_file.is_some() {
        ctx.error(at, "'cert_file' and 'key_file' go together: a client certificate needs its key");
        return None;
    }
    if cfg.ca_file.is_none() && cfg.cert_file.is_none() {
        ctx.warning(at, "an empty 'tls' block changes nothing: give 'ca_file', or 'cert_file' and 'key_file'");
    }
    let identity = cert.zip(key).map(|(cert, key)| TlsFiles { cert, key });
    Some(ClientTls { ca_file, identity })
}

/// Where a dispatcher's rules read the event type (its `event_type:`).
struct TypeAt {
    at: expr::EventTypeAt,
    /// The path and the event's member it names, when it names one (`$.event_type`, `$.kind`):
    /// then the event types the schemas allow are read there. A header says nothing of them.
    member: Option<(String, String)>,
}

/// A dispatcher's `event_type:`, by default the event's `event_type`.
fn compile_type_at(ctx: &mut Ctx, cfg: Option<&Spanned<crate::config::model::Locate>>) -> TypeAt {
    let Some(cfg) = cfg else {
        let Ok(path) = super::jsonpath::Path::parse("$.event_type") else {
            return TypeAt { at: expr::EventTypeAt::Broken, member: None };
        };
        let at = expr::EventTypeAt::At(expr::Locator::Path(path));
        return TypeAt { at, member: Some(("$.event_type".into(), "event_type".into())) };
    };
    match expr::compile_locate(ctx, cfg) {
        Some(expr::Locator::Path(path)) => {
            let member = match super::jsonpath::segments(path.as_str()).as_deref() {
                Some([super::jsonpath::Segment::Name(name)]) => Some((path.as_str().to_owned(), name.to_string())),
                _ => None,
            };
            TypeAt { at: expr::EventTypeAt::At(expr::Locator::Path(path)), member }
        }
        Some(header) => TypeAt { at: expr::EventTypeAt::At(header), member: None },
        None => TypeAt { at: expr::EventTypeAt::Broken, member: None },
    }
}

fn compile_rule(
    ctx: &mut Ctx,
    cfg: &DispatchRuleConfig,
    type_at: &TypeAt,
    schemas: &[Arc<Schema>],
    allowed: &[String],
    published: Option<&Published>,
) -> Option<DispatchRule> {
    let name = cfg.name.value.clone();
    let when = expr::compile_filter(ctx, &cfg.when, type_at.at.clone());
    let member = type_at.member.as_ref();
    if let (Some(types), Some((path, member))) = (&cfg.when.event_type, member) {
        match super::contract::event_type_never_there(schemas, path, member, &types.value.to_vec()) {
            Some(message) => ctx.warning(types.referenced, message),
            None => warn_of_unknown_event_types(ctx, types, schemas, member),
        }
    }
    let types = cfg.when.event_type.as_ref().filter(|_| member.is_some()).map(|t| t.value.to_vec());
    let taken = taken_by(schemas, member.map_or("", |(_, m)| m.as_str()), types);
    let schemas = taken.as_slice();
    let req = &cfg.request;
    let method = match Method::from_bytes(req.method.value.to_ascii_uppercase().as_bytes()) {
        Ok(m) => Some(m),
        Err(_) => {
            ctx.error(req.method.referenced, format!("'{}' is not an HTTP method", req.method.value));
            None
        }
    };
    let url = ctx.url_text(&req.url).and_then(|u| split_url(ctx, &req.url, &u, schemas));
    if let Some((origin, _)) = &url
        && !allowed.is_empty()
    {
        let host = host_of(origin);
        if !allowed.contains(&host) && !super::is_stand_in_host(&host) {
            let msg = format!("url host '{host}' is not in this dispatcher's allowed_hosts ({})", allowed.join(", "));
            ctx.error(req.url.referenced, msg);
            return None;
        }
    }
    let mut ok = true;
    let (mut query, mut env_query) = (Vec::new(), Vec::new());
    for (k, v) in &req.query {
        if v.value.contains("${") {
            env_query.push(k.clone());
        }
        match vars(ctx, v, schemas) {
            Some(parts) => query.push((k.clone(), parts)),
            None => ok = false,
        }
    }
    let (mut headers, mut env_headers) = (Vec::new(), Vec::new());
    for (k, v) in &req.headers {
        let Some(h) = ctx.header_name(k, v.referenced) else {
            ok = false;
            continue;
        };
        if v.value.contains("${") {
            env_headers.push(h.clone());
        }
        match vars(ctx, v, schemas) {
            Some(parts) => headers.push((h, parts)),
            None => ok = false,
        }
    }
    let form = !req.form.is_empty();
    if let Some((_, first)) = req.form.first()
        && (!req.body.is_empty() || req.body_value.is_some())
    {
        let message = format!("dispatch rule '{name}': give body, body_value or form (form fields), not two of them");
        ctx.error(first.referenced, message);
    }
    let (fields, label) = if form { (&req.form, "form") } else { (&req.body, "body") };
    let env_body = fields.iter().filter(|(_, e)| reads_env(&e.value)).map(|(k, _)| k.clone()).collect();
    let env_body_value = req.body_value.as_ref().is_some_and(|e| reads_env(&e.value));
    let mut body = Vec::new();
    for (k, e) in fields {
        match expr::compile(ctx, e, &format!("dispatch rule '{name}', {label}.{k}"), false) {
            Some(x) => body.push((k.clone(), x)),
            None => ok = false,
        }
    }
    let body_value = req.body_value.as_ref().and_then(|e| {
        if !req.body.is_empty() {
            let message = format!(
                "dispatch rule '{name}': give body (named properties) or body_value (one value, e.g. {{ path: $ }} for the event as it is), not both"
            );
            ctx.error(e.referenced, message);
        }
        let compiled = expr::compile(ctx, e, &format!("dispatch rule '{name}', body_value"), false);
        ok &= compiled.is_some();
        compiled
    });
    // An empty token (an unset `${TOKEN:-}`) means no Authorization header.
    let bearer_token = match &req.bearer_token {
        // Unset where that is only a warning: no header either (nothing is sent from here).
        Some(t) => ctx.text(t).filter(|t| !t.is_empty()).map(|t| Secret(t.into_bytes())),
        None => None,
    };
    let sign = match &req.sign {
        Some(cfg) => Some(super::verify::compile_signer(ctx, cfg, &format!("dispatch rule '{name}'"))?),
        None => None,
    };
    let oauth2 = match &req.oauth2 {
        Some(cfg) => {
            if let Some(t) = &req.bearer_token {
                let message = format!(
                    "dispatch rule '{name}': give 'bearer_token' or 'oauth2', not both (each is the call's Authorization)"
                );
                ctx.error(t.referenced, message);
                return None;
            }
            Some(Arc::new(compile_oauth2(ctx, cfg, &name, allowed)?))
        }
        None => None,
    };
    let r = &cfg.retry;
    ctx.at_least(&req.timeout_ms, 1, "timeout_ms");
    ctx.at_least(&r.initial_delay_ms, 1, "initial_delay_ms");
    let initial = r.initial_delay_ms.as_ref().map_or(200, |v| v.value);
    ctx.at_least(&r.max_delay_ms, initial, "max_delay_ms");
    for status in &r.done_on {
        if !(300..=599).contains(&status.value) {
            let msg = format!("done_on: {} is not a status to add (2xx are done already; 300–599)", status.value);
            ctx.error(status.referenced, msg);
            ok = false;
        }
    }
    for status in &r.retry_on {
        let problem = match status.value {
            408 | 429 => Some("it is retried already"),
            s if !(400..=499).contains(&s) => Some("only 4xx are added (5xx are retried already)"),
            s if r.done_on.iter().any(|d| d.value == s) => Some("it is in done_on too"),
            _ => None,
        };
        if let Some(why) = problem {
            ctx.error(status.referenced, format!("retry_on: {} is not a status to add: {why}", status.value));
            ok = false;
        }
    }
    let retry = RetryPolicy {
        initial_delay: Duration::from_millis(r.initial_delay_ms.as_ref().map_or(200, |v| v.value)),
        max_delay: Duration::from_millis(r.max_delay_ms.as_ref().map_or(30_000, |v| v.value)),
        max_elapsed: Duration::from_secs(r.max_elapsed_secs.as_ref().map_or(900, |v| v.value)),
        done_on: r.done_on.iter().map(|s| s.value).collect(),
        retry_on: r.retry_on.iter().map(|s| s.value).collect(),
    };
    ok.then_some(())?;
    let (origin, path) = url?;
    let rule = DispatchRule {
        name,
        when: when?,
        method: method?,
        origin,
        path,
        query,
        headers,
        body,
        body_value,
        form,
        bearer_token,
        oauth2,
        sign,
        env_headers,
        env_query,
        env_body,
        env_body_value,
        timeout: Duration::from_millis(req.timeout_ms.as_ref().map_or(10_000, |v| v.value)),
        retry,
    };
    if let Some(published) = published {
        let url = (req.url.referenced, &rule.path);
        let query = req.query.values().map(|v| v.referenced).zip(rule.query.iter().map(|(_, p)| p));
        let headers = req.headers.values().map(|v| v.referenced).zip(rule.headers.iter().map(|(_, p)| p));
        for (at, parts) in std::iter::once(url).chain(query).chain(headers) {
            warn_of_unset_headers(ctx, at, parts, published);
        }
    }
    // What the rule reads, against the schemas of the events it takes.
    if !schemas.is_empty() {
        super::contract::check_dispatch_rule(ctx, &rule, schemas);
    }
    Some(rule)
}

/// A rule's `oauth2:` block; its secret from the environment, checked as a verifier's is.
fn compile_oauth2(ctx: &mut Ctx, cfg: &OAuth2Config, rule: &str, allowed: &[String]) -> Option<OAuth2> {
    let what = format!("dispatch rule '{rule}', oauth2");
    let token_url = ctx.url_text(&cfg.token_url)?;
    // The token endpoint is called with the dispatcher's client: its allowed_hosts hold.
    if let Some(host) = token_url.parse::<http::Uri>().ok().and_then(|u| u.authority().map(|a| host_of(a.as_str())))
        && !allowed.is_empty()
        && !allowed.contains(&host)
        && !super::is_stand_in_host(&host)
    {
        let message = format!(
            "{what}: token_url host '{host}' is not in this dispatcher's allowed_hosts ({})",
            allowed.join(", ")
        );
        ctx.error(cfg.token_url.referenced, message);
        return None;
    }
    match token_url.parse::<http::Uri>() {
        Ok(uri) if matches!(uri.scheme_str(), Some("https")) && uri.authority().is_some() => {}
        Ok(uri) if matches!(uri.scheme_str(), Some("http")) && uri.authority().is_some() => {
            let local = uri
                .host()
                .is_some_and(|h| h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()));
            if !local {
                let message = format!(
                    "{what}: token_url '{token_url}' is plain HTTP: the client secret would travel unencrypted"
                );
                ctx.warning(cfg.token_url.referenced, message);
            }
        }
        _ => {
            ctx.error(
                cfg.token_url.referenced,
                format!("{what}: token_url '{token_url}' is not an absolute http(s) URL"),
            );
            return None;
        }
    }
    let client_id = ctx.text_or_name(&cfg.client_id)?;
    if client_id.is_empty() {
        ctx.error(cfg.client_id.referenced, format!("{what}: client_id is empty"));
        return None;
    }
    if !cfg.client_secret.value.contains("${") {
        let message = "this secret is written in the file: read it from the environment instead, e.g. \"${ORDERS_CLIENT_SECRET}\"";
        ctx.warning(cfg.client_secret.referenced, message);
    }
    // Unset where that is only a warning: the stand-in is never sent (no call is made here).
    let client_secret = ctx.text_or_name(&cfg.client_secret)?;
    if client_secret.is_empty() {
        ctx.error(cfg.client_secret.referenced, format!("{what}: client_secret is empty"));
        return None;
    }
    let mut scopes = Vec::new();
    for s in &cfg.scopes {
        scopes.extend(ctx.text_or_name(s)?.split_whitespace().map(str::to_owned));
    }
    let mut params = Vec::new();
    for (k, v) in &cfg.params {
        if matches!(k.as_str(), "grant_type" | "scope" | "client_id" | "client_secret") {
            ctx.error(
                v.referenced,
                format!("{what}: params.{k} is set by Switchyard (use 'scopes', 'client_id' or 'client_secret')"),
            );
            return None;
        }
        params.push((k.clone(), ctx.text_or_name(v)?));
    }
    let in_body = match cfg.client_auth.as_ref().map(|a| (a.value.as_str(), a.referenced)) {
        None | Some(("basic", _)) => false,
        Some(("body", _)) => true,
        Some((other, at)) => {
            ctx.error(at, format!("{what}: client_auth '{other}' is neither 'basic' nor 'body'"));
            return None;
        }
    };
    Some(OAuth2 { token_url, client_id, client_secret: Secret(client_secret.into_bytes()), scopes, params, in_body })
}

/// Splits an expanded URL template into its fixed origin and its path template.
fn split_url(ctx: &mut Ctx, text: &Text, url: &str, schemas: &[Arc<Schema>]) -> Option<(String, Vec<Part<Var>>)> {
    // Schemes are case-insensitive (RFC 3986); the origin is written with a lower-case one.
    let after_scheme = ["http://", "https://"]
        .into_iter()
        .find(|scheme| url.get(..scheme.len()).is_some_and(|p| p.eq_ignore_ascii_case(scheme)))
        .map(|scheme| (scheme, &url[scheme.len()..]));
    let Some((scheme, rest)) = after_scheme else {
        ctx.error(text.referenced, format!("url '{}' must start with http:// or https://", without_userinfo(url)));
        return None;
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if authority.contains('@') {
        let msg = format!(
            "url '{}': credentials in the URL are refused (they would show wherever the URL does); send them in a header, e.g. 'Authorization: Basic ${{ORDERS_BASIC_AUTH}}', or use 'bearer_token'",
            without_userinfo(url)
        );
        ctx.error(text.referenced, msg);
        return None;
    }
    if authority.is_empty() || authority.contains(['{', '}', '?', '#']) {
        ctx.error(
            text.referenced,
            format!("url '{url}': the host must be written in the config, not taken from the event (no placeholders, '?' or '#' before the path)"),
        );
        return None;
    }
    let origin = format!("{scheme}{authority}");
    // Checked as the HTTP client will read it, so that a bad host or port fails here, not
    // on every call (retried for the whole retry window, then dead-lettered).
    if let Err(e) = reqwest::Url::parse(&origin) {
        ctx.error(text.referenced, format!("url '{url}': '{authority}' is not a host[:port] a call can go to ({e})"));
        return None;
    }
    let written = &rest[authority_end..];
    if written.contains(['?', '#']) {
        ctx.error(text.referenced, format!("url '{url}': put query parameters under 'query:' so they are encoded"));
        return None;
    }
    // An empty segment is nearly always a base URL ending in '/' before a path starting with
    // one (`${ORDER_SERVICE_URL}/orders`): it would be sent as written, and most services
    // answer 404 to it.
    let mut path_text = String::with_capacity(written.len());
    for c in written.chars() {
        if !(c == '/' && path_text.ends_with('/')) {
            path_text.push(c);
        }
    }
    if path_text.len() != written.len() {
        ctx.warning(text.referenced, format!("url '{url}': the empty path segment ('//') is sent as '/'"));
    }
    let path = parse_vars(ctx, text, &path_text, schemas)?;
    Some((origin, path))
}

fn vars(ctx: &mut Ctx, text: &Text, schemas: &[Arc<Schema>]) -> Option<Vec<Part<Var>>> {
    let expanded = ctx.text_or_name(text)?;
    parse_vars(ctx, text, &expanded, schemas)
}

/// Whether a value's config text reads the environment: a `${` in its `const`, `default` or
/// `template`, or in those of the values of its `object`.
fn reads_env(e: &ExprConfig) -> bool {
    let in_json = |v: &Option<Spanned<Json>>| v.as_ref().is_some_and(|v| v.value.to_string().contains("${"));
    in_json(&e.constant)
        || in_json(&e.default)
        || e.template.as_ref().is_some_and(|t| t.value.contains("${"))
        || e.object.iter().flatten().any(|(_, v)| reads_env(&v.value))
}

/// Parses a template; each `{property}` must be a property of one of `schemas` (none: unchecked).
fn parse_vars(ctx: &mut Ctx, text: &Text, expanded: &str, schemas: &[Arc<Schema>]) -> Option<Vec<Part<Var>>> {
    let parts = template::parse(expanded).map_err(|e| ctx.error(text.referenced, e)).ok()?;
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        out.push(match part {
            Part::Lit(s) => Part::Lit(s),
            Part::Var(v) if v == "key" => Part::Var(Var::Key),
            Part::Var(v) => match v.strip_prefix("header.") {
                Some(h) => Part::Var(Var::Header(h.to_owned())),
                None => {
                    // `{customer.id}`: `id` of the object `customer` (or a property of that name).
                    if let Err(near) = super::contract::declares_variable(schemas, &v) {
                        let names: Vec<String> = schemas.iter().map(|s| format!("'{}'", s.name)).collect();
                        let which = match names.len() {
                            1 => format!("the canonical event in {}", names[0]),
                            _ => format!("any canonical event published to the topic ({})", names.join(", ")),
                        };
                        let near = near.map(|n| format!(": did you mean '{{{n}}}'?"));
                        let message = format!(
                            "template variable '{{{v}}}' is not a property of {which}{}",
                            near.unwrap_or_default()
                        );
                        ctx.error(text.referenced, message);
                        return None;
                    }
                    Part::Var(Var::Property(v))
                }
            },
        });
    }
    Some(out)
}

/// Warns about each `{header.NAME}` in `parts` that a rule publishing to the topic does not set:
/// the events of that rule would be dead-lettered (the event has no such Kafka header).
/// `traceparent` is set on every event.
fn warn_of_unset_headers(ctx: &mut Ctx, at: serde_saphyr::Location, parts: &[Part<Var>], published: &Published) {
    for part in parts {
        let Part::Var(Var::Header(name)) = part else { continue };
        let name = name.to_ascii_lowercase();
        let unset = published.rules.iter().filter(|set| !set.contains(&name)).count();
        if name == "traceparent" || unset == 0 {
            continue;
        }
        let mut set: Vec<&str> = published.rules.iter().flatten().map(String::as_str).collect();
        set.sort_unstable();
        set.dedup();
        let near = super::did_you_mean::nearest(&name, set.iter().copied())
            .map(|n| format!("; did you mean '{{header.{n}}}'?"));
        let which = if unset == published.rules.len() { "no rule" } else { "not every rule" };
        let they = if set.is_empty() { "they set none".to_owned() } else { format!("they set: {}", set.join(", ")) };
        let message = format!(
            "{which} publishing to this topic sets Kafka header '{name}' ({they}): their events would be dead-lettered{}",
            near.unwrap_or_default()
        );
        ctx.warning(at, message);
    }
}

/// The schemas of the events a rule taking `types` (every type, when `None`) can take: those
/// listing one of them at `member`, or no types at all. When it would take none, all of them:
/// the rule is warned about, and its templates are still checked.
fn taken_by(schemas: &[Arc<Schema>], member: &str, types: Option<Vec<String>>) -> Vec<Arc<Schema>> {
    let Some(types) = types else { return schemas.to_vec() };
    let takes = |s: &&Arc<Schema>| event_types_allowed(s, member).is_none_or(|l| types.iter().any(|t| l.contains(t)));
    let taken: Vec<Arc<Schema>> = schemas.iter().filter(takes).cloned().collect();
    if taken.is_empty() { schemas.to_vec() } else { taken }
}

/// Warns about each `when.event_type` no event described by `schemas` can have: a misspelt
/// type makes a rule pass over every event without a word. Only when every schema lists its
/// event types (`member`, by default `event_type`, with `const` or `enum`); any other schema
/// may allow anything.
fn warn_of_unknown_event_types(ctx: &mut Ctx, types: &Spanned<OneOrMany>, schemas: &[Arc<Schema>], member: &str) {
    if schemas.is_empty() {
        return;
    }
    let mut known = BTreeSet::new();
    for schema in schemas {
        let Some(listed) = event_types_allowed(schema, member) else { return };
        known.extend(listed);
    }
    let names: Vec<&str> = schemas.iter().map(|s| s.name.as_str()).collect();
    let allow = if names.len() == 1 { "allows" } else { "allow" };
    for t in types.value.to_vec() {
        if !known.contains(t.as_str()) {
            let (names, known) = (names.join(", "), known.iter().map(String::as_str).collect::<Vec<_>>().join(", "));
            let message = format!(
                "this rule would never call: no event on its topic has {member} '{t}' ({names} {allow} only {known})"
            );
            ctx.warning(types.referenced, message);
        }
    }
}

/// `url` with anything before an `@` in its authority (user and password) shown as `…`.
fn without_userinfo(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}…{}", &url[..start], &url[start + at..]),
        None => url.to_owned(),
    }
}

/// The host of `scheme://host[:port]`, lower-cased, without port or IPv6 brackets.
fn host_of(origin: &str) -> String {
    let authority = origin.split_once("://").map_or(origin, |(_, a)| a);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.to_ascii_lowercase()
}
