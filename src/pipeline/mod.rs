//! The pure pipeline: `verify → parse → validate → match → map → validate canonical`.
//! Parsing builds only what the source reads (`routes::projection`).
//!
//! No IO, no clock, no globals: the same inputs give the same answer, which is why the
//! server, `switchyard check` and `switchyard test` all call [`ingest`] and [`plan::plan`].

pub mod challenge;
pub mod explain;
pub mod form;
pub mod map;
pub mod parse;
pub mod plan;
pub mod transform;
pub mod verify;

use http::HeaderMap;
use serde::Serialize;
use serde_json::Value as Json;

use crate::routes::jsonpath::Path;
use crate::routes::reply::{Answer, AnswerBody};
use crate::routes::schema::Violation;
use crate::routes::{Rule, Source, Verifier};
use crate::text::{QUOTED_ID, QUOTED_VALUE, clip, clip_owned};
pub use map::{Headers, Input};
use transform::scalar_text;

/// One inbound webhook as the server received it.
pub struct Inbound<'a> {
    pub headers: &'a HeaderMap,
    /// The request URL's query, which Twilio's signature covers.
    pub query: Option<&'a str>,
    pub body: &'a [u8],
    /// Unix seconds, for signature freshness.
    pub now: i64,
    /// False only for dry runs that skip signatures (`check` without `--verify`).
    pub verify: bool,
}

/// A canonical event ready to publish.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    pub rule: String,
    pub topic: String,
    pub key: Option<String>,
    #[serde(serialize_with = "pairs_as_map")]
    pub headers: Vec<(String, String)>,
    pub value: Json,
}

impl Event {
    /// The value as published: JSON bytes, in a buffer sized for a typical event.
    pub fn payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        // Writing a `Value` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut out, &self.value);
        out
    }
}

/// What a webhook turns into.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Events to publish; the sender is answered after the broker holds all of them, with the
    /// first matching rule's `answer` if one has one.
    Publish { events: Vec<Event>, answer: Option<Replied> },
    /// Validly signed and valid, but no rule wants it: answered 200 `ignored`.
    Ignored(String),
    /// A handshake the reply named `reply` answers: nothing is published.
    Reply { reply: String, answer: Replied },
}

/// An answer the config writes: a reply's, or a rule's `answer`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Replied {
    pub http_status: u16,
    /// A text answer's own media type (`content_type:`), instead of `text/plain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    pub body: ReplyBody,
}

/// An answer's body: a JSON object, plain text, or nothing (`null` in dry runs).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ReplyBody {
    Json(Json),
    Text(String),
    Empty,
}

/// Why a webhook was refused, with the HTTP status the server answers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rejection {
    #[serde(skip)]
    pub status: u16,
    pub reason: Reason,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Signature,
    Json,
    Schema,
    Mapping,
    Canonical,
    /// A sender's GET verification (`challenge:`) that does not carry what it must.
    Challenge,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Signature => "signature",
            Reason::Json => "json",
            Reason::Schema => "schema",
            Reason::Mapping => "mapping",
            Reason::Canonical => "canonical",
            Reason::Challenge => "challenge",
        }
    }
}

fn reject(status: u16, reason: Reason, message: impl Into<String>) -> Rejection {
    Rejection { status, reason, message: message.into(), violations: Vec::new() }
}

/// Runs one webhook through the whole pipeline. Returns the parsed event id (for logs and
/// the answer; clipped to [`QUOTED_ID`] characters) when the body parsed, and the outcome.
pub fn ingest(source: &Source, input: &Inbound) -> (Option<String>, Result<Outcome, Rejection>) {
    if input.verify
        && let Err((scheme, why)) = verify::check(&source.verifier, input)
    {
        // A token or Basic credentials are no signature, but are refused alike (401, `signature`).
        let what = match scheme {
            Verifier::Token { .. } | Verifier::Basic { .. } => "authentication",
            _ => "signature verification",
        };
        return (None, Err(reject(401, Reason::Signature, format!("{what} failed: {why}"))));
    }
    let doc = match document(source, input) {
        Ok(doc) => doc,
        Err(rejection) => return (None, Err(rejection)),
    };
    let input = Input::webhook(&doc, input.headers, input.query);
    let event_id = source.event_id.as_ref().and_then(|at| map::text_at(at, input));
    let event_id = event_id.map(|id| clip_owned(id, QUOTED_ID));
    (event_id, route(source, input))
}

/// The parse stage: the webhook's JSON (a form's field, where the source takes forms), built
/// only as far as the source reads it.
pub fn document(source: &Source, input: &Inbound) -> Result<Json, Rejection> {
    let json =
        parse::json_of(input.body, input.headers, source.form.as_ref()).map_err(|e| reject(400, Reason::Json, e))?;
    parse::parse(&json, &source.reads).map_err(|e| reject(400, Reason::Json, format!("body is not valid JSON: {e}")))
}

