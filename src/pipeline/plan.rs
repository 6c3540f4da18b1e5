//! Dispatch planning: which rules of a dispatcher run for a consumed event, whether the event
//! matches the dispatcher's declared schema, and for each rule, the exact HTTP call.
//!
//! Event values enter the URL only as percent-encoded path segments or query components,
//! so no order id can change the path, the query or the host.

use http::HeaderValue;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde_json::Value as Json;

use super::map::{self, Headers, Input};
use super::transform::scalar_text;
use crate::routes::Dispatcher;
use crate::routes::dispatch::{DispatchRule, Var};
use crate::routes::template::Part;

/// Everything except RFC 3986 unreserved characters is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// A consumed event, as the dispatcher sees it.
#[derive(Clone, Debug, Default)]
pub struct Delivered<'a> {
    pub key: Option<&'a str>,
    pub headers: Vec<(&'a str, &'a str)>,
    pub value: &'a Json,
    /// Present but not UTF-8, so left out of `key` and `headers`: the key, and headers by
    /// name. A template that reads one says so rather than calling it missing.
    pub binary_key: bool,
    pub binary_headers: Vec<&'a str>,
}

impl Delivered<'_> {
    /// What the rules' filters and body expressions read: the value, and the Kafka headers.
    pub fn input(&self) -> Input<'_> {
        Input::new(self.value, Headers::Kafka { text: &self.headers, binary: &self.binary_headers })
    }
}

/// How many of an event's schema violations a dead letter's error lists.
const LISTED_VIOLATIONS: usize = 5;

/// Checks `event` against the schema `d` declares (`schema:`), which its request templates
/// were checked against: an event that breaks it (written by another producer, or before the
/// schema changed) makes no call. Top-level properties the schema does not list are ignored
/// (`Schema::violations_of_listed`): a producer that adds one is not refused by dispatchers
/// still on the older schema. The error lists the first violations. A dispatcher that declares
/// none takes every event (its templates were checked against what the routes publish to the
/// topic, which the ingress validates).
pub fn conforms(d: &Dispatcher, event: &Delivered) -> Result<(), String> {
    let Some(schema) = &d.schema else {
        return Ok(());
    };
    let (violations, more) = schema.violations_of_listed(event.value);
    if violations.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = violations
        .iter()
        .take(LISTED_VIOLATIONS)
        .map(|v| if v.path.is_empty() { v.message.clone() } else { format!("{}: {}", v.path, v.message) })
        .collect();
    let rest = if more || violations.len() > LISTED_VIOLATIONS { "; …" } else { "" };
    Err(format!("the event does not match the dispatcher's schema '{}': {}{rest}", schema.name, listed.join("; ")))
}

/// The header naming the dispatcher a redriven event is for (`switchyard redrive`); every
/// other dispatcher of the topic passes over it.
pub const FOR_DISPATCHER: &str = "switchyard.redrive.dispatcher";
/// The header naming the rule that gave up on a redriven event; only that rule runs again.
pub const FOR_RULE: &str = "switchyard.redrive.rule";

/// Who a redriven event is for: the dispatcher, and the rule when one is named; None for an
/// event that was not redriven.
pub fn addressee<'a>(headers: &[(&'a str, &'a str)]) -> Option<(&'a str, Option<&'a str>)> {
    let find = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    Some((find(FOR_DISPATCHER)?, find(FOR_RULE)))
}

/// The rules of `d` that run for `event`, in config order: those whose `when` matches; of a
/// redriven event, none when it is for another dispatcher, and only the rule named (every
/// matching rule when no rule has that name any more).
pub fn rules_for<'r>(d: &'r Dispatcher, event: &Delivered<'_>) -> Vec<&'r DispatchRule> {
    let only = match addressee(&event.headers) {
        Some((name, _)) if name != d.name => return Vec::new(),
        Some((_, rule)) => rule.filter(|r| d.rules.iter().any(|x| x.name == *r)),
        None => None,
    };
    let named = d.rules.iter().filter(|r| only.is_none_or(|o| r.name == o));
    named.filter(|r| map::matches(&r.when, event.input())).collect()
}

/// The HTTP call a rule makes for an event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedCall {
    pub rule: String,
    pub method: String,
    pub url: String,
    #[serde(serialize_with = "super::pairs_as_map")]
    pub headers: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
}

/// A call's body.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Body {
    /// `body:` or `body_value:`, sent as JSON.
    Json(Json),
    /// `form:`, form-encoded (`super::form`): the text sent.
    Form(String),
}

