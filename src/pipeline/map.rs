//! Stages 4–5: match rules against an inbound document (and the headers that came with it) and
//! map it to output values.

use std::borrow::Cow;

use http::HeaderMap;
use serde_json::{Map, Value as Json};

use super::transform::{self, scalar_text};
use crate::routes::expr::{Bound, Condition, Expr, Filter, Locator, Source, Test};
use crate::routes::template::Part;

/// What filters and expressions read: a document, and the headers that came with it.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    /// What `$` is: the payload, or a value a `for_each` or an `each` selected in it.
    pub doc: &'a Json,
    /// The whole payload (or event), what `$$` is.
    pub root: &'a Json,
    pub headers: Headers<'a>,
    /// The webhook's URL query (none for a consumed event).
    pub query: Option<&'a str>,
}

impl<'a> Input<'a> {
    /// A document (the root) and the headers that came with it.
    pub fn new(doc: &'a Json, headers: Headers<'a>) -> Input<'a> {
        Input { doc, root: doc, headers, query: None }
    }

    /// A webhook's parsed body, its request headers and its URL's query.
    pub fn webhook(doc: &'a Json, headers: &'a HeaderMap, query: Option<&'a str>) -> Input<'a> {
        Input { query, ..Input::new(doc, Headers::Http(headers)) }
    }

    /// The decoded value of the query parameter `name` (the first, when it repeats).
    pub fn query_value(&self, name: &str) -> Option<String> {
        let query = self.query?.as_bytes();
        form_urlencoded::parse(query).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// What `path` reads: the root for a `$$…` path, else the document in hand.
    pub fn for_path(&self, path: &crate::routes::jsonpath::Path) -> &'a Json {
        if path.reads_root() { self.root } else { self.doc }
    }
}

/// The headers that came with a document.
#[derive(Clone, Copy)]
pub enum Headers<'a> {
    /// A webhook's HTTP request headers.
    Http(&'a HeaderMap),
    /// A consumed record's Kafka headers that are UTF-8 text, and the names of those that are not.
    Kafka { text: &'a [(&'a str, &'a str)], binary: &'a [&'a str] },
}

impl<'a> Headers<'a> {
    /// The value of header `name` (the first, when it repeats); `None` when absent, an error
    /// when it is not UTF-8 text.
    /// Names ignore case.
    pub fn get(&self, name: &str) -> Result<Option<&'a str>, String> {
        let not_text = || format!("the {} '{name}' is not UTF-8 text", self.noun());
        match *self {
            Headers::Http(map) => match map.get(name) {
                Some(v) => std::str::from_utf8(v.as_bytes()).map(Some).map_err(|_| not_text()),
                None => Ok(None),
            },
            Headers::Kafka { text, binary } => match text.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                Some((_, v)) => Ok(Some(*v)),
                None if binary.iter().any(|k| k.eq_ignore_ascii_case(name)) => Err(not_text()),
                None => Ok(None),
            },
        }
    }

    /// What a header is called in messages.
    pub fn noun(&self) -> &'static str {
        match self {
            Headers::Http(_) => "request header",
            Headers::Kafka { .. } => "Kafka header",
        }
    }
}

/// The value at `at`: borrowed from the document, or a header's text as a JSON string. A
/// header that is not UTF-8 text counts as absent here.
pub fn locate<'a>(at: &Locator, input: Input<'a>) -> Option<Cow<'a, Json>> {
    match at {
        Locator::Path(p) => p.find(input.for_path(p)).map(Cow::Borrowed),
        Locator::Header(h) => {
            input.headers.get(h.as_str()).ok().flatten().map(|v| Cow::Owned(Json::String(v.to_owned())))
        }
        Locator::Query(q) => input.query_value(q).map(|v| Cow::Owned(Json::String(v))),
    }
}

/// The scalar at `at` as text (an event type or an event id).
pub fn text_at(at: &Locator, input: Input) -> Option<String> {
    locate(at, input).and_then(|v| scalar_text(&v))
}

