//! A webhook source compiled: its verification, schema, handshakes and rules, each rule's
//! filter and the canonical event it emits, and what of a payload they read (its projection).

use std::sync::Arc;

use serde_saphyr::Location;

use super::{
    Ctx, Expr, Filter, RESERVED_PATHS, Schema, Verifier, contract, expr, jsonpath, networks, projection, reply, verify,
};
use crate::config::model::{EmitConfig, RuleConfig, SourceConfig};

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

/// One source; `None` (and diagnostics in `ctx`) when it cannot run.
pub(super) fn compile(ctx: &mut Ctx, cfg: &SourceConfig) -> Option<Source> {
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
    // The event id is read in the payload; the event type where the rules' filters read, and
    // it is needed where a rule or reply names event types.
    let mut whens = cfg.rules.iter().map(|r| &r.when).chain(cfg.replies.iter().map(|r| &r.when));
    let names_types = whens.any(|w| w.event_type.is_some());
    let read_at = [
        ("event_type", &cfg.event_type, &event_type, &rules[..], names_types),
        ("event_id", &cfg.event_id, &event_id, &[][..], false),
    ];
    for (what, text, locator, rules, needed) in read_at {
        if let (Some(schema), Some(text), Some(expr::Locator::Path(p))) = (&schema, text, locator) {
            let what = format!("source '{name}', {what}");
            contract::check_source_path(ctx, &what, p.as_str(), text.referenced, schema, rules, needed);
        }
    }
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