impl Body {
    /// The bytes sent (and signed).
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Body::Json(value) => serde_json::to_vec(value).unwrap_or_default(),
            Body::Form(text) => text.clone().into_bytes(),
        }
    }

    fn media_type(&self) -> &'static str {
        match self {
            Body::Json(_) => "application/json",
            Body::Form(_) => "application/x-www-form-urlencoded",
        }
    }
}

/// Plans `rule`'s call for `event`. An error means the event cannot be sent (dead letter).
pub fn plan(rule: &DispatchRule, event: &Delivered) -> Result<PlannedCall, String> {
    let mut url = rule.origin.clone();
    fill(&mut url, &rule.path, event, true)?;
    for (i, (k, v)) in rule.query.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.extend(utf8_percent_encode(k, COMPONENT));
        url.push('=');
        fill(&mut url, v, event, true)?;
    }
    let body = match &rule.body_value {
        // An optional value that finds nothing: no body.
        Some(value) => map::eval(value, event.input(), None)
            .map_err(|e| format!("body{}: {}", e.field, e.message))?
            .map(Body::Json),
        None if rule.body.is_empty() => None,
        None if rule.form => {
            let fields =
                map::values(&rule.body, event.input(), "form").map_err(|e| format!("{}: {}", e.field, e.message))?;
            Some(Body::Form(super::form::encode(fields.iter().map(|(k, v)| (*k, v)))))
        }
        None => {
            let obj =
                map::object(&rule.body, event.input(), "body").map_err(|e| format!("{}: {}", e.field, e.message))?;
            Some(Body::Json(Json::Object(obj)))
        }
    };
    let mut headers: Vec<(String, String)> = Vec::with_capacity(rule.headers.len() + 2);
    if let Some(body) = &body
        && !rule.headers.iter().any(|(h, _)| h == http::header::CONTENT_TYPE)
    {
        headers.push(("content-type".into(), body.media_type().into()));
    }
    for (name, parts) in &rule.headers {
        let mut value = String::new();
        fill(&mut value, parts, event, false)?;
        HeaderValue::from_str(&value)
            .map_err(|_| format!("header {name} would hold characters not allowed in a header"))?;
        headers.push((name.as_str().to_owned(), value));
    }
    if let Some(token) = &rule.bearer_token {
        headers.push(("authorization".into(), format!("Bearer {}", String::from_utf8_lossy(&token.0))));
    }
    Ok(PlannedCall { rule: rule.name.clone(), method: rule.method.to_string(), url, headers, body })
}

fn fill(out: &mut String, parts: &[Part<Var>], event: &Delivered, encode: bool) -> Result<(), String> {
    for part in parts {
        match part {
            Part::Lit(s) => out.push_str(s),
            Part::Var(var) => {
                let text = resolve(var, event)?;
                // URL parsers resolve "." and ".." segments (even percent-encoded), which
                // would move the call to another path.
                if encode && (text.is_empty() || text == "." || text == "..") {
                    return Err(format!("{text:?} cannot be used as a URL path segment or query value"));
                }
                if encode {
                    out.extend(utf8_percent_encode(&text, COMPONENT));
                } else {
                    out.push_str(&text);
                }
            }
        }
    }
    Ok(())
}

fn resolve(var: &Var, event: &Delivered) -> Result<String, String> {
    match var {
        Var::Property(name) => property(event.value, name)
            .and_then(scalar_text)
            .ok_or_else(|| format!("the event has no scalar property '{name}'")),
        Var::Header(name) => match event.input().headers.get(name)? {
            Some(v) => Ok(v.to_owned()),
            None => Err(format!("the event has no Kafka header '{name}'")),
        },
        Var::Key => event.key.map(str::to_owned).ok_or_else(|| match event.binary_key {
            true => "the event's key is not UTF-8 text".to_string(),
            false => "the event has no key".to_string(),
        }),
    }
}