/// Stages after parsing: validate, match, map, validate canonical. A handshake that a reply
/// matches is answered before the schema is checked: it is not an event.
pub fn route(source: &Source, input: Input) -> Result<Outcome, Rejection> {
    if let Some(reply) = source.replies.iter().find(|r| map::matches(&r.when, input)) {
        let replied = answer(&format!("reply '{}'", reply.name), &reply.answer, input)?;
        return Ok(Outcome::Reply { reply: reply.name.clone(), answer: replied });
    }
    let doc = input.doc;
    if let Some(schema) = &source.schema {
        let (violations, more) = schema.violations(doc);
        if !violations.is_empty() {
            let message =
                format!("payload does not match the schema of source '{}'{}", source.name, listed(&violations, more));
            return Err(Rejection { violations, ..reject(422, Reason::Schema, message) });
        }
    }
    let mut events = Vec::new();
    let mut answered = None;
    for rule in &source.rules {
        let before = events.len();
        match &rule.for_each {
            None if map::matches(&rule.when, input) => events.push(emit(rule, input)?),
            None => {}
            Some((path, _)) => each(rule, path, input, &mut events)?,
        }
        if events.len() > before
            && let (None, Some(a)) = (&answered, &rule.answer)
        {
            answered = Some(answer(&format!("rule '{}'", rule.name), a, input)?);
        }
    }
    if events.is_empty() {
        let kind = source.event_type.as_ref().and_then(|at| map::text_at(at, input));
        let why = match (kind, &source.event_type) {
            (Some(t), _) => {
                format!("no rule of source '{}' matches this '{}' event", source.name, clip(&t, QUOTED_VALUE))
            }
            // A batch's values hold their types, not the webhook.
            (None, Some(at)) if source.rules.iter().all(|r| r.for_each.is_none()) => format!(
                "no rule of source '{}' matches this event, which has no event type ({} is missing)",
                source.name,
                at.place()
            ),
            (None, _) => format!("no rule of source '{}' matches this event", source.name),
        };
        return Ok(Outcome::Ignored(why));
    }
    Ok(Outcome::Publish { events, answer: answered })
}

/// Most events one webhook may become: a batch beyond it is refused (422), not published in part.
pub const MAX_EVENTS: usize = 10_000;

/// A `for_each` rule: its events from each value `path` selects that its filter matches.
fn each(rule: &Rule, path: &Path, input: Input, events: &mut Vec<Event>) -> Result<(), Rejection> {
    for (i, value) in path.select(input.for_path(path)).into_iter().enumerate() {
        let one = Input { doc: value, ..input };
        if !map::matches(&rule.when, one) {
            continue;
        }
        if events.len() == MAX_EVENTS {
            let message = format!("rule '{}' would make more than {MAX_EVENTS} events of this webhook", rule.name);
            return Err(reject(422, Reason::Mapping, message));
        }
        let event = emit(rule, one).map_err(|mut r| {
            r.message = format!("{} (in value {i} of {})", r.message, path.as_str());
            r
        })?;
        events.push(event);
    }
    Ok(())
}

/// The answer `name` (a reply, or a rule with `answer:`) gives this webhook.
fn answer(name: &str, answer: &Answer, input: Input) -> Result<Replied, Rejection> {
    let refused = |e: map::MapError| {
        let message = format!("{name} cannot answer this payload: {}: {}", e.field, e.message);
        reject(422, Reason::Mapping, message)
    };
    let (body, content_type) = match &answer.body {
        AnswerBody::Json(fields) => {
            (ReplyBody::Json(Json::Object(map::object(fields, input, "body").map_err(refused)?)), None)
        }
        AnswerBody::Text(expr, content_type) => {
            // What a template inserts into TwiML or HTML stays text: a sender's `<` is `&lt;`.
            let escape =
                content_type.as_deref().is_some_and(map::is_markup).then_some(map::escape_markup as map::Escape);
            let found = map::eval_escaped(expr, input, None, escape).map_err(|e| refused(e.under("text")))?;
            (ReplyBody::Text(found.map(|v| as_text(&v)).unwrap_or_default()), content_type.clone())
        }
        AnswerBody::Empty => (ReplyBody::Empty, None),
    };
    Ok(Replied { http_status: answer.status, content_type, body })
}

/// A value as text: a string as it is, a number or boolean as JSON writes it.
fn as_text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => scalar_text(other).unwrap_or_else(|| other.to_string()),
    }
}

