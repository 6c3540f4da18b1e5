//! Compiled routes: the config turned, once, into everything the pipeline needs — env
//! expanded, JSONPaths parsed, schemas compiled, verifiers and transforms built.
//!
//! [`compile`] never stops at the first problem: it gathers every diagnostic it can.

pub mod contract;
mod did_you_mean;
pub mod dispatch;
pub mod expr;
pub mod jsonpath;
mod networks;
pub mod projection;
pub mod reply;
pub mod schema;
pub mod template;
pub mod verify;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::Location;

use crate::config::model::{EmitConfig, RuleConfig, Scalar, SourceConfig, Spanned, Text};
use crate::config::{Diagnostics, Loaded, env};
pub use dispatch::Dispatcher;
pub use expr::{Expr, Filter};
pub use schema::Schema;
pub use verify::Verifier;

/// Everything one config file says, ready to run.
#[derive(Debug)]
pub struct Routes {
    pub kafka: KafkaSettings,
    pub ingress: IngressSettings,
    pub sources: Vec<Source>,
    pub dispatchers: Vec<Dispatcher>,
}

impl Routes {
    /// The source served at `path`, if any; one trailing `/` is forgiven (`/hooks/s/` is
    /// `/hooks/s`: a sender pasting the URL with a slash would otherwise get 404s, and
    /// webhook senders do not follow redirects).
    pub fn source_at(&self, path: &str) -> Option<&Source> {
        let exact = self.sources.iter().find(|s| s.path == path);
        let trimmed = || path.strip_suffix('/').and_then(|t| self.sources.iter().find(|s| s.path == t));
        exact.or_else(trimmed)
    }

    /// Every topic the routes publish to or consume from (dead-letter topics too), each once.
    pub fn topics(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let emitted = self.sources.iter().flat_map(|s| s.topics().map(str::to_owned));
        let consumed = self.dispatchers.iter().flat_map(|d| [d.topic.clone(), d.dead_letter_topic.clone()]);
        for t in emitted.chain(consumed) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    pub fn source_named(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// Every schema file the routes use (entry points; `$ref` targets live beside them).
    pub fn schema_files(&self) -> Vec<PathBuf> {
        let sources = self.sources.iter().flat_map(|s| {
            s.schema.iter().map(|x| x.file.clone()).chain(s.rules.iter().map(|r| r.emit.schema.file.clone()))
        });
        let dispatchers = self.dispatchers.iter().flat_map(|d| d.schema.iter().map(|x| x.file.clone()));
        let mut files: Vec<PathBuf> = sources.chain(dispatchers).collect();
        files.sort();
        files.dedup();
        files
    }
}

#[derive(Clone, Debug)]
pub struct KafkaSettings {
    pub brokers: String,
    pub publish_timeout: Duration,
    /// librdkafka properties from the config, applied over Switchyard's defaults.
    pub properties: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct IngressSettings {
    pub max_body_bytes: usize,
    pub read_timeout: Duration,
    pub max_in_flight: usize,
    pub max_connections: usize,
    /// Budget of body bytes buffered at once (memory bound under many large bodies).
    pub max_buffered_bytes: usize,
    /// Proxies whose `X-Forwarded-For` names the client (`trusted_proxies`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// How a source reads an `application/x-www-form-urlencoded` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// The JSON is in this field (`form_field: payload`, GitHub's form content type).
    Field(String),
    /// The fields are the payload, as a JSON object of strings (`form_fields: true`).
    Fields,
}

/// One webhook sender.
#[derive(Debug)]
pub struct Source {
    pub name: String,
    pub path: String,
    pub verifier: Verifier,
    /// The only client addresses that may post (`allowed_ips`); none: any.
    pub allowed_ips: Option<Vec<ipnet::IpNet>>,
    /// Only clients with a certificate the listener's client CA issued may post.
    pub require_client_certificate: bool,
    pub schema: Option<Arc<Schema>>,
    /// How a form-encoded body is read (`form_field:` or `form_fields:`); none: not accepted.
    pub form: Option<Form>,
    /// Where refused webhooks are kept (`dead_letter_topic:`).
    pub dead_letter_topic: Option<String>,
    pub event_type: Option<expr::Locator>,
    pub event_id: Option<expr::Locator>,
    /// Answers to handshakes, matched before the schema and the rules.
    pub replies: Vec<reply::Reply>,
    /// The answer to a sender's GET verification (`challenge:`); none: a GET is a 405.
    pub challenge: Option<reply::Challenge>,
    pub rules: Vec<Rule>,
    /// What of a payload the schema and the rules read: all the parser builds.
    pub reads: projection::Projection,
}

impl Source {
    /// The topics this source writes to: its rules', and its dead-letter topic.
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.emit.topic.as_str()).chain(self.dead_letter_topic.as_deref())
    }
}

/// A rule: filter, then one canonical event.
#[derive(Debug)]
pub struct Rule {
    pub name: String,
    /// Runs the rule once for each value this selects (`for_each:`), instead of on the payload;
    /// with where it was written.
    pub for_each: Option<(jsonpath::Path, Location)>,
    pub when: Filter,
    pub emit: Emit,
    /// What the sender is answered once the broker holds the event (`answer:`).
    pub answer: Option<reply::Answer>,
}

#[derive(Debug)]
pub struct Emit {
    pub topic: String,
    pub schema: Arc<Schema>,
    pub key: Option<Expr>,
    pub headers: Vec<(String, Expr)>,
    pub value: Vec<(String, Expr)>,
}

/// The largest body a source takes: librdkafka's largest `message.max.bytes`.
const MAX_RECORD_BYTES: u64 = 1_000_000_000;

/// The most webhooks, connections or calls a setting lets be at once.
pub(crate) const MAX_AT_ONCE: u64 = 1_000_000;

/// How unset environment variables count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvMode {
    /// `serve`, `dev`, `redrive`: an unset variable without default is an error in what the
    /// process runs (`kafka:` always; `sources:` when it serves webhooks, `dispatch:` when it
    /// runs dispatchers) and a warning in what it does not run: a dispatcher-only process
    /// needs no webhook secret, an ingress-only one no order-service token.
    Strict { sources: bool, dispatch: bool },
    /// `validate`, `check`, `test`: reported as a warning.
    Lenient,
}

