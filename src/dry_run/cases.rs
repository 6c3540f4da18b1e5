//! A config's own test cases (`switchyard test`): each payload through the same pipeline and
//! planner as production, as a webhook (`source`) or as a consumed event (`topic`), and every
//! way the outcome differs from the case's expectations, one line each. [`lint`] gives
//! `validate` the mistakes a case shows before it runs.

use std::collections::HashMap;
use std::path::Path;

use http::{HeaderMap, HeaderValue};
use serde_json::Value as Json;

use super::{CallOf, DryRun, challenge, header_map, passed_over, planned_calls, run, source_named, unconsumed};
use crate::config::Loaded;
use crate::config::diagnostic::Diagnostics;
use crate::config::model::{CaseMethod, ExpectConfig, ExpectedCall, ExpectedEvent, ExpectedStatus, TestCaseConfig};
use crate::ingress::unix_now;
use crate::pipeline::form;
use crate::pipeline::parse::{FORM, media_type};
use crate::pipeline::plan::Body;
use crate::pipeline::{Event, Inbound};
use crate::routes::{Routes, Source};

/// What a case is, once its fields fit together and name what the config has.
enum Kind<'a> {
    /// Posted to `source` with these request headers; the answer must be `status`.
    Webhook(&'a Source, HeaderMap, ExpectedStatus),
    /// The sender's GET verification of `source`; the answer must be `status`.
    Challenge(&'a Source, ExpectedStatus),
    /// Consumed from a topic; the dispatchers must plan these calls.
    Event(&'a str, &'a [ExpectedCall]),
}

/// Runs one case with signatures unchecked; no problems means it passed.
pub fn run_case(routes: &Routes, case: &TestCaseConfig, dir: &Path) -> Vec<String> {
    match prepare(routes, case, dir) {
        Ok((Kind::Webhook(source, headers, status), doc)) => match encode(case, &doc) {
            Ok(body) => {
                let query = case.query.as_deref();
                let input = Inbound { headers: &headers, query, body: &body, now: unix_now(), verify: false };
                compare(&run(routes, source, &input), status, &case.expect)
            }
            Err(e) => vec![e],
        },
        Ok((Kind::Challenge(source, status), _)) => match challenge(source, case.query.as_deref()) {
            Ok(answered) => compare(&answered, status, &case.expect),
            Err(e) => vec![e],
        },
        Ok((Kind::Event(topic, want), doc)) => event_case(routes, case, topic, doc, want),
        Err(e) => vec![e],
    }
}

/// What can be checked without running the case, and its payload.
fn prepare<'a>(routes: &'a Routes, case: &'a TestCaseConfig, dir: &Path) -> Result<(Kind<'a>, Json), String> {
    match shape(routes, case)? {
        challenge @ Kind::Challenge(..) => Ok((challenge, Json::Null)),
        kind => Ok((kind, case_document(case, dir)?)),
    }
}

/// Every case that would fail before it runs (a name the config lacks, fields that do not fit
/// together, a payload that cannot be read), and names two cases share, as warnings: the
/// server does not need its tests, but `switchyard test` would report these.
pub fn lint(routes: &Routes, loaded: &Loaded, diags: &mut Diagnostics) {
    // name → where its first case is (`line 12`, or `a.yaml:12` in another file)
    let mut seen: HashMap<&str, (&Path, u64)> = HashMap::new();
    let units = loaded.units();
    for (unit, case) in units.iter().flat_map(|u| u.tests.iter().map(move |case| (u, case))) {
        let (name, at) = (case.name.value.as_str(), case.name.referenced);
        if let Some(&(file, line)) = seen.get(name) {
            let there = if file == unit.path { format!("line {line}") } else { format!("{}:{line}", file.display()) };
            let message = format!("test case '{name}' has the name of the case at {there}: give each its own");
            diags.warning(unit.path, at, message);
        } else {
            seen.insert(name, (unit.path, at.line()));
        }
        if let Err(e) = prepare(routes, case, unit.dir) {
            diags.warning(unit.path, at, format!("test case '{name}': {e}"));
        }
    }
}