/// Why a value could not be produced; shown to the sender as a 422.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MapError {
    /// The output being produced, e.g. `value.order_id` or `value.items[2].sku`.
    pub field: String,
    pub message: String,
}

impl MapError {
    /// The same failure inside the output `name`: `name` goes in front of `field`.
    pub fn under(self, name: &str) -> MapError {
        MapError { field: format!("{name}{}", self.field), message: self.message }
    }
}

/// True when every part of the filter holds for `input`.
pub fn matches(filter: &Filter, input: Input) -> bool {
    if let Some((at, types)) = &filter.event_type {
        let found = match at {
            Locator::Path(p) => p.find(input.for_path(p)).and_then(Json::as_str).map(Cow::Borrowed),
            Locator::Header(h) => input.headers.get(h.as_str()).ok().flatten().map(Cow::Borrowed),
            Locator::Query(q) => input.query_value(q).map(Cow::Owned),
        };
        match found {
            Some(t) if types.iter().any(|x| x == t.as_ref()) => {}
            _ => return false,
        }
    }
    filter.conditions.iter().all(|c| holds(c, input))
}

fn holds(condition: &Condition, input: Input) -> bool {
    match condition {
        Condition::Test { at, test, .. } => {
            let found = locate(at, input);
            passes(test, found.as_deref(), at.reads_text())
        }
        Condition::Any(all) => all.iter().any(|c| holds(c, input)),
        Condition::All(all) => all.iter().all(|c| holds(c, input)),
        Condition::Not(c) => !holds(c, input),
    }
}

/// Whether `found` (`None`: missing or null) passes `test`; a header's text is read as a
/// number by a range.
pub(super) fn passes(test: &Test, found: Option<&Json>, header: bool) -> bool {
    match test {
        Test::Exists(want) => found.is_some() == *want,
        Test::Equals(v) => found == Some(v),
        Test::In(vs) => found.is_some_and(|f| vs.contains(f)),
        Test::NotIn(vs) => !found.is_some_and(|f| vs.contains(f)),
        Test::Range { low, high } => {
            let n = match found {
                Some(Json::Number(n)) => n.as_f64(),
                Some(Json::String(s)) if header => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
                _ => None,
            };
            n.is_some_and(|n| within(n, *low, *high))
        }
        Test::Contains(v) => match (found, v) {
            (Some(Json::String(s)), Json::String(part)) => s.contains(part.as_str()),
            (Some(Json::Array(items)), v) => items.contains(v),
            _ => false,
        },
        Test::StartsWith(part) => found.and_then(Json::as_str).is_some_and(|s| s.starts_with(part.as_str())),
        Test::EndsWith(part) => found.and_then(Json::as_str).is_some_and(|s| s.ends_with(part.as_str())),
        Test::Matches(re) => found.and_then(Json::as_str).is_some_and(|s| re.is_match(s)),
    }
}

fn within(n: f64, low: Option<Bound>, high: Option<Bound>) -> bool {
    let above = low.is_none_or(|b| if b.inclusive { n >= b.value } else { n > b.value });
    let below = high.is_none_or(|b| if b.inclusive { n <= b.value } else { n < b.value });
    above && below
}

/// Evaluates an expression against `input`; `produced` is the value built so far (for
/// `field:`). `Ok(None)` means an optional value that is absent. The error's `field` is where
/// inside the value it failed (`""`, or `.email`, `[2].sku` in an `object` or an `each`): the
/// caller puts the output's name in front ([`MapError::under`]).
pub fn eval(expr: &Expr, input: Input, produced: Option<&Map<String, Json>>) -> Result<Option<Json>, MapError> {
    eval_escaped(expr, input, produced, None)
}

/// Escapes a value a template inserts into its text (markup's special characters).
pub type Escape = fn(&str, &mut String);