/// The event's property `name`; a name with dots reads nested objects (`customer.id`), unless
/// the event has a property of that very name.
fn property<'v>(value: &'v Json, name: &str) -> Option<&'v Json> {
    value.get(name).or_else(|| match name.contains('.') {
        true => name.split('.').try_fold(value, |v, member| v.get(member)),
        false => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::dispatch::RetryPolicy;
    use crate::routes::verify::Secret;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn only_a_redriven_event_has_an_addressee() {
        assert_eq!(addressee(&[("event_id", "evt_1")]), None);
        let headers = [("event_id", "evt_1"), (FOR_DISPATCHER, "orders"), (FOR_RULE, "mark")];
        assert_eq!(addressee(&headers), Some(("orders", Some("mark"))));
        assert_eq!(addressee(&[(FOR_DISPATCHER, "orders")]), Some(("orders", None)));
    }

    fn rule(path: Vec<Part<Var>>, query: Vec<(String, Vec<Part<Var>>)>, token: Option<&str>) -> DispatchRule {
        DispatchRule {
            name: "r".into(),
            when: Default::default(),
            method: http::Method::POST,
            origin: "https://orders.example".into(),
            path,
            query,
            headers: vec![(http::HeaderName::from_static("x-event"), vec![Part::Var(Var::Header("event_id".into()))])],
            body: vec![],
            body_value: None,
            form: false,
            bearer_token: token.map(|t| Secret(t.as_bytes().to_vec())),
            oauth2: None,
            sign: None,
            env_headers: vec![],
            env_query: vec![],
            env_body: vec![],
            env_body_value: false,
            timeout: Duration::from_secs(1),
            retry: RetryPolicy {
                initial_delay: Duration::ZERO,
                max_delay: Duration::ZERO,
                max_elapsed: Duration::ZERO,
                done_on: vec![],
                retry_on: vec![],
            },
        }
    }

    #[test]
    fn query_values_and_path_segments_are_encoded_and_headers_filled() {
        let r = rule(
            vec![Part::Lit("/o/".into()), Part::Var(Var::Property("id".into()))],
            vec![("q".into(), vec![Part::Var(Var::Property("note".into()))]), ("k".into(), vec![Part::Var(Var::Key)])],
            Some("tok"),
        );
        let value = json!({"id": "a b/c", "note": "x=1&y=2#z"});
        let event =
            Delivered { key: Some("K 1"), headers: vec![("event_id", "evt_1")], value: &value, ..Default::default() };
        let call = plan(&r, &event).unwrap();
        assert_eq!(call.url, "https://orders.example/o/a%20b%2Fc?q=x%3D1%26y%3D2%23z&k=K%201");
        assert!(call.headers.contains(&("x-event".into(), "evt_1".into())));
        assert!(call.headers.contains(&("authorization".into(), "Bearer tok".into())));
        assert_eq!(call.body, None);
    }

    #[test]
    fn a_dotted_name_reads_nested_objects_unless_a_property_has_it() {
        let event =
            serde_json::json!({"customer": {"id": "c9", "address": {"city": "Berlin"}}, "a.b": 1, "a": {"b": 2}});
        assert_eq!(property(&event, "customer.id"), Some(&serde_json::json!("c9")));
        assert_eq!(property(&event, "customer.address.city"), Some(&serde_json::json!("Berlin")));
        assert_eq!(property(&event, "a.b"), Some(&serde_json::json!(1)), "the property of that very name first");
        assert_eq!(property(&event, "customer.name"), None);
        assert_eq!(property(&event, "customer.id.x"), None);
    }

    #[test]
    fn missing_values_and_header_injection_cannot_be_planned() {
        let r = rule(vec![Part::Lit("/o/".into()), Part::Var(Var::Property("id".into()))], vec![], None);
        let value = json!({});
        assert!(
            plan(&r, &Delivered { headers: vec![("event_id", "e")], value: &value, ..Default::default() }).is_err()
        );
        let value = json!({"id": "1"});
        let event = Delivered { headers: vec![("event_id", "a\r\nx-admin: 1")], value: &value, ..Default::default() };
        assert!(plan(&r, &event).unwrap_err().contains("not allowed in a header"));
        let value = json!({"id": "."});
        assert!(
            plan(&r, &Delivered { headers: vec![("event_id", "e")], value: &value, ..Default::default() }).is_err()
        );
    }

    #[test]
    fn a_header_or_key_that_is_not_utf8_is_named_as_such() {
        let r = rule(vec![Part::Lit("/o/".into()), Part::Var(Var::Key)], vec![], None);
        let value = json!({});
        let event =
            Delivered { value: &value, binary_key: true, binary_headers: vec!["event_id"], ..Default::default() };
        assert_eq!(plan(&r, &event).unwrap_err(), "the event's key is not UTF-8 text");
        let event = Delivered { key: Some("k"), value: &value, binary_headers: vec!["EVENT_ID"], ..Default::default() };
        assert_eq!(plan(&r, &event).unwrap_err(), "the Kafka header 'event_id' is not UTF-8 text");
        let event = Delivered { key: Some("k"), value: &value, ..Default::default() };
        assert_eq!(plan(&r, &event).unwrap_err(), "the event has no Kafka header 'event_id'");
    }
}