/// The kind of case, if its fields fit together and name what the config has.
fn shape<'a>(routes: &'a Routes, case: &'a TestCaseConfig) -> Result<Kind<'a>, String> {
    let e = &case.expect;
    let of_rejection =
        e.http_status.is_some() || e.reason.is_some() || !e.violations.is_empty() || e.message_contains.is_some();
    match (&case.source, &case.topic) {
        (Some(name), None) => {
            let source = source_named(routes, &name.value)?;
            if case.key.is_some() {
                return Err("`key` is the Kafka key of an event case (with `topic`); a webhook case has none".into());
            }
            let Some(status) = e.status else {
                return Err(
                    "expect.status is required for a webhook case: accepted, ignored, rejected or replied".into()
                );
            };
            if of_rejection && status != ExpectedStatus::Rejected {
                let what = "expect.http_status, reason, violations and message_contains describe a rejection";
                return Err(format!("{what}: with status {} they would not be checked", status.as_str()));
            }
            if (e.events.is_some() || e.calls.is_some()) && status != ExpectedStatus::Accepted {
                let what = "expect.events and calls are what an accepted webhook gives";
                return Err(format!("{what}: with status {} they would not be checked", status.as_str()));
            }
            if e.reply.is_some() && !matches!(status, ExpectedStatus::Replied | ExpectedStatus::Accepted) {
                let what = "expect.reply is the answer of a reply or of a rule's `answer`";
                return Err(format!("{what}: with status {} it would not be checked", status.as_str()));
            }
            if case.method == Some(CaseMethod::Get) {
                return challenge_case(source, case, status);
            }
            let headers = header_map(case.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
            Ok(Kind::Webhook(source, headers, status))
        }
        (None, Some(topic)) => {
            if let Some(e) = unconsumed(routes, &topic.value) {
                return Err(e);
            }
            if case.method.is_some() || case.query.is_some() {
                return Err("`method` and `query` are a webhook's request (with `source`), not an event's".into());
            }
            let webhook_only = e.status.is_some() || of_rejection || e.events.is_some() || e.reply.is_some();
            match e.calls.as_deref().filter(|_| !webhook_only) {
                Some(want) => Ok(Kind::Event(&topic.value, want)),
                None => {
                    Err("an event case expects `calls` only (`calls: []` for none): what its dispatchers would do"
                        .into())
                }
            }
        }
        _ => {
            Err("a case names either a `source` (to post a webhook to) or a `topic` (to consume an event from)".into())
        }
    }
}

/// A GET case: the source must answer GETs, and the case sends no payload.
fn challenge_case<'a>(source: &'a Source, case: &TestCaseConfig, status: ExpectedStatus) -> Result<Kind<'a>, String> {
    if source.challenge.is_none() {
        return Err(format!(
            "`method: GET` is the sender's verification of the endpoint, and source '{}' has no `challenge:` to answer it",
            source.name
        ));
    }
    if case.payload.is_some() || case.body.is_some() || !case.set.is_empty() {
        return Err("a GET case sends no payload: its `query` is the request".into());
    }
    if !matches!(status, ExpectedStatus::Replied | ExpectedStatus::Rejected) {
        let status = status.as_str();
        return Err(format!("a GET case is `replied` (the challenge echoed) or `rejected`, never {status}"));
    }
    Ok(Kind::Challenge(source, status))
}

/// An event consumed from `topic`: the calls its dispatchers would make, against `want`.
fn event_case(routes: &Routes, case: &TestCaseConfig, topic: &str, value: Json, want: &[ExpectedCall]) -> Vec<String> {
    let headers = case.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let event = Event { rule: String::new(), topic: topic.to_owned(), key: case.key.clone(), headers, value };
    let mut problems = Vec::new();
    // `shape` has made sure a dispatcher consumes the topic.
    let passed: Vec<String> = passed_over(routes, &event).iter().map(passed_over_line).collect();
    compare_calls(&planned_calls(routes, &event), want, &passed, &mut problems);
    problems
}

/// The payload of a test case, as the body of a request.
pub fn case_payload(case: &TestCaseConfig, dir: &Path) -> Result<Vec<u8>, String> {
    encode(case, &case_document(case, dir)?)
}

/// Whether a call's body is the one a case expects, exactly: the JSON value; for a form, its
/// text, or the form those fields would make (in any order: a server reads them the same).
fn same_body(want: &Json, got: Option<&Body>) -> bool {
    match (got, want) {
        (Some(Body::Json(got)), want) => got == want,
        (Some(Body::Form(got)), Json::String(want)) => form::decoded(got) == form::decoded(want),
        (Some(Body::Form(got)), Json::Object(fields)) => {
            form::decoded(got) == form::decoded(&form::encode(fields.iter().map(|(k, v)| (k.as_str(), v))))
        }
        _ => false,
    }
}

/// A case's payload as its request carries it: JSON, or, when the case's `Content-Type` is
/// a form's, the payload's properties as form fields (an array repeats its field).
fn encode(case: &TestCaseConfig, doc: &Json) -> Result<Vec<u8>, String> {
    let form = case.headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("content-type")
            && HeaderValue::from_str(v).ok().and_then(|v| media_type(&v)).as_deref() == Some(FORM)
    });
    if !form {
        return serde_json::to_vec(doc).map_err(|e| e.to_string());
    }
    let Json::Object(fields) = doc else {
        return Err("a form's payload is an object: its properties are the form's fields".into());
    };
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        let values = match value {
            Json::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        for value in values {
            match value {
                Json::String(text) => out.append_pair(name, text),
                Json::Object(_) | Json::Array(_) => out.append_pair(name, &value.to_string()),
                Json::Null => out.append_key_only(name),
                other => out.append_pair(name, &other.to_string()),
            };
        }
    }
    Ok(out.finish().into_bytes())
}

