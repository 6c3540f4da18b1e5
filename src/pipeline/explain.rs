//! Why a rule's `when` does not hold for a document, in words: what dry runs (`check`, `test`)
//! print for a webhook no rule takes and an event no dispatch rule takes, and what a dispatcher
//! logs of such an event where its `debug` lines are asked for (`dev`). Never on the webhook's
//! path. It reads the document with the same `map::locate` and `map::passes` the filters run
//! with, so it cannot disagree with them.

use serde::Serialize;
use serde_json::Value as Json;

use super::map::{Input, locate, matches, passes};
use super::plan::{Delivered, addressee};
use crate::routes::Source;
use crate::routes::dispatch::Dispatcher;
use crate::routes::expr::{Condition, Filter, Test};
use crate::text::{QUOTED_VALUE, clip};

/// A rule that takes nothing of a document, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PassedOver {
    /// The dispatcher of a dispatch rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatcher: Option<String>,
    pub rule: String,
    pub why: String,
}

/// Each rule of `source` that takes nothing of `input`, with why: for a webhook it ignores.
pub fn source_rules(source: &Source, input: Input) -> Vec<PassedOver> {
    let passed = |rule: &crate::routes::Rule| {
        let why = match &rule.for_each {
            None => why_not(&rule.when, input)?,
            Some((path, _)) => {
                let selected = path.select(input.for_path(path));
                if selected.is_empty() {
                    format!("for_each {} selects nothing", path.as_str())
                } else {
                    let first = selected.into_iter().find_map(|doc| why_not(&rule.when, Input { doc, ..input }))?;
                    format!("no value for_each {} selects passes its when (the first: {first})", path.as_str())
                }
            }
        };
        Some(PassedOver { dispatcher: None, rule: rule.name.clone(), why })
    };
    source.rules.iter().filter_map(passed).collect()
}

/// Each rule of `d` that takes nothing of `event`, with why: for an event none of them takes.
pub fn dispatch_rules(d: &Dispatcher, event: &Delivered) -> Vec<PassedOver> {
    let redriven = addressee(&event.headers);
    let passed = |rule: &crate::routes::dispatch::DispatchRule| {
        let why = match redriven {
            Some((name, _)) if name != d.name => format!("the event is a dead letter redriven for dispatcher '{name}'"),
            Some((_, Some(only))) if only != rule.name && d.rules.iter().any(|r| r.name == only) => {
                format!("the event is a dead letter redriven for rule '{only}' only")
            }
            _ => why_not(&rule.when, event.input())?,
        };
        Some(PassedOver { dispatcher: Some(d.name.clone()), rule: rule.name.clone(), why })
    };
    d.rules.iter().filter_map(passed).collect()
}

/// Why `filter` does not hold for `input`, naming the first part that fails; `None` when it holds.
pub fn why_not(filter: &Filter, input: Input) -> Option<String> {
    if matches(filter, input) {
        return None;
    }
    if let Some((at, types)) = &filter.event_type {
        let found = locate(at, input);
        let taken = found.as_deref().and_then(Json::as_str).is_some_and(|t| types.iter().any(|x| x == t));
        if !taken {
            let wanted: Vec<String> = types.iter().map(|t| quoted(&Json::String(t.clone()))).collect();
            let wanted = if wanted.len() == 1 { wanted.concat() } else { format!("one of {}", wanted.join(", ")) };
            return Some(format!(
                "when.event_type takes {wanted}, and the event type ({}) {}",
                at.place(),
                found_as(found.as_deref())
            ));
        }
    }
    filter.conditions.iter().find_map(|c| failing(c, input)).map(|why| format!("when: {why}"))
}

/// Why `condition` does not hold; `None` when it holds.
fn failing(condition: &Condition, input: Input) -> Option<String> {
    match condition {
        Condition::Test { at, test, .. } => {
            let found = locate(at, input);
            (!passes(test, found.as_deref(), at.reads_text()))
                .then(|| format!("{} {} does not hold: it {}", at.place(), test_text(test), found_as(found.as_deref())))
        }
        Condition::All(all) => all.iter().find_map(|c| failing(c, input)),
        Condition::Any(any) => {
            let each: Vec<String> = any.iter().map(|c| failing(c, input)).collect::<Option<_>>()?;
            Some(format!("none of `any` holds ({})", each.join("; ")))
        }
        Condition::Not(c) => match failing(c, input) {
            Some(_) => None,
            None => Some(format!("`not` of what holds: {}", holding(c, input))),
        },
    }
}

/// What holds in `condition` (which does), for a `not` that therefore fails.
fn holding(condition: &Condition, input: Input) -> String {
    match condition {
        Condition::Test { at, test, .. } => {
            let found = locate(at, input);
            format!("{} {} (it {})", at.place(), test_text(test), found_as(found.as_deref()))
        }
        Condition::All(all) => all.iter().map(|c| holding(c, input)).collect::<Vec<_>>().join(", and "),
        Condition::Any(any) => {
            any.iter().find(|c| failing(c, input).is_none()).map_or_else(String::new, |c| holding(c, input))
        }
        Condition::Not(c) => format!("not ({})", failing(c, input).unwrap_or_default()),
    }
}