impl EnvMode {
    /// Strict everywhere: the process runs every part.
    pub const STRICT: EnvMode = EnvMode::Strict { sources: true, dispatch: true };
}

/// The part of the config being compiled, for [`EnvMode::Strict`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Shared,
    Sources,
    Dispatch,
}

/// Why a producer property overriding Switchyard's own weakens what a 200 means (the event
/// is on every in-sync replica, written once).
fn weakens_acknowledgement(name: &str, value: &str) -> Option<&'static str> {
    match (name, value.trim().to_ascii_lowercase().as_str()) {
        ("acks" | "request.required.acks", "all" | "-1") => None,
        ("acks" | "request.required.acks", _) => {
            Some("a webhook is then acknowledged before every in-sync replica holds its event (Switchyard sets 'all')")
        }
        ("enable.idempotence", "false" | "0") => {
            Some("a retried send may then write an event twice, or out of order (Switchyard sets 'true')")
        }
        _ => None,
    }
}

/// The domain of the hosts [`Ctx::url_text`] puts in place of unset variables.
const UNSET_HOST: &str = ".unset.invalid";

/// True for a host that stands for an unset variable (never in a config that runs).
pub(crate) fn is_stand_in_host(host: &str) -> bool {
    host.ends_with(UNSET_HOST)
}