/// The payload of a test case: its file or inline body, with `set` applied.
fn case_document(case: &TestCaseConfig, dir: &Path) -> Result<Json, String> {
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
    Ok(doc)
}

/// Sets (or, with `null`, removes) the value at a JSON Pointer; parents must exist.
fn set_pointer(doc: &mut Json, pointer: &str, value: Json) -> Result<(), String> {
    let (parent, last) = pointer.rsplit_once('/').filter(|_| pointer.starts_with('/')).ok_or_else(|| {
        format!("'{pointer}' is not a JSON Pointer: it starts with '/' (as in /data/object/currency)")
    })?;
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
fn compare(got: &DryRun, want: ExpectedStatus, expect: &ExpectConfig) -> Vec<String> {
    let mut problems = Vec::new();
    let status = match got {
        DryRun::Accepted { .. } => "accepted",
        DryRun::Ignored { .. } => "ignored",
        DryRun::Replied { .. } => "replied",
        DryRun::Rejected { .. } => "rejected",
    };
    let want = want.as_str();
    if status != want {
        let detail = match got {
            DryRun::Rejected { http_status, rejection } => format!(" ({http_status}: {})", rejection.message),
            DryRun::Ignored { reason, passed_over, .. } => {
                let each: String = passed_over.iter().map(|p| format!("\n       {}", passed_over_line(p))).collect();
                format!(" ({reason}){each}")
            }
            DryRun::Replied { reply, .. } => format!(" (by reply '{reply}')"),
            DryRun::Accepted { .. } => String::new(),
        };
        problems.push(format!("expected status {want}, got {status}{detail}"));
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
    if let Some(want) = &expect.reply {
        match got {
            DryRun::Replied { replied, .. } | DryRun::Accepted { answer: Some(replied), .. } => {
                let got = serde_json::to_value(&replied.body).unwrap_or_default();
                if &got != want {
                    problems.push(format!("the reply differs\n       expected {want}\n       got      {got}"));
                }
            }
            _ => problems.push("expected a reply, but no matching rule has an `answer`".into()),
        }
    }
    if let DryRun::Accepted { events, calls, passed_over, .. } = got {
        if let Some(want) = &expect.events {
            compare_events(events, want, &mut problems);
        }
        if let Some(want) = &expect.calls {
            let passed: Vec<String> = passed_over
                .iter()
                .map(|u| match events.len() {
                    1 => passed_over_line(&u.passed),
                    _ => format!("event {}: {}", u.event, passed_over_line(&u.passed)),
                })
                .collect();
            compare_calls(calls, want, &passed, &mut problems);
        }
    }
    problems
}

/// A rule that takes nothing, and why, as a line of a failing case.
fn passed_over_line(p: &crate::pipeline::explain::PassedOver) -> String {
    match &p.dispatcher {
        Some(d) => format!("dispatch rule '{}' (dispatcher '{d}') takes nothing: {}", p.rule, p.why),
        None => format!("rule '{}' takes nothing: {}", p.rule, p.why),
    }
}

fn compare_events(events: &[Event], want: &[ExpectedEvent], problems: &mut Vec<String>) {
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

/// Compares the planned calls with the expected; `passed` says which dispatch rules took
/// nothing and why, shown when calls are missing.
fn compare_calls(calls: &[CallOf], want: &[ExpectedCall], passed: &[String], problems: &mut Vec<String>) {
    if calls.len() != want.len() {
        let why: String = match calls.len() < want.len() {
            true => passed.iter().map(|line| format!("\n       {line}")).collect(),
            false => String::new(),
        };
        problems.push(format!("expected {} calls, got {}{why}", want.len(), calls.len()));
        return;
    }
    for (i, (got, want)) in calls.iter().zip(want).enumerate() {
        let call = match (&got.call, &want.dead_letter) {
            (Ok(c), None) => c,
            (Err(e), Some(text)) if e.contains(text.as_str()) => continue,
            (Err(e), Some(text)) => {
                problems.push(format!("call {i}: expected a dead letter saying {text:?}, got {e:?}"));
                continue;
            }
            (Err(e), None) => {
                problems.push(format!("call {i}: cannot be planned (the event would be dead-lettered): {e}"));
                continue;
            }
            (Ok(c), Some(text)) => {
                problems.push(format!("call {i}: expected a dead letter saying {text:?}, got {} {}", c.method, c.url));
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
            && !same_body(b, call.body.as_ref())
        {
            let got = serde_json::to_value(&call.body).unwrap_or_default();
            // Fields expected of a form read best as the form they make.
            let b = match (&call.body, b) {
                (Some(Body::Form(_)), Json::Object(fields)) => {
                    Json::String(form::encode(fields.iter().map(|(k, v)| (k.as_str(), v))))
                }
                _ => b.clone(),
            };
            problems.push(format!("call {i}: body differs\n       expected {b}\n       got      {got}"));
        }
    }
}
