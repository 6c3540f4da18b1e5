//! Dry runs: one payload through the same pipeline and planner the server and dispatcher
//! run (`switchyard check`; `--get`, a sender's GET verification), and a config's own test
//! cases (`switchyard test`, in [`cases`]).

pub mod cases;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::Value as Json;

use crate::pipeline::explain::{self, PassedOver};
use crate::pipeline::plan::{self, Body, Delivered, PlannedCall};
use crate::pipeline::{self, Event, Inbound, Input, Outcome, Rejection, Replied};
use crate::routes::dispatch::DispatchRule;
use crate::routes::{Routes, Source};

/// What one payload would cause.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DryRun {
    Accepted {
        event_id: Option<String>,
        events: Vec<Event>,
        calls: Vec<CallOf>,
        /// The dispatch rules of each event that no rule of a dispatcher consuming its topic
        /// takes, with why: where a call expected is missing.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        passed_over: Vec<Unmatched>,
        /// A rule's `answer`, which the sender would get instead of the `accepted` JSON.
        #[serde(skip_serializing_if = "Option::is_none")]
        answer: Option<Replied>,
    },
    Ignored {
        event_id: Option<String>,
        reason: String,
        /// Each rule of the source, with why it takes nothing of the webhook.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        passed_over: Vec<PassedOver>,
    },
    /// A handshake a reply answers; nothing would be published.
    Replied {
        event_id: Option<String>,
        reply: String,
        #[serde(flatten)]
        replied: Replied,
    },
    Rejected {
        http_status: u16,
        #[serde(flatten)]
        rejection: Rejection,
    },
}

/// A planned call and the dispatcher that would make it (or why it could not be planned:
/// the dispatcher would dead-letter the event).
#[derive(Debug)]
pub struct CallOf {
    pub dispatcher: String,
    pub rule: String,
    pub call: Result<PlannedCall, String>,
}

impl Serialize for CallOf {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Planned<'a> {
            dispatcher: &'a str,
            #[serde(flatten)]
            call: &'a PlannedCall,
        }
        #[derive(Serialize)]
        struct DeadLetter<'a> {
            dispatcher: &'a str,
            rule: &'a str,
            dead_letter: &'a str,
        }
        match &self.call {
            Ok(call) => Planned { dispatcher: &self.dispatcher, call }.serialize(s),
            Err(e) => DeadLetter { dispatcher: &self.dispatcher, rule: &self.rule, dead_letter: e }.serialize(s),
        }
    }
}

/// An event's dispatch rule that takes nothing of it (`event`: its place among the webhook's).
#[derive(Debug, Serialize)]
pub struct Unmatched {
    pub event: usize,
    #[serde(flatten)]
    pub passed: PassedOver,
}

/// Runs a webhook through `source`, then plans every dispatcher call its events would cause.
pub fn run(routes: &Routes, source: &Source, input: &Inbound) -> DryRun {
    let (event_id, result) = pipeline::ingest(source, input);
    match result {
        Ok(Outcome::Ignored(reason)) => {
            // The same parse the pipeline ran, which succeeded: the rules' filters read it.
            let doc = pipeline::document(source, input).unwrap_or_default();
            let passed_over = explain::source_rules(source, Input::webhook(&doc, input.headers, input.query));
            DryRun::Ignored { event_id, reason, passed_over }
        }
        Ok(Outcome::Reply { reply, answer }) => DryRun::Replied { event_id, reply, replied: answer },
        Err(rejection) => DryRun::Rejected { http_status: rejection.status, rejection },
        Ok(Outcome::Publish { events, answer }) => {
            let calls = events.iter().flat_map(|e| planned_calls(routes, e)).collect();
            let unmatched = events.iter().enumerate().flat_map(|(i, e)| {
                passed_over(routes, e).into_iter().map(move |passed| Unmatched { event: i, passed })
            });
            let passed_over = unmatched.collect();
            DryRun::Accepted { event_id, events, calls, passed_over, answer }
        }
    }
}

/// The server's answer to a sender's GET verification of `source` (its `challenge:`), or why
/// there is none.
pub fn challenge(source: &Source, query: Option<&str>) -> Result<DryRun, String> {
    let Some(c) = &source.challenge else {
        return Err(format!(
            "source '{}' has no `challenge:`, so the server answers a GET with 405 (webhooks are POSTed)",
            source.name
        ));
    };
    Ok(match pipeline::challenge::answer(c, query) {
        Ok(replied) => DryRun::Replied { event_id: None, reply: "challenge".into(), replied },
        Err(rejection) => DryRun::Rejected { http_status: rejection.status, rejection },
    })
}

/// What the dispatchers of `event.topic` would do with it when they consume it: their calls,
/// or dead letters; an error when no dispatcher consumes that topic.
pub fn consume(routes: &Routes, event: &Event) -> Result<Vec<CallOf>, String> {
    match unconsumed(routes, &event.topic) {
        Some(e) => Err(e),
        None => Ok(planned_calls(routes, event)),
    }
}

/// The source named `name`, or why there is none (naming the ones there are).
pub fn source_named<'a>(routes: &'a Routes, name: &str) -> Result<&'a Source, String> {
    routes.source_named(name).ok_or_else(|| {
        let names: Vec<_> = routes.sources.iter().map(|s| s.name.as_str()).collect();
        format!("no source named '{name}' (the config has: {})", names.join(", "))
    })
}