/// Paths that the server answers itself.
pub const RESERVED_PATHS: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// Compiles a loaded config. `Ok` carries the routes and any warnings.
pub fn compile(
    loaded: &Loaded,
    env: &dyn Fn(&str) -> Option<String>,
    mode: EnvMode,
) -> Result<(Routes, Diagnostics), Diagnostics> {
    let mut ctx = Ctx {
        file: &loaded.path,
        dir: &loaded.dir,
        env,
        mode,
        part: Part::Shared,
        diags: Diagnostics::default(),
        schemas: HashMap::new(),
        source_paths: None,
        root_paths: Vec::new(),
    };
    let cfg = &loaded.file;
    let kafka = KafkaSettings {
        brokers: cfg.kafka.brokers.as_ref().and_then(|b| ctx.text(b)).unwrap_or_else(|| "localhost:9092".into()),
        publish_timeout: Duration::from_millis(cfg.kafka.publish_timeout_ms.as_ref().map_or(10_000, |t| t.value)),
        properties: cfg
            .kafka
            .properties
            .iter()
            .filter_map(|(k, v)| {
                let value = match &v.value {
                    Scalar::Str(s) => ctx.text(&Spanned(serde_saphyr::Spanned {
                        value: s.clone(),
                        referenced: v.referenced,
                        defined: v.defined,
                    }))?,
                    Scalar::Int(i) => i.to_string(),
                    Scalar::Float(f) => f.to_string(),
                    Scalar::Bool(b) => b.to_string(),
                };
                Some((k.clone(), value))
            })
            .collect(),
    };
    if let Some(error) = crate::kafka::brokers_error(&kafka.brokers) {
        ctx.error(cfg.kafka.brokers.as_ref().map_or(Location::UNKNOWN, |b| b.referenced), error);
    }
    let errors_before = ctx.diags.errors().count();
    for (name, spanned) in &cfg.kafka.properties {
        let value = kafka.properties.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if let Some(error) = value.and_then(|v| crate::kafka::property_error(name, v)) {
            ctx.error(spanned.referenced, format!("kafka property '{name}': {error}"));
        } else if let Some(weaker) = value.and_then(|v| weakens_acknowledgement(name, v)) {
            ctx.warning(
                spanned.referenced,
                format!("kafka property '{name}: {}': {weaker}", value.unwrap_or_default()),
            );
        }
    }
    // Properties each fine may still not go together: ask librdkafka about the whole set.
    if !kafka.properties.is_empty()
        && ctx.diags.errors().count() == errors_before
        && let Some(error) = crate::kafka::producer::config_error(&kafka)
    {
        let at = cfg.kafka.properties.values().next().map_or(Location::UNKNOWN, |v| v.referenced);
        ctx.error(at, format!("kafka.properties: {error}"));
    }
    ctx.at_least(&cfg.kafka.publish_timeout_ms, 1, "publish_timeout_ms");
    // It is the producer's `message.timeout.ms` too, which librdkafka holds in a C `int`.
    let most = i32::MAX as u64;
    ctx.at_most(&cfg.kafka.publish_timeout_ms, most, "publish_timeout_ms", "librdkafka's message.timeout.ms");
    let limits = &cfg.ingress;
    ctx.at_least(&limits.max_body_bytes, 1, "max_body_bytes");
    ctx.at_least(&limits.read_timeout_ms, 1, "read_timeout_ms");
    ctx.at_least(&limits.max_in_flight, 1, "max_in_flight");
    ctx.at_least(&limits.max_connections, 1, "max_connections");
    ctx.at_least(&limits.max_buffered_bytes, 1, "max_buffered_bytes");
    // A body is one Kafka record's worth at most; counts of things at once stay countable.
    ctx.at_most(&limits.max_body_bytes, MAX_RECORD_BYTES, "max_body_bytes", "librdkafka's largest message.max.bytes");
    ctx.at_most(&limits.max_in_flight, MAX_AT_ONCE, "max_in_flight", "beyond that it limits nothing");
    ctx.at_most(&limits.max_connections, MAX_AT_ONCE, "max_connections", "beyond that it limits nothing");
    let ingress = IngressSettings {
        max_body_bytes: cfg.ingress.max_body_bytes.as_ref().map_or(1 << 20, |v| v.value as usize),
        read_timeout: Duration::from_millis(cfg.ingress.read_timeout_ms.as_ref().map_or(10_000, |v| v.value)),
        max_in_flight: cfg.ingress.max_in_flight.as_ref().map_or(4096, |v| v.value.max(1) as usize),
        max_connections: cfg.ingress.max_connections.as_ref().map_or(10_000, |v| v.value.max(1) as usize),
        max_buffered_bytes: cfg.ingress.max_buffered_bytes.as_ref().map_or(64 << 20, |v| v.value.max(1) as usize),
        trusted_proxies: networks::compile(&mut ctx, &cfg.ingress.trusted_proxies, "trusted_proxies")
            .map(|n| n.nets)
            .unwrap_or_default(),
    };
    if let Some(budget) = &cfg.ingress.max_buffered_bytes
        && (budget.value as usize) < ingress.max_body_bytes
    {
        let msg = format!(
            "max_buffered_bytes ({}) is smaller than max_body_bytes ({}): a body of the largest allowed size could never be read",
            budget.value, ingress.max_body_bytes
        );
        ctx.error(budget.referenced, msg);
    }

    let units = loaded.units();
    if units.iter().all(|u| u.sources.is_empty() && u.dispatch.is_empty()) {
        ctx.warning(Location::UNKNOWN, "no 'sources' and no 'dispatch': a server on this config would do nothing");
    }
    let mut sources: Vec<Source> = Vec::new();
    ctx.part = Part::Sources;
    for unit in &units {
        (ctx.file, ctx.dir) = (unit.path, unit.dir);
        for s in unit.sources {
            let Some(source) = compile_source(&mut ctx, s) else { continue };
            for rule in &source.rules {
                contract::check_rule(&mut ctx, rule, source.schema.as_deref());
            }
            if let Some(other) = sources.iter().find(|o| o.path == source.path) {
                let msg = format!("duplicate route path '{}': source '{}' already serves it", source.path, other.name);
                ctx.error(s.path.referenced, msg);
            } else if let Some(other) = sources.iter().find(|o| o.name == source.name) {
                let msg = format!("duplicate source name '{}'", other.name);
                ctx.error(s.name.referenced, msg);
            } else {
                sources.push(source);
            }
        }
    }
    // A dispatcher without its own `schema` is checked against what is published to its topic.
    let mut published: HashMap<String, dispatch::Published> = HashMap::new();
    for rule in sources.iter().flat_map(|s| &s.rules) {
        let on_topic = published.entry(rule.emit.topic.clone()).or_default();
        if !on_topic.schemas.iter().any(|s| s.file == rule.emit.schema.file) {
            on_topic.schemas.push(rule.emit.schema.clone());
        }
        on_topic.rules.push(rule.emit.headers.iter().map(|(name, _)| name.to_ascii_lowercase()).collect());
    }
    ctx.part = Part::Dispatch;
    let mut dispatchers: Vec<Dispatcher> = Vec::new();
    for unit in &units {
        (ctx.file, ctx.dir) = (unit.path, unit.dir);
        for d in unit.dispatch {
            let Some(dispatcher) = dispatch::compile(&mut ctx, d, &published) else { continue };
            // Its name is what `redrive --dispatcher`, dead letters and metrics know it by.
            if dispatchers.iter().any(|o| o.name == dispatcher.name) {
                ctx.error(d.name.referenced, format!("duplicate dispatcher name '{}'", dispatcher.name));
            } else {
                dispatchers.push(dispatcher);
            }
        }
    }
    // A topic of refused webhooks must not be read as one of events.
    let written = units.iter().flat_map(|u| u.sources.iter().map(move |c| (u, c)));
    for (unit, source_cfg) in written {
        (ctx.file, ctx.dir) = (unit.path, unit.dir);
        let Some(source) = sources.iter().find(|s| s.name == source_cfg.name.value) else { continue };
        let (Some(topic), Some(text)) = (&source.dead_letter_topic, &source_cfg.dead_letter_topic) else {
            continue;
        };
        let why = if published.contains_key(topic) {
            "rules publish events to it"
        } else if dispatchers.iter().any(|d| &d.topic == topic) {
            "a dispatcher consumes it"
        } else {
            continue;
        };
        let message = format!(
            "dead_letter_topic '{topic}' of source '{}' holds refused webhooks, but {why}: give it a topic of its own",
            source.name
        );
        ctx.error(text.referenced, message);
    }
    if ctx.diags.has_errors() {
        return Err(ctx.diags);
    }
    Ok((Routes { kafka, ingress, sources, dispatchers }, ctx.diags))
}