/// What was found, as a sentence's end: `is "closed"`, `is missing`.
fn found_as(found: Option<&Json>) -> String {
    match found {
        None | Some(Json::Null) => "is missing".into(),
        Some(v) => format!("is {}", quoted(v)),
    }
}

/// A value as JSON text, at most [`QUOTED_VALUE`] characters of it.
fn quoted(v: &Json) -> String {
    clip(&v.to_string(), QUOTED_VALUE).into_owned()
}

/// A test as the config writes it: `equals "paid"`, `gte 100`, `matches "^ch_"`.
fn test_text(test: &Test) -> String {
    let list = |vs: &[Json]| format!("[{}]", vs.iter().map(quoted).collect::<Vec<_>>().join(", "));
    let text = |s: &str| quoted(&Json::String(s.to_owned()));
    match test {
        Test::Equals(v) => format!("equals {}", quoted(v)),
        Test::In(vs) => format!("in {}", list(vs)),
        Test::NotIn(vs) => format!("not_in {}", list(vs)),
        Test::Exists(want) => format!("exists: {want}"),
        Test::Range { low, high } => {
            let low = low.map(|b| format!("{} {}", if b.inclusive { "gte" } else { "gt" }, b.value));
            let high = high.map(|b| format!("{} {}", if b.inclusive { "lte" } else { "lt" }, b.value));
            low.into_iter().chain(high).collect::<Vec<_>>().join(", ")
        }
        Test::Contains(v) => format!("contains {}", quoted(v)),
        Test::StartsWith(s) => format!("starts_with {}", text(s)),
        Test::EndsWith(s) => format!("ends_with {}", text(s)),
        Test::Matches(re) => format!("matches {}", text(re.as_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::expr::Locator;
    use crate::routes::jsonpath::Path;
    use serde_json::json;

    fn at(path: &str) -> Locator {
        Locator::Path(Path::parse(path).unwrap())
    }

    fn test(path: &str, test: Test) -> Condition {
        Condition::Test { at: at(path), test, place: serde_saphyr::Location::UNKNOWN }
    }

    fn why(filter: &Filter, doc: &Json) -> Option<String> {
        let headers = http::HeaderMap::new();
        why_not(filter, Input::webhook(doc, &headers, None))
    }

    #[test]
    fn names_the_event_type_it_takes_and_the_one_found() {
        let filter = Filter { event_type: Some((at("$.event_type"), vec!["issue_opened".into()])), conditions: vec![] };
        assert_eq!(
            why(&filter, &json!({"kind": "issue_opened"})).as_deref(),
            Some(r#"when.event_type takes "issue_opened", and the event type ($.event_type) is missing"#)
        );
        let two = Filter { event_type: Some((at("$.t"), vec!["a".into(), "b".into()])), conditions: vec![] };
        assert_eq!(
            why(&two, &json!({"t": "c"})).as_deref(),
            Some(r#"when.event_type takes one of "a", "b", and the event type ($.t) is "c""#)
        );
        assert_eq!(why(&two, &json!({"t": "b"})), None);
    }

    #[test]
    fn names_the_first_condition_that_fails_and_what_it_found() {
        let filter = Filter {
            event_type: None,
            conditions: vec![
                test("$.action", Test::Equals(json!("opened"))),
                test(
                    "$.n",
                    Test::Range { low: Some(crate::routes::expr::Bound { value: 10.0, inclusive: true }), high: None },
                ),
            ],
        };
        assert_eq!(
            why(&filter, &json!({"action": "closed", "n": 1})).as_deref(),
            Some(r#"when: $.action equals "opened" does not hold: it is "closed""#)
        );
        assert_eq!(
            why(&filter, &json!({"action": "opened"})).as_deref(),
            Some("when: $.n gte 10 does not hold: it is missing")
        );
        assert_eq!(why(&filter, &json!({"action": "opened", "n": 10})), None);
    }

    #[test]
    fn an_any_names_each_branch_and_a_not_what_holds() {
        let any =
            Condition::Any(vec![test("$.a", Test::Exists(true)), test("$.b", Test::In(vec![json!(1), json!(2)]))]);
        let filter = Filter { event_type: None, conditions: vec![any] };
        assert_eq!(
            why(&filter, &json!({"b": 3})).as_deref(),
            Some(
                "when: none of `any` holds ($.a exists: true does not hold: it is missing; $.b in [1, 2] does not hold: it is 3)"
            )
        );
        let not = Condition::Not(Box::new(test("$.livemode", Test::Equals(json!(true)))));
        let filter = Filter { event_type: None, conditions: vec![not] };
        assert_eq!(
            why(&filter, &json!({"livemode": true})).as_deref(),
            Some("when: `not` of what holds: $.livemode equals true (it is true)")
        );
        assert_eq!(why(&filter, &json!({"livemode": false})), None);
    }
}
