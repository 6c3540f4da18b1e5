//! A config's own test cases (`switchyard test`): each payload through the same pipeline and
//! planner as production, as a webhook (`source`) or as a consumed event (`topic`), and every
//! way the outcome differs from the case's expectations, one line each.

use std::path::Path;

use serde_json::{Value as Json, json};

use super::{CallOf, DryRun, consume, header_map, run};
use crate::config::model::{ExpectConfig, ExpectedCall, ExpectedEvent, TestCaseConfig};
use crate::pipeline::Event;
use crate::routes::Routes;

/// Runs one case with signatures unchecked; no problems means it passed.
pub fn run_case(routes: &Routes, case: &TestCaseConfig, dir: &Path) -> Vec<String> {
    match (&case.source, &case.topic) {
        (Some(source), None) => webhook_case(routes, case, &source.value, dir),
        (None, Some(topic)) => event_case(routes, case, &topic.value, dir),
        _ => {
            vec!["a case names either a `source` (to post a webhook to) or a `topic` (to consume an event from)".into()]
        }
    }
}

fn webhook_case(routes: &Routes, case: &TestCaseConfig, name: &str, dir: &Path) -> Vec<String> {
    let Some(source) = routes.source_named(name) else { return vec![format!("no source named '{name}'")] };
    if case.key.is_some() {
        return vec!["`key` is the Kafka key of an event case (with `topic`); a webhook case has none".into()];
    }
    let headers = header_map(case.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    match (case_payload(case, dir), headers) {
        (Ok(body), Ok(headers)) => compare(&run(routes, source, &headers, &body, false), &case.expect),
        (Err(e), _) | (_, Err(e)) => vec![e],
    }
}

/// An event consumed from `topic`: the calls its dispatchers would make, as `expect.calls`
/// lists them (the only expectation such a case has, and one it must give).
fn event_case(routes: &Routes, case: &TestCaseConfig, topic: &str, dir: &Path) -> Vec<String> {
    let e = &case.expect;
    let webhook_only = e.status.is_some()
        || e.http_status.is_some()
        || e.reason.is_some()
        || !e.violations.is_empty()
        || e.message_contains.is_some()
        || e.events.is_some();
    let Some(want) = e.calls.as_ref().filter(|_| !webhook_only) else {
        return vec!["an event case expects `calls` only (`calls: []` for none): what its dispatchers would do".into()];
    };
    let value = match case_payload(case, dir).and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string())) {
        Ok(v) => v,
        Err(e) => return vec![e],
    };
    let headers = case.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let event = Event { rule: String::new(), topic: topic.to_owned(), key: case.key.clone(), headers, value };
    let mut problems = Vec::new();
    match consume(routes, &event) {
        Ok(calls) => compare_calls(&calls, want, &mut problems),
        Err(e) => problems.push(e),
    }
    problems
}

/// The payload of a test case: its file or inline body, with `set` applied.
pub fn case_payload(case: &TestCaseConfig, dir: &Path) -> Result<Vec<u8>, String> {
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
fn compare(got: &DryRun, expect: &ExpectConfig) -> Vec<String> {
    let mut problems = Vec::new();
    let status = match got {
        DryRun::Accepted { .. } => "accepted",
        DryRun::Ignored { .. } => "ignored",
        DryRun::Rejected { .. } => "rejected",
    };
    let Some(want) = expect.status.map(|s| s.as_str()) else {
        return vec!["expect.status is required for a webhook case: accepted, ignored or rejected".into()];
    };
    if status != want {
        let detail = match got {
            DryRun::Rejected { http_status, rejection } => format!(" ({http_status}: {})", rejection.message),
            DryRun::Ignored { reason, .. } => format!(" ({reason})"),
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

fn compare_calls(calls: &[CallOf], want: &[ExpectedCall], problems: &mut Vec<String>) {
    if calls.len() != want.len() {
        problems.push(format!("expected {} calls, got {}", want.len(), calls.len()));
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
            && Some(b) != call.body.as_ref()
        {
            let got = call.body.clone().unwrap_or(json!(null));
            problems.push(format!("call {i}: body differs\n       expected {b}\n       got      {got}"));
        }
    }
}