fn compile_source(ctx: &mut Ctx, cfg: &SourceConfig) -> Option<Source> {
    let name = cfg.name.value.clone();
    let path = cfg.path.value.clone();
    if !path.starts_with('/') {
        ctx.error(cfg.path.referenced, format!("path '{path}' must start with '/'"));
    } else if RESERVED_PATHS.contains(&path.as_str()) {
        ctx.error(cfg.path.referenced, format!("path '{path}' is reserved for the server's own endpoint"));
    }
    let verifier = verify::compile_source(ctx, &cfg.verify, &format!("source '{name}'"), cfg.name.referenced);
    let allowed_ips = cfg.allowed_ips.as_ref().map(|entries| {
        let found = networks::compile(ctx, entries, &format!("source '{name}', allowed_ips"));
        if found.as_ref().is_some_and(|f| f.nets.is_empty() && !f.unset) {
            let at = entries.first().map_or(cfg.name.referenced, |t| t.referenced);
            let message = format!(
                "source '{name}', allowed_ips: no address is allowed, so every webhook would be refused; leave allowed_ips out to allow any"
            );
            ctx.error(at, message);
        }
        found.map(|f| f.nets)
    });
    let schema = cfg.schema.as_ref().and_then(|s| ctx.schema(s));
    if cfg.schema.is_none() && !cfg.rules.is_empty() {
        let msg = format!(
            "source '{name}' has no 'schema': payloads are not validated, so nothing proves its rules' events fit their canonical schemas; a payload with unexpected values is answered 500 (canonical) instead of 422"
        );
        ctx.warning(cfg.name.referenced, msg);
    }
    // Every JSONPath compiled from here to the end of the source reads its payloads.
    ctx.source_paths = Some(Vec::new());
    ctx.root_paths.clear();
    let event_type = cfg.event_type.as_ref().and_then(|l| expr::compile_locate(ctx, l));
    let event_id = cfg.event_id.as_ref().and_then(|l| expr::compile_locate(ctx, l));
    let at = || match (&event_type, &cfg.event_type) {
        (Some(at), _) => expr::EventTypeAt::At(at.clone()),
        (None, Some(_)) => expr::EventTypeAt::Broken,
        (None, None) => expr::EventTypeAt::Unsaid,
    };
    // Replies and rules share one namespace: their names are what logs and metrics show.
    let mut names: Vec<&str> = Vec::new();
    for text in cfg.replies.iter().map(|r| &r.name).chain(cfg.rules.iter().map(|r| &r.name)) {
        if names.contains(&text.value.as_str()) {
            let what = if names.len() < cfg.replies.len() { "reply" } else { "rule" };
            ctx.error(text.referenced, format!("duplicate {what} name '{}' in source '{name}'", text.value));
        }
        names.push(&text.value);
    }
    let replies: Vec<reply::Reply> = cfg.replies.iter().filter_map(|r| reply::compile(ctx, r, at())).collect();
    if let Some(schema) = &schema {
        for r in &replies {
            contract::check_reply(ctx, r, schema);
        }
    }
    let challenge = cfg.challenge.as_ref().map(|c| reply::compile_challenge(ctx, c, &name));
    let rules: Vec<Rule> = cfg.rules.iter().filter_map(|r| compile_rule(ctx, r, at())).collect();
    if let (Some(schema), Some(expr::Locator::Path(p))) = (&schema, &event_type) {
        let rules = cfg.rules.iter().map(|r| (format!("rule '{}'", r.name.value), &r.when));
        let replies = cfg.replies.iter().map(|r| (format!("reply '{}'", r.name.value), &r.when));
        for (what, types) in rules.chain(replies).filter_map(|(what, when)| Some((what, when.event_type.as_ref()?))) {
            contract::check_event_types(ctx, &what, types, p.as_str(), schema);
        }
    }
    let mut reads = projection::Projection::default();
    if let Some(s) = &schema {
        reads.read_schema(&s.document, &s.file);
    }
    for text in ctx.source_paths.take().unwrap_or_default().iter().chain(&std::mem::take(&mut ctx.root_paths)) {
        reads.read_path(text);
    }
    let form = compile_form(ctx, cfg);
    let dead_letter_topic = cfg.dead_letter_topic.as_ref().and_then(|t| ctx.text_or_name(t));
    if let (Some(text), Some(topic)) = (&cfg.dead_letter_topic, &dead_letter_topic) {
        if topic.is_empty() {
            ctx.error(text.referenced, "dead_letter_topic is empty");
        }
    }
    Some(Source {
        name,
        path,
        verifier: verifier?,
        allowed_ips: match allowed_ips {
            Some(nets) => Some(nets?),
            None => None,
        },
        require_client_certificate: cfg.require_client_certificate.as_ref().is_some_and(|b| b.value),
        schema,
        form,
        dead_letter_topic,
        event_type,
        event_id,
        replies,
        challenge: match challenge {
            Some(c) => Some(c?),
            None => None,
        },
        rules,
        reads,
    })
}