fn emit(rule: &Rule, input: Input) -> Result<Event, Rejection> {
    let mapping = |e: map::MapError| {
        let message = format!("rule '{}' cannot map this payload: {}: {}", rule.name, e.field, e.message);
        reject(422, Reason::Mapping, message)
    };
    let value = map::object(&rule.emit.value, input, "value").map_err(mapping)?;
    // The output's name is only spelled out for an error message.
    let text = |expr, field: &dyn Fn() -> String| -> Result<Option<String>, Rejection> {
        let v = map::eval(expr, input, Some(&value)).map_err(|e| mapping(e.under(&field())))?;
        Ok(v.map(|v| match v {
            Json::String(s) => s,
            other => as_text(&other),
        }))
    };
    let key = match &rule.emit.key {
        Some(k) => text(k, &|| "key".into())?,
        None => None,
    };
    let mut headers = Vec::with_capacity(rule.emit.headers.len());
    for (name, expr) in &rule.emit.headers {
        if let Some(v) = text(expr, &|| format!("headers.{name}"))? {
            headers.push((name.clone(), v));
        }
    }
    let value = Json::Object(value);
    let (violations, more) = rule.emit.schema.violations(&value);
    if !violations.is_empty() {
        let schema = &rule.emit.schema.name;
        let (status, reason, what) = match sent_at_fault(rule, &violations, input) {
            Some(sent) => (
                422,
                Reason::Mapping,
                format!("cannot map this payload: {sent} holds a value the canonical schema '{schema}' refuses"),
            ),
            None => (
                500,
                Reason::Canonical,
                format!(
                    "produced an event that violates its canonical schema '{schema}': the routes need fixing; nothing was published"
                ),
            ),
        };
        let message = format!("rule '{}' {what}{}", rule.name, listed(&violations, more));
        return Err(Rejection { violations, ..reject(status, reason, message) });
    }
    Ok(Event { rule: rule.name.clone(), topic: rule.emit.topic.clone(), key, headers, value })
}

/// The request header or query parameter whose value alone breaks the canonical schema, if
/// that is what every violation points at (`the request header 'x-shop'`): no inbound schema
/// checked it (nor the contract check, beyond its being a string), so the sender is at fault
/// (422), not the routes (500). A value the config wrote (a `default`, a `lookup` table's) is
/// never the sender's fault.
fn sent_at_fault(rule: &Rule, violations: &[Violation], input: Input) -> Option<String> {
    use crate::routes::expr::{Source, Step};
    let mut found: Option<String> = None;
    for v in violations {
        let expr = written_at(&rule.emit.value, &v.path)?;
        let (named, sent) = match &expr.source {
            Source::Header(h) => {
                (format!("the request header '{h}'"), matches!(input.headers.get(h.as_str()), Ok(Some(_))))
            }
            Source::Query(q) => (format!("the query parameter '{q}'"), input.query_value(q).is_some()),
            _ => return None,
        };
        // A value a lookup or a keyed hash made is the config's, not the sender's.
        let own = sent && !expr.steps.iter().any(|s| matches!(s, Step::Lookup { .. } | Step::HmacSha256 { .. }));
        if !own || found.as_ref().is_some_and(|f| *f != named) {
            return None;
        }
        found = Some(named);
    }
    found
}

/// The expression that wrote the value at the JSON Pointer `pointer` (such as `/delivery`,
/// `/customer/email` or `/items/0/sku`) or a value inside it; `None` when the pointer ends at an
/// `object` or an `each`'s array, which the config builds, not a sender's value.
fn written_at<'r>(
    mut fields: &'r [(String, crate::routes::expr::Expr)],
    pointer: &str,
) -> Option<&'r crate::routes::expr::Expr> {
    use crate::routes::expr::Source;
    let mut segments = pointer.strip_prefix('/')?.split('/').map(|s| s.replace("~1", "/").replace("~0", "~"));
    loop {
        let member = segments.next()?;
        let (_, expr) = fields.iter().find(|(name, _)| *name == member)?;
        if expr.each.is_some() {
            segments.next()?;
        }
        match &expr.source {
            Source::Object(inner) => fields = inner,
            _ => return Some(expr),
        }
    }
}

/// What a message adds when only the first of the violations are listed.
fn listed(violations: &[Violation], more: bool) -> String {
    match (more, violations.len()) {
        (false, _) => String::new(),
        (true, 1) => " (only the first violation is listed)".into(),
        (true, n) => format!(" (only the first {n} violations are listed)"),
    }
}

/// Serializes name/value pairs as a JSON object (readable output for `check`).
pub fn pairs_as_map<S: serde::Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        map.serialize_entry(k, v)?;
    }
    map.end()
}
