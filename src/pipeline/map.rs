//! Stages 4–5: match rules against an inbound document and map it to output values.

use std::borrow::Cow;

use serde_json::{Map, Value as Json};

use super::transform::{self, scalar_text};
use crate::routes::expr::{Expr, Filter, Source, Test};
use crate::routes::template::Part;

/// Why a value could not be produced; shown to the sender as a 422.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MapError {
    /// The output being produced, e.g. `value.order_id`.
    pub field: String,
    pub message: String,
}

/// True when every part of the filter holds for `doc`.
pub fn matches(filter: &Filter, doc: &Json) -> bool {
    if let Some((path, types)) = &filter.event_type {
        match path.find(doc).and_then(Json::as_str) {
            Some(t) if types.iter().any(|x| x == t) => {}
            _ => return false,
        }
    }
    filter.conditions.iter().all(|c| {
        let found = c.path.find(doc);
        match &c.test {
            Test::Exists(want) => found.is_some() == *want,
            Test::Equals(v) => found == Some(v),
            Test::In(vs) => found.is_some_and(|f| vs.contains(f)),
            Test::NotIn(vs) => !found.is_some_and(|f| vs.contains(f)),
        }
    })
}

/// Evaluates an expression against `doc`; `produced` is the value built so far (for
/// `field:`). `Ok(None)` means an optional value that is absent; the error is a sentence
/// the caller prefixes with the output's name.
pub fn eval(expr: &Expr, doc: &Json, produced: Option<&Map<String, Json>>) -> Result<Option<Json>, String> {
    // Borrowed until the end: a value that goes through transform steps is never copied.
    let found = match &expr.source {
        Source::Const(v) => Some(Cow::Borrowed(v)),
        Source::Paths(paths) => paths.iter().find_map(|p| p.find(doc)).map(Cow::Borrowed),
        Source::Field(name) => produced.and_then(|m| m.get(name)).filter(|v| !v.is_null()).map(Cow::Borrowed),
        Source::Template(parts) => render(parts, doc).map(|s| Cow::Owned(Json::String(s))),
    };
    let mut value = match (found, &expr.default) {
        (Some(v), _) => v,
        (None, Some(d)) => Cow::Borrowed(d),
        (None, None) if expr.optional => return Ok(None),
        (None, None) => return Err(missing(&expr.source)),
    };
    for step in &expr.steps {
        value = Cow::Owned(transform::apply(step, &value, doc)?);
    }
    Ok(Some(value.into_owned()))
}

fn render(parts: &[Part<crate::routes::jsonpath::Path>], doc: &Json) -> Option<String> {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Lit(s) => out.push_str(s),
            Part::Var(p) => {
                let v = p.find(doc)?;
                out.push_str(&scalar_text(v).unwrap_or_else(|| v.to_string()));
            }
        }
    }
    Some(out)
}

fn missing(source: &Source) -> String {
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
        Source::Const(_) => "constant is missing".into(),
    }
}

/// Builds a JSON object from named expressions; stops at the first failure.
pub fn object(fields: &[(String, Expr)], doc: &Json, prefix: &str) -> Result<Map<String, Json>, MapError> {
    let mut out = Map::with_capacity(fields.len());
    for (name, expr) in fields {
        let found = eval(expr, doc, None).map_err(|message| MapError { field: format!("{prefix}.{name}"), message })?;
        if let Some(v) = found {
            out.insert(name.clone(), v);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::expr::Condition;
    use crate::routes::jsonpath::Path;
    use serde_json::json;

    fn filter(path: &str, test: Test) -> Filter {
        Filter { event_type: None, conditions: vec![Condition { path: Path::parse(path).unwrap(), test }] }
    }

    #[test]
    fn equals_in_not_in_and_exists_conditions() {
        let doc = json!({"type": "a", "status": "paid", "meta": {"order": "1"}, "gone": null});
        assert!(matches(&filter("$.status", Test::Equals(json!("paid"))), &doc));
        assert!(!matches(&filter("$.status", Test::Equals(json!("unpaid"))), &doc));
        assert!(matches(&filter("$.status", Test::In(vec![json!("x"), json!("paid")])), &doc));
        assert!(!matches(&filter("$.status", Test::In(vec![json!("x")])), &doc));
        assert!(matches(&filter("$.status", Test::NotIn(vec![json!("unpaid"), json!("open")])), &doc));
        assert!(!matches(&filter("$.status", Test::NotIn(vec![json!("x"), json!("paid")])), &doc));
        assert!(matches(&filter("$.missing", Test::NotIn(vec![json!("x")])), &doc), "a missing value is in no list");
        assert!(matches(&filter("$.meta.order", Test::Exists(true)), &doc));
        assert!(matches(&filter("$.gone", Test::Exists(false)), &doc), "null counts as absent");
        assert!(!matches(&filter("$.missing", Test::Exists(true)), &doc));
        let typed = Filter {
            event_type: Some((Path::parse("$.type").unwrap(), vec!["b".into(), "a".into()])),
            conditions: vec![],
        };
        assert!(matches(&typed, &doc));
        assert!(!matches(&typed, &json!({"type": "c"})));
    }
}