/// `form_field` and `form_fields`: at most one, and a field that is named.
fn compile_form(ctx: &mut Ctx, cfg: &SourceConfig) -> Option<Form> {
    let field = cfg.form_field.as_ref().and_then(|f| ctx.text(f));
    if let Some(f) = &cfg.form_field
        && field.as_deref() == Some("")
    {
        ctx.error(f.referenced, "form_field is empty: name the form field that holds the JSON, e.g. payload");
    }
    let fields = cfg.form_fields.as_ref().filter(|f| f.value);
    if let (Some(f), Some(_)) = (fields, &cfg.form_field) {
        let message =
            "give form_field (the JSON is in one field) or form_fields (the fields are the payload), not both";
        ctx.error(f.referenced, message);
    }
    match (field, fields) {
        (Some(field), None) => Some(Form::Field(field)),
        (None, Some(_)) => Some(Form::Fields),
        _ => None,
    }
}

fn compile_rule(ctx: &mut Ctx, cfg: &RuleConfig, event_type: expr::EventTypeAt) -> Option<Rule> {
    // The selected values are read whole; the paths under them are theirs, not the payload's.
    let for_each = cfg.for_each.as_ref().map(|text| ctx.path(text));
    let reads = if for_each.is_some() { ctx.source_paths.take() } else { None };
    let when = expr::compile_filter(ctx, &cfg.when, event_type);
    let emit = compile_emit(ctx, &cfg.emit, &cfg.name.value);
    if for_each.is_some() {
        ctx.source_paths = reads;
    }
    let answer = match &cfg.answer {
        Some(a) => Some(reply::compile_rule_answer(ctx, a, cfg.name.referenced, &cfg.name.value)?),
        None => None,
    };
    let for_each = match (for_each, &cfg.for_each) {
        (Some(path), Some(text)) => Some((path?, text.referenced)),
        _ => None,
    };
    Some(Rule { name: cfg.name.value.clone(), for_each, when: when?, emit: emit?, answer })
}

