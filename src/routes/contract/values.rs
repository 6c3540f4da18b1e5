//! What values a schema allows: a member of a document (which event types a kind of event
//! has, `values_allowed`; every type it names, `event_types_in`) or the value at a path
//! (`values_in`, for the condition warnings), each read through a value's own `$ref`s,
//! `allOf`s and `anyOf`/`oneOf` branches (`own_values`), with JSON Schema's equality (`same`).

use std::collections::{BTreeSet, HashSet};

use serde_json::Value as Json;

use super::walk::{Node, Resolved, Seen, cases, follow_ref, ref_key, resolve};
use crate::routes::expr::Filter;

/// Whether two JSON values are equal as JSON Schema compares them (`1` and `1.0` are).
pub(super) fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The values the value at `path` may have in a document `when` lets through, by the nodes that
/// surely hold there ([`own_values`]: their `const`s and `enum`s, and their `anyOf`s' and
/// `oneOf`s' branches together): in each case of the filter (one per event type it takes), any
/// alternative schema's, each those all its nodes allow. `None` when a case or an alternative
/// binds nothing there.
pub(super) fn values_in(from: &[Node], path: &str, when: &Filter) -> Option<Vec<Json>> {
    let mut all = Vec::new();
    for case in cases(when) {
        let Resolved::Found(nodes) = resolve(from, path, &case) else { return None };
        all.extend(values_at(&nodes)?);
    }
    Some(all)
}

fn values_at(nodes: &[Node]) -> Option<Vec<Json>> {
    let alts: BTreeSet<usize> = nodes.iter().map(|n| n.alt).collect();
    if alts.is_empty() {
        return None;
    }
    let mut all = Vec::new();
    for alt in alts {
        let mut bound: Option<Vec<Json>> = None;
        for n in nodes.iter().filter(|n| n.alt == alt && n.surely()) {
            if let Some(set) = own_values(n, &mut HashSet::new(), 0) {
                narrow(&mut bound, set);
            }
        }
        all.extend(bound?);
    }
    Some(all)
}

/// `bound` narrowed to the values `set` holds too (all of `set` when nothing bound it yet).
fn narrow(bound: &mut Option<Vec<Json>>, set: Vec<Json>) {
    *bound = Some(match bound.take() {
        None => set,
        Some(had) => had.into_iter().filter(|v| set.iter().any(|l| same(l, v))).collect(),
    });
}

/// The values schema node `n` allows its instance, by `const`s and `enum`s: its own, its
/// `$ref`'s (each target once) and its `allOf`s' (each narrows the set), and its `anyOf`s' and
/// `oneOf`s' (the branches' sets together, where every branch binds). `None` when nothing binds
/// it; an `if`'s `then` binds only conditionally, so it is not read.
fn own_values(n: &Node, seen: &mut Seen, depth: usize) -> Option<Vec<Json>> {
    if depth > 16 {
        return None;
    }
    let mut bound: Option<Vec<Json>> = None;
    if let Some(c) = n.schema.get("const") {
        narrow(&mut bound, vec![c.clone()]);
    }
    if let Some(e) = n.schema.get("enum").and_then(Json::as_array) {
        narrow(&mut bound, e.clone());
    }
    if let Some(r) = n.schema.get("$ref").and_then(Json::as_str)
        && seen.insert(ref_key(n, r))
        && let Some(set) = follow_ref(n, r).and_then(|target| own_values(&target, seen, depth + 1))
    {
        narrow(&mut bound, set);
    }
    for branch in n.schema.get("allOf").and_then(Json::as_array).into_iter().flatten() {
        if let Some(set) = own_values(&n.part(branch), seen, depth + 1) {
            narrow(&mut bound, set);
        }
    }
    for key in ["anyOf", "oneOf"] {
        let Some(branches) = n.schema.get(key).and_then(Json::as_array) else { continue };
        let either: Option<Vec<Json>> = branches.iter().try_fold(Vec::new(), |mut either: Vec<Json>, branch| {
            for v in own_values(&n.part(branch), seen, depth + 1)? {
                if !either.iter().any(|e| same(e, &v)) {
                    either.push(v);
                }
            }
            Some(either)
        });
        if let Some(either) = either {
            narrow(&mut bound, either);
        }
    }
    bound
}