/// Why no dispatcher would see an event on `topic`, if none consumes it.
pub fn unconsumed(routes: &Routes, topic: &str) -> Option<String> {
    if routes.dispatchers.iter().any(|d| d.topic == topic) {
        return None;
    }
    let mut topics: Vec<&str> = routes.dispatchers.iter().map(|d| d.topic.as_str()).collect();
    topics.sort_unstable();
    topics.dedup();
    Some(match topics.is_empty() {
        true => format!("no dispatcher consumes topic '{topic}': the config has no dispatchers"),
        false => format!("no dispatcher consumes topic '{topic}' (they consume: {})", topics.join(", ")),
    })
}

/// `event` as a dispatcher receives it.
fn delivered(event: &Event) -> Delivered<'_> {
    let headers: Vec<(&str, &str)> = event.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Delivered { key: event.key.as_deref(), headers, value: &event.value, ..Default::default() }
}

/// The rules of each dispatcher consuming `event.topic` that takes none of it, with why.
pub fn passed_over(routes: &Routes, event: &Event) -> Vec<PassedOver> {
    let delivered = delivered(event);
    let consuming = routes.dispatchers.iter().filter(|d| d.topic == event.topic);
    let idle = consuming.filter(|d| plan::rules_for(d, &delivered).is_empty());
    idle.flat_map(|d| explain::dispatch_rules(d, &delivered)).collect()
}

/// The calls the dispatchers consuming `event.topic` would make for it.
pub fn planned_calls(routes: &Routes, event: &Event) -> Vec<CallOf> {
    let delivered = delivered(event);
    let mut out = Vec::new();
    for d in routes.dispatchers.iter().filter(|d| d.topic == event.topic) {
        for rule in plan::rules_for(d, &delivered) {
            let call =
                plan::conforms(d, &delivered).and_then(|()| plan::plan(rule, &delivered)).map(|c| redact(c, rule));
            out.push(CallOf { dispatcher: d.name.clone(), rule: rule.name.clone(), call });
        }
    }
    out
}

/// Dry-run output never shows credentials: not `Authorization`, nor any header, query or body
/// value whose config text reads the environment (where secrets come from). A signed call (`sign:`)
/// shows the headers its signature adds, whose values depend on when it is sent.
fn redact(mut call: PlannedCall, rule: &DispatchRule) -> PlannedCall {
    if let Some(signer) = &rule.sign {
        for (name, _) in crate::pipeline::verify::sign(signer, b"", 0, "") {
            call.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
            call.headers.push((name.to_ascii_lowercase(), "<signed when sent>".into()));
        }
    }
    if let Some(oauth2) = &rule.oauth2 {
        call.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
        let from = crate::text::without_query(&oauth2.token_url);
        call.headers.push(("authorization".into(), format!("Bearer <OAuth2 token from {from} when sent>")));
    }
    for (k, v) in &mut call.headers {
        if k.eq_ignore_ascii_case("authorization") && rule.oauth2.is_some() {
            continue;
        } else if k.eq_ignore_ascii_case("authorization") && rule.bearer_token.is_some() {
            *v = "Bearer <redacted>".into();
        } else if k.eq_ignore_ascii_case("authorization") || rule.env_headers.iter().any(|h| h.as_str() == k) {
            *v = "<redacted>".into();
        }
    }
    if let Some((path, query)) = call.url.split_once('?')
        && !rule.env_query.is_empty()
    {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| {
                let key = pair.split_once('=').map_or(pair, |(k, _)| k);
                let decoded = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
                match rule.env_query.iter().any(|k| *k == decoded) {
                    true => format!("{key}=<redacted>"),
                    false => pair.to_owned(),
                }
            })
            .collect();
        call.url = format!("{path}?{}", pairs.join("&"));
    }
    call.body = call.body.map(|body| redact_body(body, rule));
    call
}

/// A body's values whose config reads the environment, as `<redacted>`: a form's fields of
/// those names (and their `name[…]` members), a JSON body's properties, or the whole value.
fn redact_body(body: Body, rule: &DispatchRule) -> Body {
    const REDACTED: &str = "<redacted>";
    if rule.env_body_value {
        return Body::Json(Json::String(REDACTED.into()));
    }
    if rule.env_body.is_empty() {
        return body;
    }
    let hidden = |name: &str| {
        rule.env_body.iter().any(|f| name == f || name.strip_prefix(f.as_str()).is_some_and(|r| r.starts_with('[')))
    };
    match body {
        Body::Json(Json::Object(mut members)) => {
            for (name, value) in members.iter_mut() {
                if hidden(name) {
                    *value = Json::String(REDACTED.into());
                }
            }
            Body::Json(Json::Object(members))
        }
        Body::Form(text) => {
            let pairs = form_urlencoded::parse(text.as_bytes()).map(|(k, v)| {
                let value = if hidden(&k) { REDACTED.into() } else { v.into_owned() };
                (k.into_owned(), value)
            });
            Body::Form(form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish())
        }
        other => other,
    }
}

/// Splits `K: V` header arguments (`check --header`) into trimmed names and values.
pub fn header_pairs(args: &[String]) -> Result<Vec<(&str, &str)>, String> {
    args.iter()
        .map(|arg| match arg.split_once(':') {
            Some((k, v)) => Ok((k.trim(), v.trim())),
            None => Err(format!("header '{arg}' is not 'Name: value'")),
        })
        .collect()
}

/// Parses `K: V` header arguments into the headers of a request.
pub fn parse_headers(args: &[String]) -> Result<HeaderMap, String> {
    header_map(header_pairs(args)?)
}

/// Builds a header map from name/value pairs (also a test case's `headers`).
pub fn header_map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        let name = HeaderName::from_bytes(k.trim().as_bytes()).map_err(|_| format!("bad header name '{k}'"))?;
        let value = HeaderValue::from_str(v.trim()).map_err(|_| format!("bad value for header '{k}'"))?;
        map.append(name, value);
    }
    Ok(map)
}