fn compile_emit(ctx: &mut Ctx, cfg: &EmitConfig, rule: &str) -> Option<Emit> {
    let topic = ctx.text_or_name(&cfg.topic);
    if topic.as_deref() == Some("") {
        ctx.error(cfg.topic.referenced, "topic is empty");
    }
    let schema = ctx.schema(&cfg.schema);
    let mut ok = true;
    let mut value = Vec::new();
    for (name, e) in &cfg.value {
        match expr::compile(ctx, e, &format!("rule '{rule}', value.{name}"), false) {
            Some(x) => value.push((name.clone(), x)),
            None => ok = false,
        }
    }
    let field_ok = |ctx: &mut Ctx, x: &Expr, what: &str| {
        if let expr::Source::Field(f) = &x.source
            && !value.iter().any(|(n, _)| n == f)
        {
            let known: Vec<_> = value.iter().map(|(n, _)| n.as_str()).collect();
            ctx.error(
                x.at,
                format!("{what}: 'field: {f}' is not a property of the value (it has: {})", known.join(", ")),
            );
            return false;
        }
        true
    };
    let key = match &cfg.key {
        Some(k) => match expr::compile(ctx, k, &format!("rule '{rule}', key"), true) {
            Some(x) => {
                ok &= field_ok(ctx, &x, &format!("rule '{rule}', key"));
                Some(x)
            }
            None => {
                ok = false;
                None
            }
        },
        None => None,
    };
    let mut headers = Vec::new();
    for (name, e) in &cfg.headers {
        let what = format!("rule '{rule}', headers.{name}");
        match expr::compile(ctx, e, &what, true) {
            Some(x) => {
                ok &= field_ok(ctx, &x, &what);
                headers.push((name.clone(), x));
            }
            None => ok = false,
        }
    }
    ok.then_some(())?;
    Some(Emit { topic: topic?, schema: schema?, key, headers, value })
}