/// As [`eval`], with what a template inserts passed through `escape`: an answer's text in a
/// markup media type, where a sender's value must stay text.
pub fn eval_escaped(
    expr: &Expr,
    input: Input,
    produced: Option<&Map<String, Json>>,
    escape: Option<Escape>,
) -> Result<Option<Json>, MapError> {
    let Some(each) = &expr.each else { return eval_one(expr, input, produced, escape) };
    let selected = each.select(input.for_path(each));
    let mut items = Vec::with_capacity(selected.len());
    for (i, doc) in selected.into_iter().enumerate() {
        let found = eval_one(expr, Input { doc, ..input }, produced, escape).map_err(|e| e.under(&format!("[{i}]")))?;
        items.extend(found);
    }
    Ok(Some(Json::Array(items)))
}

/// One value: the source, the default, the steps.
fn eval_one(
    expr: &Expr,
    input: Input,
    produced: Option<&Map<String, Json>>,
    escape: Option<Escape>,
) -> Result<Option<Json>, MapError> {
    let failed = |message| MapError { field: String::new(), message };
    // Borrowed until the end: a value that goes through transform steps is never copied.
    let found = match &expr.source {
        Source::Const(v) => Some(Cow::Borrowed(v)),
        Source::Paths(paths) => paths.iter().find_map(|p| p.find(input.for_path(p))).map(Cow::Borrowed),
        Source::Field(name) => produced.and_then(|m| m.get(name)).filter(|v| !v.is_null()).map(Cow::Borrowed),
        Source::Template(parts) => render(parts, input, escape).map(|s| Cow::Owned(Json::String(s))),
        Source::Header(name) => {
            input.headers.get(name.as_str()).map_err(failed)?.map(|v| Cow::Owned(Json::String(v.to_owned())))
        }
        Source::Query(name) => input.query_value(name).map(|v| Cow::Owned(Json::String(v))),
        Source::Object(fields) => return object(fields, input, "").map(|m| Some(Json::Object(m))),
    };
    let mut value = match (found, &expr.default) {
        (Some(v), _) => v,
        (None, Some(d)) => Cow::Borrowed(d),
        (None, None) if expr.optional => return Ok(None),
        (None, None) => return Err(failed(missing(&expr.source, input.headers))),
    };
    for step in &expr.steps {
        value = Cow::Owned(transform::apply(step, &value, input).map_err(failed)?);
    }
    Ok(Some(value.into_owned()))
}

fn render(parts: &[Part<crate::routes::jsonpath::Path>], input: Input, escape: Option<Escape>) -> Option<String> {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Lit(s) => out.push_str(s),
            Part::Var(p) => {
                let v = p.find(input.for_path(p))?;
                let text = scalar_text(v).unwrap_or_else(|| v.to_string());
                match escape {
                    Some(escape) => escape(&text, &mut out),
                    None => out.push_str(&text),
                }
            }
        }
    }
    Some(out)
}

/// XML's (and HTML's) five special characters as entities: a value inserted into markup
/// stays text, whatever it holds.
pub fn escape_markup(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

/// Whether `content_type` is markup (XML, HTML), whose templates escape what they insert.
pub fn is_markup(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    matches!(media.as_str(), "text/xml" | "application/xml" | "text/html") || media.ends_with("+xml")
}

fn missing(source: &Source, headers: Headers) -> String {
    match source {
        Source::Paths(paths) => {
            let list: Vec<_> = paths.iter().map(|p| p.as_str()).collect();
            format!("required data is missing: no value at {}", list.join(" or "))
        }
        Source::Template(parts) => {
            let list: Vec<_> = parts
                .iter()
                .filter_map(|p| match p {
                    Part::Var(path) => Some(path.as_str()),
                    Part::Lit(_) => None,
                })
                .collect();
            format!("required data is missing for the template: {}", list.join(", "))
        }
        Source::Field(name) => format!("the value has no property '{name}'"),
        Source::Header(name) => format!("required data is missing: no {} '{name}'", headers.noun()),
        Source::Query(name) => format!("required data is missing: no query parameter '{name}'"),
        Source::Const(_) => "constant is missing".into(),
        Source::Object(_) => "an object is always produced".into(),
    }
}

/// Builds a JSON object from named expressions; stops at the first failure, named
/// `{prefix}.{name}`.
pub fn object(fields: &[(String, Expr)], input: Input, prefix: &str) -> Result<Map<String, Json>, MapError> {
    let mut out = Map::with_capacity(fields.len());
    each_value(fields, input, prefix, |name, v| {
        out.insert(name.to_owned(), v);
    })?;
    Ok(out)
}

/// The values of `fields` that find one, in config order (an object's map sorts them).
pub fn values<'f>(fields: &'f [(String, Expr)], input: Input, prefix: &str) -> Result<Vec<(&'f str, Json)>, MapError> {
    let mut out = Vec::with_capacity(fields.len());
    each_value(fields, input, prefix, |name, v| out.push((name, v)))?;
    Ok(out)
}

