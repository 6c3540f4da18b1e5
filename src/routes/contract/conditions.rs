//! What a rule's `when` reads and tests, held to the schema: each condition's path exists, and
//! no condition is decided before any event comes (a type or a value the schema never allows
//! there); a source rule's `when.event_type` is one the inbound schema names.

use serde_json::Value as Json;
use serde_saphyr::Location;

use super::values::{event_types_in, same, values_in};
use super::walk::{Node, Ty, always_present, name, ty, types_in};
use super::{Inbound, nodes_at};
use crate::config::model::{OneOrMany, Spanned};
use crate::routes::did_you_mean::nearest;
use crate::routes::expr::{Condition, Filter, Locator, Test};
use crate::routes::jsonpath::Segment;
use crate::routes::{Ctx, Schema};

/// Warns about a rule's or a reply's (`what`) `when.event_type` that `schema` does not name
/// where one it names is spelt nearly the same (`checkout.session.complete`): the rule would pass
/// over every event without a word. The types a schema names are the `const`s and `enum`s of the property
/// `event_type` reads (`$.type`), at its root and in its `if`s, `allOf`s, `anyOf`s and `oneOf`s.
pub(in crate::routes) fn check_event_types(
    ctx: &mut Ctx,
    what: &str,
    types: &Spanned<OneOrMany>,
    event_type: &str,
    schema: &Schema,
) {
    let segments = crate::routes::jsonpath::segments(event_type);
    let Some([Segment::Name(property)]) = segments.as_deref() else { return };
    let mut named = Vec::new();
    event_types_in(&Node::root(schema), property, &mut named);
    for t in types.value.to_vec() {
        if named.iter().any(|n| n == &t) {
            continue;
        }
        if let Some(near) = nearest(&t, named.iter().map(String::as_str)) {
            let message = format!(
                "{what}, when.event_type: '{schema}' names no event type '{t}'; did you mean '{near}'?",
                schema = schema.name
            );
            ctx.warning(types.referenced, message);
        }
    }
}

/// Checks the JSONPath of every condition against what `inbound` describes.
pub(super) fn check_conditions(ctx: &mut Ctx, conditions: &[Condition], inbound: &Inbound, when: &Filter, what: &str) {
    for condition in conditions {
        match condition {
            Condition::Test { at: Locator::Path(p), place, test } => {
                if nodes_at(ctx, p.as_str(), Some(inbound), when, *place, what).is_some() {
                    check_tested_values(ctx, test, p.as_str(), inbound, when, *place, what);
                }
            }
            Condition::Test { .. } => {}
            Condition::Any(all) | Condition::All(all) => check_conditions(ctx, all, inbound, when, what),
            Condition::Not(c) => check_conditions(ctx, std::slice::from_ref(c), inbound, when, what),
        }
    }
}

/// Warns about a condition that the value at `path` decides before any event comes, by what the
/// schema there says (for the event types the rule takes), as a typo makes likely: a test
/// (`gte`, `starts_with`, `contains`, …) of a type the schema never allows there, or a value
/// (`equals`, `in`, `not_in`) of such a type or one its `const` or `enum` never allows.
fn check_tested_values(
    ctx: &mut Ctx,
    test: &Test,
    path: &str,
    inbound: &Inbound,
    when: &Filter,
    at: Location,
    what: &str,
) {
    let (from, relative, described) = inbound.from(path);
    // What the payload may hold there, whatever this or any other condition says of it.
    let by_type = Filter { event_type: inbound.filter(path, when).event_type.clone(), conditions: Vec::new() };
    let types = types_in(from, relative, &by_type).filter(|ts| !ts.is_empty());
    let numbers = |t: Ty| matches!(t, Ty::Integer | Ty::Number);
    let allows = |t: Ty| types.as_ref().is_none_or(|ts| ts.iter().any(|a| *a == t || (numbers(*a) && numbers(t))));
    let only = || types.iter().flatten().map(|t| name(*t)).collect::<Vec<_>>().join(" or ");
    let needs: &[(Ty, &str)] = match test {
        Test::Range { .. } => &[(Ty::Number, "a number")],
        Test::StartsWith(_) | Test::EndsWith(_) | Test::Matches(_) => &[(Ty::String, "a string")],
        Test::Contains(Json::String(_)) => &[(Ty::String, "a string"), (Ty::Array, "an array")],
        Test::Contains(_) => &[(Ty::Array, "an array")],
        _ => &[],
    };
    if !needs.is_empty() && !needs.iter().any(|(t, _)| allows(*t)) {
        let kinds: Vec<&str> = needs.iter().map(|(_, kind)| *kind).collect();
        let message = format!(
            "{what}: {path} is never {} in {described} (the schema allows only {} there): the test never holds",
            kinds.join(" or "),
            only()
        );
        return ctx.warning(at, message);
    }
    // A value required all the way there, and never null, is always found.
    if matches!(test, Test::Exists(false)) && !allows(Ty::Null) && always_present(from, relative, &by_type) {
        let message =
            format!("{what}: {path} is always there in {described} (required, never null): the test never holds");
        return ctx.warning(at, message);
    }
    let tested = match test {
        Test::Equals(v) => std::slice::from_ref(v),
        Test::In(values) | Test::NotIn(values) => values.as_slice(),
        _ => return,
    };
    let allowed = values_in(from, relative, &by_type);
    let mut listed: Vec<String> = allowed.iter().flatten().map(Json::to_string).collect();
    let mut once = std::collections::HashSet::new();
    listed.retain(|v| once.insert(v.clone()));
    for v in tested.iter().filter(|v| !v.is_null()) {
        let message = if !allows(ty(v)) {
            format!("{what}: {path} is never {v} in {described} (the schema allows only {} there)", only())
        } else if let Some(allowed) = &allowed
            && !allowed.iter().any(|a| same(a, v))
        {
            let near = v.as_str().and_then(|v| nearest(v, allowed.iter().filter_map(Json::as_str)));
            let near = near.map(|n| format!("; did you mean \"{n}\"?")).unwrap_or_default();
            format!("{what}: {path} is never {v} in {described} (the schema allows only {}){near}", listed.join(", "))
        } else {
            continue;
        };
        ctx.warning(at, message);
    }
}