/// State shared while compiling one file: where it is, the environment, what was found.
pub(crate) struct Ctx<'a> {
    file: &'a Path,
    dir: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
    mode: EnvMode,
    part: Part,
    diags: Diagnostics,
    schemas: HashMap<PathBuf, Arc<Schema>>,
    /// While a source compiles: the text of every JSONPath it compiles (for its projection).
    source_paths: Option<Vec<String>>,
    /// The `$$…` paths compiled since the source began, as `$…` paths: they read the payload
    /// even under a `for_each` or an `each`.
    root_paths: Vec<String>,
}

impl Ctx<'_> {
    pub(crate) fn error(&mut self, at: Location, message: impl Into<String>) {
        self.diags.error(self.file, at, message);
    }

    pub(crate) fn warning(&mut self, at: Location, message: impl Into<String>) {
        self.diags.warning(self.file, at, message);
    }

    /// An error when a limit, timeout or delay that is set is below `min` (a zero there
    /// refuses every webhook, fails every call, or retries without pause).
    pub(crate) fn at_least(&mut self, value: &Option<Spanned<u64>>, min: u64, what: &str) {
        if let Some(v) = value
            && v.value < min
        {
            self.error(v.referenced, format!("'{what}' must be at least {min}, not {}", v.value));
        }
    }

    /// An error when a limit that is set is above `max` (`why`: what bounds it).
    pub(crate) fn at_most(&mut self, value: &Option<Spanned<u64>>, max: u64, what: &str, why: &str) {
        if let Some(v) = value
            && v.value > max
        {
            self.error(v.referenced, format!("'{what}' must be at most {max} ({why}), not {}", v.value));
        }
    }

    /// The string with `${VAR}` expanded; `None` (and a diagnostic) when it cannot be.
    pub(crate) fn text(&mut self, text: &Text) -> Option<String> {
        let e = match env::expand(&text.value, self.env) {
            Ok(s) => return Some(s),
            Err(e) => e,
        };
        match (e.unset(), self.unset_is_fine()) {
            (Some(_), Some(why)) => self.warning(text.referenced, format!("{e}{why}")),
            _ => self.error(text.referenced, e.to_string()),
        }
        None
    }

    /// As [`Ctx::text`], but where an unset variable is only a warning (what reads it does not
    /// run here: `validate`, `check`, `test`, or a part this process does not run) it stands
    /// for `$NAME`, so what holds the value still compiles and is checked: a topic, a group, a
    /// header's value, an id.
    pub(crate) fn text_or_name(&mut self, text: &Text) -> Option<String> {
        self.text_with(text, |name, _| format!("${name}"))
    }

    /// As [`Ctx::text`], telling an unset variable that is only a warning here (`Some(None)`)
    /// from an error (`None`).
    pub(crate) fn text_unless_unset(&mut self, text: &Text) -> Option<Option<String>> {
        let errors = self.diags.errors().count();
        match self.text(text) {
            Some(value) => Some(Some(value)),
            None if self.diags.errors().count() == errors => Some(None),
            None => None,
        }
    }

    /// As [`Ctx::text_or_name`], for a URL: an unset variable stands for a host of its own
    /// under `.unset.invalid` (`http://order-service-url.unset.invalid` when it begins the
    /// URL), which no call can reach and `allowed_hosts` lets by ([`is_stand_in_host`]).
    pub(crate) fn url_text(&mut self, text: &Text) -> Option<String> {
        self.text_with(text, |name, first| {
            let host = format!("{}{UNSET_HOST}", name.to_ascii_lowercase().replace('_', "-"));
            if first { format!("http://{host}") } else { host }
        })
    }

    fn text_with(&mut self, text: &Text, stand_in: impl Fn(&str, bool) -> String) -> Option<String> {
        let e = match env::expand(&text.value, self.env) {
            Ok(s) => return Some(s),
            Err(e) => e,
        };
        let (Some(name), Some(why)) = (e.unset(), self.unset_is_fine()) else {
            self.error(text.referenced, e.to_string());
            return None;
        };
        self.warning(text.referenced, format!("{e}{why}"));
        // Every variable that is missing (or empty where `:?` needs it) takes its stand-in.
        let raw = &text.value;
        let mut missing = vec![name.to_owned()];
        loop {
            let env = self.env;
            let lookup = |name: &str| {
                let first = raw.starts_with(&format!("${{{name}"));
                if missing.iter().any(|m| m == name) { Some(stand_in(name, first)) } else { env(name) }
            };
            match env::expand(raw, &lookup) {
                Ok(s) => return Some(s),
                Err(e) => match e.unset() {
                    Some(name) if !missing.iter().any(|m| m == name) => missing.push(name.to_owned()),
                    _ => return None,
                },
            }
        }
    }

    /// `Some` (with what to add to the warning) when an unset variable in the part being
    /// compiled is only a warning; `None` when it is an error.
    /// Whether this compile is for a dry run (`validate`, `check`, `test`): nothing it compiles
    /// is served or called.
    pub(crate) fn dry_run(&self) -> bool {
        matches!(self.mode, EnvMode::Lenient)
    }

    fn unset_is_fine(&self) -> Option<&'static str> {
        match (self.mode, self.part) {
            (EnvMode::Lenient, _) => Some(""),
            (EnvMode::Strict { sources: false, .. }, Part::Sources) => {
                Some("; only a warning: this process serves no webhooks, so it does not read it")
            }
            (EnvMode::Strict { dispatch: false, .. }, Part::Dispatch) => {
                Some("; only a warning: this process runs no dispatcher, so it does not read it")
            }
            (EnvMode::Strict { .. }, _) => None,
        }
    }

    /// `name` as an HTTP header name (lower-cased: header names ignore case); `None` (and a
    /// diagnostic at `at`) when HTTP does not allow it.
    pub(crate) fn header_name(&mut self, name: &str, at: Location) -> Option<http::HeaderName> {
        match http::HeaderName::from_bytes(name.as_bytes()) {
            Ok(h) => Some(h),
            Err(_) => {
                self.error(at, format!("'{name}' is not a valid header name"));
                None
            }
        }
    }

    pub(crate) fn path(&mut self, text: &Text) -> Option<jsonpath::Path> {
        self.path_at(&text.value, text.referenced)
    }

    pub(crate) fn path_at(&mut self, text: &str, at: Location) -> Option<jsonpath::Path> {
        let path = jsonpath::Path::parse(text).map_err(|e| self.error(at, e)).ok()?;
        match jsonpath::root_relative(text) {
            Some(plain) => self.root_paths.push(plain.to_owned()),
            None => {
                if let Some(paths) = &mut self.source_paths {
                    paths.push(text.to_owned());
                }
            }
        }
        Some(path)
    }

    /// The compiled schema at `text` (relative to the config's folder), loaded once per file.
    pub(crate) fn schema(&mut self, text: &Text) -> Option<Arc<Schema>> {
        let name = self.text(text)?;
        let file = self.dir.join(&name);
        if let Some(s) = self.schemas.get(&file) {
            return Some(s.clone());
        }
        match Schema::load(&name, &file) {
            Ok(s) => {
                let s = Arc::new(s);
                self.schemas.insert(file, s.clone());
                Some(s)
            }
            Err(e) => {
                self.error(text.referenced, e);
                None
            }
        }
    }
}