/// The values member `property` of a document `n` describes can take, by the `const`s and
/// `enum`s that bind it ([`own_values`] of the member's schema): at `n`'s root, through its
/// `$ref`s (each target once) and `allOf`s (each narrows the set), and its `anyOf`s and `oneOf`s
/// (the branches' sets together).
/// `None` when some way through leaves the value open (an `anyOf` branch that does not bind
/// it, a `$ref` that cannot be followed); an `if`'s `then` binds only conditionally, so it
/// is not read.
pub(super) fn values_allowed(n: &Node, property: &str) -> Option<BTreeSet<String>> {
    values_into(n, property, &mut HashSet::new(), 0)
}

fn values_into(n: &Node, property: &str, seen: &mut Seen, depth: usize) -> Option<BTreeSet<String>> {
    if depth > 16 {
        return None;
    }
    let mut bound: Option<BTreeSet<String>> = None;
    let mut narrow = |set: BTreeSet<String>| {
        bound = Some(match bound.take() {
            None => set,
            Some(had) => had.intersection(&set).cloned().collect(),
        });
    };
    if let Some(at) = n.schema.get("properties").and_then(|p| p.get(property))
        && let Some(values) = own_values(&n.part(at), seen, depth + 1)
    {
        narrow(values.iter().filter_map(Json::as_str).map(str::to_owned).collect());
    }
    if let Some(r) = n.schema.get("$ref").and_then(Json::as_str)
        && seen.insert(ref_key(n, r))
        && let Some(set) = follow_ref(n, r).and_then(|target| values_into(&target, property, seen, depth + 1))
    {
        narrow(set);
    }
    for branch in n.schema.get("allOf").and_then(Json::as_array).into_iter().flatten() {
        if let Some(set) = values_into(&n.part(branch), property, seen, depth + 1) {
            narrow(set);
        }
    }
    for key in ["anyOf", "oneOf"] {
        let Some(branches) = n.schema.get(key).and_then(Json::as_array) else { continue };
        let mut either = BTreeSet::new();
        let every_branch_binds = branches.iter().all(|b| match values_into(&n.part(b), property, seen, depth + 1) {
            Some(set) => {
                either.extend(set);
                true
            }
            None => false,
        });
        if every_branch_binds {
            narrow(either);
        }
    }
    bound
}

/// The event types `n` names: the `const`s and `enum`s of member `property`, at its root and
/// in its `$ref`s (each once), `allOf`s, `anyOf`s, `oneOf`s, `if`s, `then`s and `else`s.
pub(super) fn event_types_in(n: &Node, property: &str, out: &mut Vec<String>) {
    event_types_into(n, property, out, &mut HashSet::new(), 0);
}

fn event_types_into(n: &Node, property: &str, out: &mut Vec<String>, seen: &mut Seen, depth: usize) {
    if depth > 16 {
        return;
    }
    let at = n.schema.get("properties").and_then(|p| p.get(property));
    let listed = at
        .and_then(|p| p.get("const"))
        .into_iter()
        .chain(at.and_then(|p| p.get("enum")?.as_array()).into_iter().flatten());
    out.extend(listed.filter_map(Json::as_str).map(str::to_owned));
    if let Some(r) = n.schema.get("$ref").and_then(Json::as_str)
        && seen.insert(ref_key(n, r))
        && let Some(target) = follow_ref(n, r)
    {
        event_types_into(&target, property, out, seen, depth + 1);
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for branch in n.schema.get(key).and_then(Json::as_array).into_iter().flatten() {
            event_types_into(&n.part(branch), property, out, seen, depth + 1);
        }
    }
    for key in ["if", "then", "else"] {
        if let Some(branch) = n.schema.get(key) {
            event_types_into(&n.part(branch), property, out, seen, depth + 1);
        }
    }
}
