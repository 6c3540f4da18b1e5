//! Dry runs: one payload through the same pipeline and planner the server and dispatcher
//! run (`switchyard check`), and a config's own test cases (`switchyard test`).

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::config::model::{ExpectConfig, TestCaseConfig};
use crate::pipeline::plan::{self, Delivered, PlannedCall};
use crate::pipeline::{self, Event, Inbound, Outcome, Rejection};
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
    },
    Ignored {
        event_id: Option<String>,
        reason: String,
    },
    Rejected {
        http_status: u16,
        #[serde(flatten)]
        rejection: Rejection,
    },
}

/// A planned call and the dispatcher that would make it (or why it could not be planned:
/// the dispatcher would dead-letter the event).
#[derive(Debug, Serialize)]
pub struct CallOf {
    pub dispatcher: String,
    #[serde(flatten, with = "call_or_error")]
    pub call: Result<PlannedCall, String>,
}

mod call_or_error {
    use serde::Serialize;

    use super::PlannedCall;

    #[derive(Serialize)]
    #[serde(untagged)]
    enum Shown<'a> {
        Call(&'a PlannedCall),
        Error { dead_letter: &'a str },
    }

    pub fn serialize<S: serde::Serializer>(call: &Result<PlannedCall, String>, s: S) -> Result<S::Ok, S::Error> {
        match call {
            Ok(c) => Shown::Call(c).serialize(s),
            Err(e) => Shown::Error { dead_letter: e }.serialize(s),
        }
    }
}

/// Runs `body` through `source`, then plans every dispatcher call its events would cause.
pub fn run(routes: &Routes, source: &Source, headers: &HeaderMap, body: &[u8], verify: bool) -> DryRun {
    let input = Inbound { headers, body, now: crate::ingress::unix_now(), verify };
    let (event_id, result) = pipeline::ingest(source, &input);
    match result {
        Ok(Outcome::Ignored(reason)) => DryRun::Ignored { event_id, reason },
        Err(rejection) => DryRun::Rejected { http_status: rejection.status, rejection },
        Ok(Outcome::Publish(events)) => {
            let calls = events.iter().flat_map(|e| planned_calls(routes, e)).collect();
            DryRun::Accepted { event_id, events, calls }
        }
    }
}

/// The calls the dispatchers consuming `event.topic` would make for it.
pub fn planned_calls(routes: &Routes, event: &Event) -> Vec<CallOf> {
    let headers: Vec<(&str, &str)> = event.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let delivered = Delivered { key: event.key.as_deref(), headers, value: &event.value };
    let mut out = Vec::new();
    for d in routes.dispatchers.iter().filter(|d| d.topic == event.topic) {
        for rule in d.rules.iter().filter(|r| pipeline::map::matches(&r.when, &event.value)) {
            let call = plan::plan(rule, &delivered).map(|call| redact(call, rule));
            out.push(CallOf { dispatcher: d.name.clone(), call });
        }
    }
    out
}

/// Dry-run output never shows credentials: not `Authorization`, nor any header or query value
/// whose config text reads the environment (where secrets come from).
fn redact(mut call: PlannedCall, rule: &DispatchRule) -> PlannedCall {
    for (k, v) in &mut call.headers {
        if k.eq_ignore_ascii_case("authorization") && rule.bearer_token.is_some() {
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
    call
}

/// Parses `K: V` header arguments (`check --header`).
pub fn parse_headers(args: &[String]) -> Result<HeaderMap, String> {
    let pairs = args
        .iter()
        .map(|arg| arg.split_once(':').ok_or_else(|| format!("header '{arg}' is not 'Name: value'")))
        .collect::<Result<Vec<_>, _>>()?;
    header_map(pairs)
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

/// The payload of a test case: its file or inline body, with `set` applied.
pub fn case_payload(case: &TestCaseConfig, dir: &std::path::Path) -> Result<Vec<u8>, String> {
    let mut doc: Json = match (&case.payload, &case.body) {
        (Some(file), None) => {
            let path = dir.join(&file.value);
            let text = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            serde_json::from_slice(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?
        }
        (None, Some(body)) => body.clone(),
        _ => return Err("give exactly one of 'payload' (a file) and 'body' (inline)".into()),
    };
    for (pointer, value) in &case.set {
        set_pointer(&mut doc, pointer, value.clone())?;
    }
    serde_json::to_vec(&doc).map_err(|e| e.to_string())
}

/// Sets (or, with `null`, removes) the value at a JSON Pointer; parents must exist.
fn set_pointer(doc: &mut Json, pointer: &str, value: Json) -> Result<(), String> {
    let (parent, last) = pointer.rsplit_once('/').ok_or_else(|| format!("'{pointer}' is not a JSON Pointer"))?;
    let last = last.replace("~1", "/").replace("~0", "~");
    let target = doc.pointer_mut(parent).ok_or_else(|| format!("'{parent}' does not exist in the payload"))?;
    match target {
        Json::Object(map) if value.is_null() => {
            map.remove(&last);
        }
        Json::Object(map) => {
            map.insert(last, value);
        }
        Json::Array(items) => {
            let i: usize = last.parse().map_err(|_| format!("'{last}' is not an array index"))?;
            let slot = items.get_mut(i).ok_or_else(|| format!("'{pointer}' is out of range"))?;
            *slot = value;
        }
        _ => return Err(format!("'{parent}' is not an object or array")),
    }
    Ok(())
}

/// Compares a dry run with a case's expectations; every mismatch is one line.
pub fn compare(got: &DryRun, expect: &ExpectConfig) -> Vec<String> {
    let mut problems = Vec::new();
    let status = match got {
        DryRun::Accepted { .. } => "accepted",
        DryRun::Ignored { .. } => "ignored",
        DryRun::Rejected { .. } => "rejected",
    };
    if status != expect.status {
        let detail = match got {
            DryRun::Rejected { http_status, rejection } => format!(" ({http_status}: {})", rejection.message),
            DryRun::Ignored { reason, .. } => format!(" ({reason})"),
            DryRun::Accepted { .. } => String::new(),
        };
        problems.push(format!("expected status {}, got {status}{detail}", expect.status));
        return problems;
    }
    if let DryRun::Rejected { http_status, rejection } = got {
        if let Some(want) = expect.http_status
            && want != *http_status
        {
            problems.push(format!("expected HTTP {want}, got {http_status}"));
        }
        if let Some(want) = &expect.reason
            && want != rejection.reason.as_str()
        {
            problems.push(format!("expected reason {want}, got {}", rejection.reason.as_str()));
        }
        for path in &expect.violations {
            if !rejection.violations.iter().any(|v| &v.path == path) {
                let got: Vec<_> = rejection.violations.iter().map(|v| v.path.as_str()).collect();
                problems.push(format!("expected a violation at {path}, got {got:?}"));
            }
        }
        if let Some(text) = &expect.message_contains
            && !rejection.message.contains(text.as_str())
        {
            problems.push(format!("expected the message to contain {text:?}, got {:?}", rejection.message));
        }
    }
    if let DryRun::Accepted { events, calls, .. } = got {
        if let Some(want) = &expect.events {
            compare_events(events, want, &mut problems);
        }
        if let Some(want) = &expect.calls {
            compare_calls(calls, want, &mut problems);
        }
    }
    problems
}

fn compare_events(events: &[Event], want: &[crate::config::model::ExpectedEvent], problems: &mut Vec<String>) {
    if events.len() != want.len() {
        problems.push(format!("expected {} events, got {}", want.len(), events.len()));
        return;
    }
    for (i, (got, want)) in events.iter().zip(want).enumerate() {
        if let Some(t) = &want.topic
            && t != &got.topic
        {
            problems.push(format!("event {i}: expected topic {t}, got {}", got.topic));
        }
        if let Some(k) = &want.key
            && Some(k) != got.key.as_ref()
        {
            problems.push(format!("event {i}: expected key {k:?}, got {:?}", got.key));
        }
        for (h, v) in &want.headers {
            let found = got.headers.iter().find(|(k, _)| k == h).map(|(_, v)| v);
            if found != Some(v) {
                problems.push(format!("event {i}: expected header {h}: {v:?}, got {found:?}"));
            }
        }
        if let Some(v) = &want.value
            && v != &got.value
        {
            problems.push(format!("event {i}: value differs\n       expected {v}\n       got      {}", got.value));
        }
    }
}

fn compare_calls(calls: &[CallOf], want: &[crate::config::model::ExpectedCall], problems: &mut Vec<String>) {
    if calls.len() != want.len() {
        problems.push(format!("expected {} calls, got {}", want.len(), calls.len()));
        return;
    }
    for (i, (got, want)) in calls.iter().zip(want).enumerate() {
        let call = match &got.call {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("call {i}: cannot be planned: {e}"));
                continue;
            }
        };
        let checks = [("method", want.method.as_ref(), &call.method), ("url", want.url.as_ref(), &call.url)];
        for (what, want, got) in checks {
            if let Some(w) = want
                && !w.eq_ignore_ascii_case(got)
            {
                problems.push(format!("call {i}: expected {what} {w}, got {got}"));
            }
        }
        for (h, v) in &want.headers {
            let found = call.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(h)).map(|(_, v)| v);
            if found != Some(v) {
                problems.push(format!("call {i}: expected header {h}: {v:?}, got {found:?}"));
            }
        }
        if let Some(b) = &want.body
            && Some(b) != call.body.as_ref()
        {
            let got = call.body.clone().unwrap_or(json!(null));
            problems.push(format!("call {i}: body differs\n       expected {b}\n       got      {got}"));
        }
    }
}