fn each_value<'f>(
    fields: &'f [(String, Expr)],
    input: Input,
    prefix: &str,
    mut found: impl FnMut(&'f str, Json),
) -> Result<(), MapError> {
    for (name, expr) in fields {
        if let Some(v) = eval(expr, input, None).map_err(|e| e.under(&format!("{prefix}.{name}")))? {
            found(name, v);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::jsonpath::Path;
    use crate::routes::template::Part;
    use http::HeaderName;
    use serde_json::json;

    /// A failure of the value itself (not of a value inside it).
    fn bare(message: &str) -> MapError {
        MapError { field: String::new(), message: message.into() }
    }

    fn filter(path: &str, test: Test) -> Filter {
        Filter {
            event_type: None,
            conditions: vec![Condition::Test {
                at: Locator::Path(Path::parse(path).unwrap()),
                test,
                place: serde_saphyr::Location::UNKNOWN,
            }],
        }
    }

    fn on_header(name: &'static str, test: Test) -> Filter {
        Filter {
            event_type: None,
            conditions: vec![Condition::Test {
                at: Locator::Header(HeaderName::from_static(name)),
                test,
                place: serde_saphyr::Location::UNKNOWN,
            }],
        }
    }

    fn header_expr(name: &'static str, optional: bool) -> Expr {
        Expr {
            source: Source::Header(HeaderName::from_static(name)),
            each: None,
            default: None,
            optional,
            steps: vec![],
            at: serde_saphyr::Location::UNKNOWN,
        }
    }

    #[test]
    fn equals_in_not_in_and_exists_conditions() {
        let doc = json!({"type": "a", "status": "paid", "meta": {"order": "1"}, "gone": null});
        let none = HeaderMap::new();
        let input = Input::new(&doc, Headers::Http(&none));
        assert!(matches(&filter("$.status", Test::Equals(json!("paid"))), input));
        assert!(!matches(&filter("$.status", Test::Equals(json!("unpaid"))), input));
        assert!(matches(&filter("$.status", Test::In(vec![json!("x"), json!("paid")])), input));
        assert!(!matches(&filter("$.status", Test::In(vec![json!("x")])), input));
        assert!(matches(&filter("$.status", Test::NotIn(vec![json!("unpaid"), json!("open")])), input));
        assert!(!matches(&filter("$.status", Test::NotIn(vec![json!("x"), json!("paid")])), input));
        assert!(matches(&filter("$.missing", Test::NotIn(vec![json!("x")])), input), "a missing value is in no list");
        assert!(matches(&filter("$.meta.order", Test::Exists(true)), input));
        assert!(matches(&filter("$.gone", Test::Exists(false)), input), "null counts as absent");
        assert!(!matches(&filter("$.missing", Test::Exists(true)), input));
        let typed = Filter {
            event_type: Some((Locator::Path(Path::parse("$.type").unwrap()), vec!["b".into(), "a".into()])),
            conditions: vec![],
        };
        assert!(matches(&typed, input));
        assert!(!matches(&typed, Input::new(&json!({"type": "c"}), Headers::Http(&none))));
    }

    #[test]
    fn ranges_text_tests_and_combinations() {
        let doc = json!({"amount": 1500, "price": 9.5, "email": "ana@example.com", "tags": ["vip", 3], "n": "12"});
        let mut headers = HeaderMap::new();
        headers.insert("x-attempt", " 3 ".parse().unwrap());
        let input = Input::new(&doc, Headers::Http(&headers));
        let range = |low: Option<(f64, bool)>, high: Option<(f64, bool)>| Test::Range {
            low: low.map(|(value, inclusive)| Bound { value, inclusive }),
            high: high.map(|(value, inclusive)| Bound { value, inclusive }),
        };
        assert!(matches(&filter("$.amount", range(Some((1000.0, false)), None)), input));
        assert!(matches(&filter("$.amount", range(Some((1500.0, true)), Some((1500.0, true)))), input));
        assert!(!matches(&filter("$.amount", range(Some((1500.0, false)), None)), input));
        assert!(!matches(&filter("$.amount", range(None, Some((1500.0, false)))), input));
        assert!(matches(&filter("$.price", range(Some((9.0, false)), Some((10.0, false)))), input));
        assert!(!matches(&filter("$.n", range(Some((1.0, false)), None)), input), "a string in the body is no number");
        assert!(!matches(&filter("$.missing", range(None, Some((1.0, false)))), input));
        assert!(matches(&on_header("x-attempt", range(Some((2.0, false)), None)), input), "a header's text is read");
        assert!(!matches(&on_header("x-attempt", range(Some((3.0, false)), None)), input));

        assert!(matches(&filter("$.email", Test::Contains(json!("@example."))), input));
        assert!(matches(&filter("$.tags", Test::Contains(json!("vip"))), input));
        assert!(matches(&filter("$.tags", Test::Contains(json!(3))), input));
        assert!(!matches(&filter("$.tags", Test::Contains(json!("vi"))), input), "an array holds whole values");
        assert!(!matches(&filter("$.amount", Test::Contains(json!("1"))), input));
        assert!(matches(&filter("$.email", Test::StartsWith("ana@".into())), input));
        assert!(matches(&filter("$.email", Test::EndsWith("@example.com".into())), input));
        assert!(!matches(&filter("$.email", Test::EndsWith("@example.org".into())), input));
        assert!(!matches(&filter("$.amount", Test::StartsWith("1".into())), input), "numbers are not text");
        let re = |p: &str| Test::Matches(regex::Regex::new(p).unwrap());
        assert!(matches(&filter("$.email", re(r"@example\.(com|org)$")), input));
        assert!(!matches(&filter("$.email", re(r"^bob@")), input));
        assert!(!matches(&filter("$.missing", re(".*")), input), "a missing value matches nothing");

        let at = |path: &str, test: Test| Condition::Test {
            at: Locator::Path(Path::parse(path).unwrap()),
            test,
            place: serde_saphyr::Location::UNKNOWN,
        };
        let both = |conditions: Vec<Condition>| Filter { event_type: None, conditions };
        let big = || at("$.amount", range(Some((1000.0, false)), None));
        let vip = || at("$.tags", Test::Contains(json!("vip")));
        let gone = || at("$.missing", Test::Exists(true));
        assert!(matches(&both(vec![Condition::Any(vec![gone(), vip()])]), input));
        assert!(!matches(&both(vec![Condition::Any(vec![gone(), Condition::Not(Box::new(big()))])]), input));
        assert!(matches(&both(vec![Condition::All(vec![big(), vip()]), Condition::Not(Box::new(gone()))]), input));
        assert!(!matches(&both(vec![big(), Condition::All(vec![vip(), gone()])]), input));
    }

    #[test]
    fn filters_and_expressions_read_request_headers() {
        let doc = json!({"type": "not the header"});
        let mut headers = HeaderMap::new();
        headers.insert("x-github-event", "push".parse().unwrap());
        headers.append("x-github-event", "second".parse().unwrap());
        headers.insert("x-latin1", http::HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let input = Input::new(&doc, Headers::Http(&headers));
        let typed = Filter {
            event_type: Some((Locator::Header(HeaderName::from_static("x-github-event")), vec!["push".into()])),
            conditions: vec![],
        };
        assert!(matches(&typed, input), "the first value of a repeated header counts");
        assert!(matches(&on_header("x-github-event", Test::In(vec![json!("ping"), json!("push")])), input));
        assert!(!matches(&on_header("x-github-event", Test::Equals(json!("ping"))), input));
        assert!(matches(&on_header("x-missing", Test::Exists(false)), input));
        assert!(matches(&on_header("x-latin1", Test::Exists(false)), input), "a header that is not text is absent");

        assert_eq!(eval(&header_expr("x-github-event", false), input, None), Ok(Some(json!("push"))));
        assert_eq!(eval(&header_expr("x-missing", true), input, None), Ok(None));
        assert_eq!(
            eval(&header_expr("x-missing", false), input, None),
            Err(bare("required data is missing: no request header 'x-missing'"))
        );
        assert_eq!(
            eval(&header_expr("x-latin1", true), input, None),
            Err(bare("the request header 'x-latin1' is not UTF-8 text"))
        );
        assert_eq!(text_at(&Locator::Header(HeaderName::from_static("x-github-event")), input), Some("push".into()));
    }

    #[test]
    fn in_a_dispatcher_headers_are_the_records_kafka_headers() {
        let doc = json!({});
        let text = [("Event_Type", "payment_successful")];
        let binary = ["raw"];
        let input = Input::new(&doc, Headers::Kafka { text: &text, binary: &binary });
        assert!(matches(&on_header("event_type", Test::Equals(json!("payment_successful"))), input));
        assert_eq!(eval(&header_expr("event_type", false), input, None), Ok(Some(json!("payment_successful"))));
        assert_eq!(
            eval(&header_expr("raw", false), input, None),
            Err(bare("the Kafka header 'raw' is not UTF-8 text"))
        );
        assert_eq!(
            eval(&header_expr("gone", false), input, None),
            Err(bare("required data is missing: no Kafka header 'gone'"))
        );
    }

    #[test]
    fn a_template_in_markup_inserts_its_values_as_text() {
        let parts = vec![
            Part::Lit("<Response><Message>Got: ".into()),
            Part::Var(Path::parse("$.Body").unwrap()),
            Part::Lit("</Message></Response>".into()),
        ];
        let expr = Expr {
            source: Source::Template(parts),
            each: None,
            default: None,
            optional: false,
            steps: vec![],
            at: serde_saphyr::Location::UNKNOWN,
        };
        let doc = json!({"Body": "</Message><Redirect>https://evil.example/</Redirect><Message>'&\""});
        let none = HeaderMap::new();
        let input = Input::new(&doc, Headers::Http(&none));
        assert_eq!(
            eval_escaped(&expr, input, None, Some(escape_markup)),
            Ok(Some(json!(
                "<Response><Message>Got: &lt;/Message&gt;&lt;Redirect&gt;https://evil.example/&lt;/Redirect&gt;&lt;Message&gt;&apos;&amp;&quot;</Message></Response>"
            )))
        );
        // Elsewhere (JSON answers, plain text, events) values are inserted as they are.
        let plain = eval(&expr, input, None).unwrap().unwrap();
        assert!(plain.as_str().unwrap().contains("<Redirect>"));
        for markup in ["text/xml", "application/xml; charset=utf-8", "Text/HTML", "application/atom+xml"] {
            assert!(is_markup(markup), "{markup}");
        }
        for other in ["text/plain", "application/json", "text/xmlish", "application/x-www-form-urlencoded"] {
            assert!(!is_markup(other), "{other}");
        }
    }
}
