//! The static contract check: from the inbound schema and a rule's mapping, prove that every
//! event the rule can publish satisfies its canonical schema — required properties are
//! always produced, JSONPaths point where the inbound schema allows, and produced types fit
//! the canonical types, into nested objects (`object`) and arrays (`each`) too. Anything the
//! schemas do not pin down is given the benefit of the doubt.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;

use super::expr::{Condition, Expr, Filter, Source, Step, Test};
use super::jsonpath::Segment;
use super::{Ctx, Rule, Schema};
use crate::config::model::{OneOrMany, Spanned};
use serde_saphyr::Location;

/// A JSON type as JSON Schema names it (`Integer` is also a `Number`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ty {
    Null,
    Bool,
    Integer,
    Number,
    String,
    Array,
    Object,
}

/// The types a value may have; `None` when nothing is known.
type Types = Option<BTreeSet<Ty>>;

fn ty(v: &Json) -> Ty {
    match v {
        Json::Null => Ty::Null,
        Json::Bool(_) => Ty::Bool,
        Json::Number(n) if n.is_i64() || n.is_u64() => Ty::Integer,
        Json::Number(_) => Ty::Number,
        Json::String(_) => Ty::String,
        Json::Array(_) => Ty::Array,
        Json::Object(_) => Ty::Object,
    }
}

fn name(t: Ty) -> &'static str {
    match t {
        Ty::Null => "null",
        Ty::Bool => "boolean",
        Ty::Integer => "integer",
        Ty::Number => "number",
        Ty::String => "string",
        Ty::Array => "array",
        Ty::Object => "object",
    }
}

/// A schema file: where it is (for relative `$ref`s) and its whole document (for `#/…` ones).
#[derive(Debug)]
struct Doc {
    file: PathBuf,
    root: Json,
}

/// A schema node and the document it lives in.
#[derive(Clone, Debug)]
struct Node {
    schema: Json,
    doc: Arc<Doc>,
    /// Holds only if an `if` does (a `then` the rule's filter does not rule out); every
    /// other node found for a value holds at once with the others.
    conditional: bool,
}

impl Node {
    /// The root of `schema`'s document.
    fn root(schema: &Schema) -> Node {
        let doc = Doc { file: schema.file.clone(), root: schema.document.clone() };
        Node { schema: schema.document.clone(), doc: Arc::new(doc), conditional: false }
    }

    /// `schema`, a part of the same document as `self`, holding as surely as `self`.
    fn part(&self, schema: &Json) -> Node {
        Node { schema: schema.clone(), doc: self.doc.clone(), conditional: self.conditional }
    }
}

/// What a rule reads, as the inbound schema describes it: the payload, or each value a
/// `for_each` selects (the schemas of its elements, found by walking the path).
struct Inbound {
    nodes: Vec<Node>,
    /// Where a path is looked for, for messages: "payloads valid for 'x.json'".
    described: String,
    /// The payload's nodes, and their description: where a `$$…` path is looked for.
    root: Vec<Node>,
    root_described: String,
}

impl Inbound {
    /// The payload of `schema`, or what `for_each` selects in it; `None` when the schema does not
    /// say what that is (given the benefit of the doubt), with an error when it cannot exist.
    fn of(ctx: &mut Ctx, rule: &Rule, schema: &Schema) -> Option<Inbound> {
        let payload = Inbound::whole(schema, format!("payloads valid for '{}'", schema.name));
        match &rule.for_each {
            Some((each, at)) => payload.select(ctx, each.as_str(), *at, &format!("rule '{}', for_each", rule.name)),
            None => Some(payload),
        }
    }

    /// Every document `schema` describes (`described`, for messages).
    fn whole(schema: &Schema, described: String) -> Inbound {
        let root = vec![Node::root(schema)];
        Inbound { nodes: root.clone(), described: described.clone(), root, root_described: described }
    }

    /// The values the JSONPath `each` selects in what `self` describes (a `for_each`, or a value's
    /// `each`); `None` when unknown, with an error naming `what` when they cannot exist.
    fn select(&self, ctx: &mut Ctx, each: &str, at: Location, what: &str) -> Option<Inbound> {
        let (from, path, described) = self.from(each);
        let nodes = resolve(from, path, &Filter::default()).reported(ctx, at, what, path, described)?;
        Some(Inbound {
            nodes,
            described: format!("the values {path} selects in {described}"),
            root: self.root.clone(),
            root_described: self.root_described.clone(),
        })
    }

    /// Where `path` is looked for (its nodes and their description) and the path from there:
    /// the payload for a `$$…` path, else what `self` describes.
    fn from<'a>(&'a self, path: &'a str) -> (&'a [Node], &'a str, &'a str) {
        match super::jsonpath::root_relative(path) {
            Some(plain) => (&self.root, plain, &self.root_described),
            None => (&self.nodes, path, &self.described),
        }
    }
}

/// The rule's filter as it bears on `path`: none for a `$$…` path, as the filter reads the
/// values a `for_each` selects, not the payload.
fn filter_for<'a>(path: &str, when: &'a Filter) -> &'a Filter {
    static NONE: std::sync::LazyLock<Filter> = std::sync::LazyLock::new(Filter::default);
    if super::jsonpath::root_relative(path).is_some() { &NONE } else { when }
}

/// What every check of one rule shares.
struct Check<'a> {
    rule: &'a str,
    canonical: &'a str,
    when: &'a Filter,
}

impl Check<'_> {
    /// How messages name output `name` (`order_id`, `customer.email`, `items[].sku`).
    fn what(&self, name: &str) -> String {
        format!("rule '{}', value.{name}", self.rule)
    }
}

/// How deep the check follows `object`s (compiling refuses deeper ones).
const MAX_DEPTH: usize = 32;

/// Checks a rule of a source against its canonical schema.
pub(super) fn check_rule(ctx: &mut Ctx, rule: &Rule, schema: Option<&Schema>) {
    let inbound = schema.and_then(|s| Inbound::of(ctx, rule, s));
    let canonical = &rule.emit.schema;
    let root = Node::root(canonical);
    let check = Check { rule: &rule.name, canonical: &canonical.name, when: &rule.when };
    let at_rule = rule.emit.value.first().map(|(_, e)| e.at).unwrap_or(serde_saphyr::Location::UNKNOWN);
    check_fields(ctx, &check, &rule.emit.value, &expand(&root), inbound.as_ref(), "", at_rule, 0);
    if let Some(inbound) = &inbound {
        let what = format!("rule '{}'", rule.name);
        check_conditions(ctx, &rule.when.conditions, inbound, &rule.when, &format!("{what}, when"));
        for (name, expr) in &rule.emit.headers {
            check_reads(ctx, expr, inbound, &rule.when, &format!("{what}, headers.{name}"));
        }
        if let Some(key) = &rule.emit.key {
            check_reads(ctx, key, inbound, &rule.when, &format!("{what}, key"));
        }
    }
}

/// Checks what a dispatch rule reads (its `when`, and its `body` or `body_value`) against the
/// schema of the events on its topic: a path that cannot exist there is an error (the call
/// would fail, or the rule never hold, for every event), a misspelt one a warning.
pub(super) fn check_dispatch_rule(ctx: &mut Ctx, rule: &super::dispatch::DispatchRule, schema: &Schema) {
    let inbound = Inbound::whole(schema, format!("events valid for '{}'", schema.name));
    let what = format!("dispatch rule '{}'", rule.name);
    check_conditions(ctx, &rule.when.conditions, &inbound, &rule.when, &format!("{what}, when"));
    for (name, expr) in &rule.body {
        check_reads(ctx, expr, &inbound, &rule.when, &format!("{what}, body.{name}"));
    }
    if let Some(expr) = &rule.body_value {
        check_reads(ctx, expr, &inbound, &rule.when, &format!("{what}, body_value"));
    }
}

/// Checks what a source's reply reads (its `when` and its answer's values) against the
/// source's inbound schema: a handshake the reply cannot answer fails the sender's set-up.
pub(super) fn check_reply(ctx: &mut Ctx, reply: &super::reply::Reply, schema: &Schema) {
    let inbound = Inbound::whole(schema, format!("payloads valid for '{}'", schema.name));
    let what = format!("reply '{}'", reply.name);
    check_conditions(ctx, &reply.when.conditions, &inbound, &reply.when, &format!("{what}, when"));
    match &reply.answer.body {
        super::reply::AnswerBody::Json(fields) => {
            for (name, expr) in fields {
                check_reads(ctx, expr, &inbound, &reply.when, &format!("{what}, body.{name}"));
            }
        }
        super::reply::AnswerBody::Text(expr, _) => {
            check_reads(ctx, expr, &inbound, &reply.when, &format!("{what}, text"))
        }
        super::reply::AnswerBody::Empty => {}
    }
}

/// Checks the JSONPaths one value reads, into its `object`s and `each`es.
fn check_reads(ctx: &mut Ctx, expr: &Expr, inbound: &Inbound, when: &Filter, what: &str) {
    let selected;
    let inbound = match &expr.each {
        Some(each) => match inbound.select(ctx, each.as_str(), expr.at, &format!("{what}, each")) {
            Some(items) => {
                selected = items;
                &selected
            }
            None => return,
        },
        None => inbound,
    };
    match &expr.source {
        Source::Object(fields) => {
            for (name, field) in fields {
                check_reads(ctx, field, inbound, when, &format!("{what}.{name}"));
            }
        }
        _ => {
            produced_types(ctx, expr, Some(inbound), when, what);
        }
    }
}

/// Warns about a rule's or a reply's (`what`) `when.event_type` that `schema` does not name
/// where one it names is spelt nearly the same (`checkout.session.complete`): the rule would pass
/// over every event without a word. The types a schema names are the `const`s and `enum`s of the property
/// `event_type` reads (`$.type`), at its root and in its `if`s, `allOf`s, `anyOf`s and `oneOf`s.
pub(super) fn check_event_types(
    ctx: &mut Ctx,
    what: &str,
    types: &Spanned<OneOrMany>,
    event_type: &str,
    schema: &Schema,
) {
    let segments = super::jsonpath::segments(event_type);
    let Some([Segment::Name(property)]) = segments.as_deref() else { return };
    let mut named = Vec::new();
    event_types_in(&Node::root(schema), property, &mut named, 0);
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

fn event_types_in(n: &Node, property: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 16 {
        return;
    }
    let at = n.schema.get("properties").and_then(|p| p.get(property));
    let listed = at
        .and_then(|p| p.get("const"))
        .into_iter()
        .chain(at.and_then(|p| p.get("enum")?.as_array()).into_iter().flatten());
    out.extend(listed.filter_map(Json::as_str).map(str::to_owned));
    if let Some(target) = n.schema.get("$ref").and_then(Json::as_str).and_then(|r| follow_ref(n, r)) {
        event_types_in(&target, property, out, depth + 1);
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for branch in n.schema.get(key).and_then(Json::as_array).into_iter().flatten() {
            event_types_in(&n.part(branch), property, out, depth + 1);
        }
    }
    for key in ["if", "then", "else"] {
        if let Some(branch) = n.schema.get(key) {
            event_types_in(&n.part(branch), property, out, depth + 1);
        }
    }
}

/// Checks the JSONPath of every condition against what `inbound` describes.
fn check_conditions(ctx: &mut Ctx, conditions: &[Condition], inbound: &Inbound, when: &Filter, what: &str) {
    for condition in conditions {
        match condition {
            Condition::Test { at: super::expr::Locator::Path(p), place, .. } => {
                let (from, path, described) = inbound.from(p.as_str());
                resolve(from, path, filter_for(p.as_str(), when)).reported(ctx, *place, what, p.as_str(), described);
            }
            Condition::Test { .. } => {}
            Condition::Any(all) | Condition::All(all) => check_conditions(ctx, all, inbound, when, what),
            Condition::Not(c) => check_conditions(ctx, std::slice::from_ref(c), inbound, when, what),
        }
    }
}

/// Checks the named values of an object (the value, or an `object` at `path` inside it) against
/// the schema nodes `props` that all describe that object.
#[allow(clippy::too_many_arguments)]
fn check_fields(
    ctx: &mut Ctx,
    check: &Check,
    fields: &[(String, Expr)],
    props: &[Node],
    inbound: Option<&Inbound>,
    path: &str,
    at: Location,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let name = |field: &str| if path.is_empty() { field.to_owned() } else { format!("{path}.{field}") };
    // Every required property is always produced.
    for node in props {
        for req in node.schema.get("required").and_then(Json::as_array).into_iter().flatten().filter_map(Json::as_str) {
            match fields.iter().find(|(n, _)| n == req) {
                None => ctx.error(
                    at,
                    format!(
                        "rule '{}' never produces '{}', which its canonical schema '{}' requires",
                        check.rule,
                        name(req),
                        check.canonical
                    ),
                ),
                Some((_, e)) if e.optional && e.default.is_none() && e.each.is_none() => ctx.error(
                    e.at,
                    format!(
                        "{}: may be left out ('optional: true' without a default), but '{}' requires it",
                        check.what(&name(req)),
                        check.canonical
                    ),
                ),
                _ => {}
            }
        }
    }
    let closed = props.iter().any(|n| n.schema.get("additionalProperties") == Some(&Json::Bool(false)));
    for (field, expr) in fields {
        let target: Vec<Node> = props.iter().filter_map(|n| child(n, field)).flat_map(|n| expand(&n)).collect();
        if target.is_empty() && closed {
            let message = format!(
                "{}: '{field}' is not a property of the canonical schema '{}'",
                check.what(&name(field)),
                check.canonical
            );
            ctx.error(expr.at, message);
            continue;
        }
        check_value(ctx, check, expr, &target, inbound, &name(field), depth);
    }
}

/// Checks one value, named `name`, against the schema nodes `target` that describe it.
fn check_value(
    ctx: &mut Ctx,
    check: &Check,
    expr: &Expr,
    target: &[Node],
    inbound: Option<&Inbound>,
    name: &str,
    depth: usize,
) {
    let Some(each) = &expr.each else { return check_one(ctx, check, expr, target, inbound, name, depth) };
    fits(ctx, check, expr, &Some([Ty::Array].into()), target, name);
    // An array `minItems` wants is only sure when the inbound array `each` reads has as many.
    let wanted = target.iter().filter_map(|n| n.schema.get("minItems").and_then(Json::as_u64)).max().unwrap_or(0);
    // An item that finds nothing is left out: then no count of inbound items is enough.
    if wanted > 0 && expr.optional && expr.default.is_none() {
        let message = format!(
            "{}: '{}' wants at least {wanted} item(s), but 'optional: true' leaves out an item that finds nothing (give a default instead)",
            check.what(name),
            check.canonical
        );
        ctx.error(expr.at, message);
    }
    // Only every item of an array counts items: a filter, a slice or a descent may select fewer.
    if let (true, Some(_), None) = (wanted > 0, inbound, each.as_str().strip_suffix("[*]")) {
        let message = format!(
            "{}: '{}' wants at least {wanted} item(s), but each '{}' may select fewer (a count is proved only by '…[*]' over an array whose schema gives minItems)",
            check.what(name),
            check.canonical,
            each.as_str(),
        );
        ctx.error(expr.at, message);
    }
    // And only an array that is always there: a missing one gives no items at all. Each event
    // type the filter lets through is a case of its own: a `then` proven for each holds for all.
    if let (true, Some(inbound), Some(array)) = (wanted > 0, inbound, each.as_str().strip_suffix("[*]")) {
        let (from, array, described) = inbound.from(array);
        let filter = filter_for(each.as_str(), check.when);
        if let Some(why) = cases(filter).iter().find_map(|case| short_of(from, array, case, wanted, described)) {
            let message =
                format!("{}: '{}' wants at least {wanted} item(s), but {why}", check.what(name), check.canonical);
            ctx.error(expr.at, message);
        }
    }
    let items: Vec<Node> = target
        .iter()
        .filter_map(|n| n.schema.get("items").filter(|i| i.is_object()).map(|i| n.part(i)))
        .flat_map(|n| expand(&n))
        .collect();
    let selected = inbound.and_then(|i| i.select(ctx, each.as_str(), expr.at, &format!("{}, each", check.what(name))));
    check_one(ctx, check, expr, &items, selected.as_ref(), &format!("{name}[]"), depth);
}

/// Checks one value (or each element an `each` makes) against `target`.
fn check_one(
    ctx: &mut Ctx,
    check: &Check,
    expr: &Expr,
    target: &[Node],
    inbound: Option<&Inbound>,
    name: &str,
    depth: usize,
) {
    let produced = match &expr.source {
        Source::Object(fields) => {
            check_fields(ctx, check, fields, target, inbound, name, expr.at, depth + 1);
            Some([Ty::Object].into())
        }
        _ => produced_types(ctx, expr, inbound, check.when, &check.what(name)),
    };
    fits(ctx, check, expr, &produced, target, name);
    if let Source::Const(v) = &expr.source
        && expr.steps.is_empty()
    {
        for n in target {
            if let Some(c) = n.schema.get("const")
                && c != v
            {
                let message = format!(
                    "{}: the constant {v} is not the {c} that '{}' requires",
                    check.what(name),
                    check.canonical
                );
                ctx.error(expr.at, message);
            }
        }
    }
}

/// Reports the `produced` types that `target` does not allow.
fn fits(ctx: &mut Ctx, check: &Check, expr: &Expr, produced: &Types, target: &[Node], name: &str) {
    let allowed = intersect_all(target.iter().map(|n| types_of(&n.schema)));
    let (Some(produced), Some(allowed)) = (produced, &allowed) else { return };
    let fits = |t: &Ty| allowed.contains(t) || (*t == Ty::Integer && allowed.contains(&Ty::Number));
    let bad: Vec<&str> = produced.iter().filter(|t| !fits(t)).map(|t| self::name(*t)).collect();
    if !bad.is_empty() {
        let want: Vec<&str> = allowed.iter().map(|t| self::name(*t)).collect();
        let message = format!(
            "{}: produces {} but the canonical schema '{}' wants {}",
            check.what(name),
            bad.join(" or "),
            check.canonical,
            want.join(" or ")
        );
        ctx.error(expr.at, message);
    }
}

/// The types an expression can produce (after its steps).
fn produced_types(ctx: &mut Ctx, expr: &Expr, inbound: Option<&Inbound>, when: &Filter, what: &str) -> Types {
    let mut types: Types = match &expr.source {
        Source::Const(v) => Some([ty(v)].into()),
        Source::Template(_) | Source::Header(_) => Some([Ty::String].into()),
        Source::Field(_) => None,
        Source::Object(_) => Some([Ty::Object].into()),
        Source::Paths(paths) => {
            let mut all: Types = Some(BTreeSet::new());
            for p in paths {
                let (found, described) = match inbound {
                    Some(inbound) => {
                        let (from, path, described) = inbound.from(p.as_str());
                        (resolve(from, path, filter_for(p.as_str(), when)), described)
                    }
                    None => (Resolved::Unknown, ""),
                };
                let t = found
                    .reported(ctx, expr.at, what, p.as_str(), described)
                    .and_then(|nodes| intersect_all(nodes.iter().map(|n| types_of(&n.schema))));
                // A path that finds null counts as not found.
                all = match (all, t) {
                    (Some(mut a), Some(t)) => {
                        a.extend(t.into_iter().filter(|t| *t != Ty::Null));
                        Some(a)
                    }
                    _ => None,
                };
            }
            all
        }
    };
    if let (Some(t), Some(d)) = (&mut types, &expr.default) {
        t.insert(ty(d));
    }
    for step in &expr.steps {
        types = match step {
            Step::Upper
            | Step::Lower
            | Step::ToString
            | Step::EpochToRfc3339
            | Step::EpochMsToRfc3339
            | Step::ToUtc
            | Step::HmacSha256 { .. } => Some([Ty::String].into()),
            Step::MinorUnits { .. } => Some([Ty::Integer, Ty::Number].into()),
            // The number is what the sender wrote as text, which no type pins down (an inbound
            // `pattern` may): it may be an integer, so it is given the benefit of the doubt.
            Step::ToNumber => Some([Ty::Integer].into()),
            Step::Lookup { table, default } => Some(table.values().chain(default).map(ty).collect()),
            Step::Trim | Step::Replace { .. } | Step::Join(_) => Some([Ty::String].into()),
            Step::Split(_) => Some([Ty::Array].into()),
            Step::Round(0) => Some([Ty::Integer].into()),
            // An integer times an integral factor stays an integer; what an unknown value
            // becomes is unknown too.
            Step::Multiply(by) if by.fract() == 0.0 => match &types {
                None => None,
                Some(t) if t.iter().all(|t| *t == Ty::Integer) => Some([Ty::Integer].into()),
                Some(_) => Some([Ty::Integer, Ty::Number].into()),
            },
            Step::Round(_) | Step::Multiply(_) | Step::Divide(_) => Some([Ty::Integer, Ty::Number].into()),
            Step::ParseJson => None,
        };
    }
    types
}

enum Resolved {
    Found(Vec<Node>),
    NotAllowed(String),
    /// A name the schema does not declare where a declared one is spelt nearly the same:
    /// likely a typo (a warning; objects may stay open).
    Misspelt(String, String),
    Unknown,
}

impl Resolved {
    /// The nodes found; a path that cannot exist is an error and a misspelt one a warning,
    /// saying that `what` reads `path` in `described`.
    fn reported(self, ctx: &mut Ctx, at: Location, what: &str, path: &str, described: &str) -> Option<Vec<Node>> {
        match self {
            Resolved::Found(nodes) => return Some(nodes),
            Resolved::NotAllowed(why) => ctx.error(at, format!("{what}: {path} cannot exist in {described}: {why}")),
            Resolved::Misspelt(name, near) => ctx.warning(
                at,
                format!("{what}: {path}: '{name}' is not declared in {described}; did you mean '{near}'?"),
            ),
            Resolved::Unknown => {}
        }
        None
    }
}

/// Walks a simple JSONPath (`$.a.b[0]`, `$['a']`, `[*]`) through the inbound schema, from
/// `from` (its root, or the elements a `for_each` selects).
fn resolve(from: &[Node], path: &str, when: &Filter) -> Resolved {
    let Some(segments) = super::jsonpath::segments(path) else { return Resolved::Unknown };
    let mut nodes = from.to_vec();
    for seg in segments {
        let expanded: Vec<Node> = nodes.iter().flat_map(|n| expand_when(n, when)).collect();
        let mut next = Vec::new();
        // A name that a node which surely holds does not allow cannot be there, whatever the
        // other nodes (`$ref`s, `allOf` branches) allow: all of them hold at once.
        let mut closed = false;
        for n in &expanded {
            let found = match &seg {
                Segment::Name(k) => child(n, k),
                Segment::Index(_) => n.schema.get("items").filter(|i| i.is_object()).map(|i| n.part(i)),
            };
            match found {
                Some(c) => next.push(c),
                None if matches!(seg, Segment::Name(_)) && !n.conditional && closed_to_names(&n.schema) => {
                    closed = true
                }
                None => {}
            }
        }
        match &seg {
            Segment::Name(k) if closed => {
                let near = nearest(k, expanded.iter().flat_map(declared)).map(|n| format!("; did you mean '{n}'?"));
                let why =
                    format!("'{k}' is not one of the properties the schema allows there{}", near.unwrap_or_default());
                return Resolved::NotAllowed(why);
            }
            Segment::Name(k) if next.is_empty() => {
                return match nearest(k, expanded.iter().flat_map(declared)) {
                    Some(near) => Resolved::Misspelt(k.to_string(), near.to_owned()),
                    None => Resolved::Unknown,
                };
            }
            _ if next.is_empty() => return Resolved::Unknown,
            _ => {}
        }
        nodes = next;
    }
    Resolved::Found(nodes.iter().flat_map(|n| expand_when(n, when)).collect())
}

/// Why the array at `array` may hold fewer than `wanted` items in a payload `when` lets through:
/// no `minItems` that surely holds gives as many, or it may be missing; `None` when it cannot,
/// or when the schema does not say what is there (the benefit of the doubt).
fn short_of(from: &[Node], array: &str, when: &Filter, wanted: u64, described: &str) -> Option<String> {
    let Resolved::Found(nodes) = resolve(from, array, when) else { return None };
    let min_items = |n: &Node| n.schema.get("minItems").and_then(Json::as_u64);
    let holds = nodes.iter().filter(|n| !n.conditional).filter_map(min_items).max().unwrap_or(0);
    if holds < wanted {
        return Some(format!("{array} may hold fewer in {described} (it gives no such minItems)"));
    }
    if !always_present(from, array, when) {
        return Some(format!("{array} may be missing in {described} (it is not required all the way)"));
    }
    None
}

/// The filter once per event type it lets through (each narrowed to that type), or as it is
/// when it names one type or none: what holds in every case holds.
fn cases(when: &Filter) -> Vec<Filter> {
    match &when.event_type {
        Some((at, types)) if types.len() > 1 => types
            .iter()
            .map(|t| Filter { event_type: Some((at.clone(), vec![t.clone()])), conditions: when.conditions.clone() })
            .collect(),
        _ => vec![when.clone()],
    }
}

/// Whether every payload `from` describes holds a value at the simple JSONPath `path`: each of
/// its names `required` where it is (by a node that surely holds), and no index or wildcard on
/// the way (an array may be too short or empty).
fn always_present(from: &[Node], path: &str, when: &Filter) -> bool {
    let Some(segments) = super::jsonpath::segments(path) else { return false };
    let mut nodes = from.to_vec();
    for seg in segments {
        let Segment::Name(k) = seg else { return false };
        let expanded: Vec<Node> = nodes.iter().flat_map(|n| expand_when(n, when)).collect();
        let required = |n: &Node| {
            !n.conditional
                && n.schema.get("required").and_then(Json::as_array).is_some_and(|r| r.iter().any(|v| v == k.as_str()))
        };
        if !expanded.iter().any(required) {
            return false;
        }
        nodes = expanded.iter().filter_map(|n| child(n, &k)).collect();
    }
    true
}

/// The member names an object `schema` declares in `properties`.
fn declared(n: &Node) -> impl Iterator<Item = &str> {
    n.schema.get("properties").and_then(Json::as_object).into_iter().flat_map(|p| p.keys().map(String::as_str))
}

/// The declared name spelt most nearly as `name`, if one is near enough to be what was meant:
/// the same but for case and `_`/`-` (`amountTotal`, `amount_total`), or one or two edits away
/// (one for a name of five characters or fewer, none for one of two or fewer): `amount_totl`.
/// Not three: `amount_subtotal` is not `amount_total` misspelt, nor `payment_intent.created`
/// `payment_intent.canceled`.
pub(super) fn nearest<'a>(name: &str, declared: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let plain =
        |s: &str| s.chars().filter(|c| !matches!(c, '_' | '-')).flat_map(char::to_lowercase).collect::<String>();
    let within = match name.chars().count() {
        0..=2 => 0,
        3..=5 => 1,
        _ => 2,
    };
    declared
        .filter(|d| *d != name)
        .map(|d| (if plain(d) == plain(name) { 0 } else { strsim::damerau_levenshtein(name, d) }, d))
        .filter(|(distance, _)| *distance <= within)
        .min()
        .map(|(_, d)| d)
}

/// Whether an object `schema` allows no member but those it lists in `properties`:
/// `additionalProperties: false` without `patternProperties` (whose names it cannot list).
fn closed_to_names(schema: &Json) -> bool {
    schema.get("additionalProperties") == Some(&Json::Bool(false)) && schema.get("patternProperties").is_none()
}

/// The sub-schema for property `key`: `properties.key`, else a schema-valued `additionalProperties`.
fn child(n: &Node, key: &str) -> Option<Node> {
    let s = &n.schema;
    let sub = s
        .get("properties")
        .and_then(|p| p.get(key))
        .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))?;
    Some(n.part(sub))
}

/// A node with its `$ref`s and `allOf` branches, all of which hold.
fn expand(n: &Node) -> Vec<Node> {
    expand_when(n, &Filter::default())
}

/// Like `expand`, also taking the `then` of every `if` the rule's filter does not rule out.
fn expand_when(n: &Node, when: &Filter) -> Vec<Node> {
    let mut out = Vec::new();
    expand_into(n, when, &mut out, 0);
    out
}

fn expand_into(n: &Node, when: &Filter, out: &mut Vec<Node>, depth: usize) {
    if depth > 16 {
        return;
    }
    if let Some(r) = n.schema.get("$ref").and_then(Json::as_str)
        && let Some(target) = follow_ref(n, r)
    {
        expand_into(&target, when, out, depth + 1);
    }
    for branch in n.schema.get("allOf").and_then(Json::as_array).into_iter().flatten() {
        let branch = n.part(branch);
        expand_into(&branch, when, out, depth + 1);
    }
    if let (Some(cond), Some(then)) = (n.schema.get("if"), n.schema.get("then"))
        && may_hold(cond, when)
    {
        // A `then` whose `if` the filter proves holds as surely as the node it is in.
        let conditional = n.conditional || !must_hold(cond, when);
        expand_into(&Node { conditional, ..n.part(then) }, when, out, depth + 1);
    }
    out.push(n.clone());
}

/// False only when the rule's filter proves the `if` cannot hold (a `const` it contradicts).
fn may_hold(cond: &Json, when: &Filter) -> bool {
    let Some(props) = cond.get("properties").and_then(Json::as_object) else { return true };
    props.iter().all(|(prop, sub)| {
        let Some(c) = sub.get("const") else { return true };
        let path = format!("$.{prop}");
        if let Some((p, types)) = &when.event_type
            && p.path().is_some_and(|p| p.as_str() == path)
        {
            return c.as_str().is_some_and(|c| types.iter().any(|t| t == c));
        }
        // The conditions are a conjunction; what `any` and `not` say is not used (may hold).
        when.conditions.iter().all(|x| match x {
            Condition::Test { at, test, .. } if at.path().is_some_and(|p| p.as_str() == path) => match test {
                Test::Equals(v) => v == c,
                Test::In(vs) => vs.contains(c),
                Test::NotIn(vs) => !vs.contains(c),
                _ => true,
            },
            _ => true,
        })
    })
}

/// True only when the rule's filter proves the `if` holds: it is only `properties` of `const`s
/// (and `required` of those), and the filter allows each property that one value alone.
fn must_hold(cond: &Json, when: &Filter) -> bool {
    let Some(cond) = cond.as_object() else { return false };
    let Some(props) = cond.get("properties").and_then(Json::as_object) else { return false };
    let only_these = cond.keys().all(|k| k == "properties" || k == "required");
    let required = cond.get("required").and_then(Json::as_array).into_iter().flatten();
    let pinned = |prop: &str, c: &Json| {
        let path = format!("$.{prop}");
        if let Some((p, types)) = &when.event_type
            && p.path().is_some_and(|p| p.as_str() == path)
        {
            return !types.is_empty() && types.iter().all(|t| c.as_str() == Some(t.as_str()));
        }
        when.conditions.iter().any(|x| match x {
            Condition::Test { at, test, .. } if at.path().is_some_and(|p| p.as_str() == path) => match test {
                Test::Equals(v) => v == c,
                Test::In(vs) => !vs.is_empty() && vs.iter().all(|v| v == c),
                _ => false,
            },
            _ => false,
        })
    };
    only_these
        && required.into_iter().all(|r| r.as_str().is_some_and(|r| props.contains_key(r)))
        && props.iter().all(|(prop, sub)| {
            let only_const = sub.as_object().is_some_and(|o| o.len() == 1 && o.contains_key("const"));
            only_const && pinned(prop, &sub["const"])
        })
}

/// The target of `$ref` `r` in node `n`: in `n`'s own document (`#/$defs/…`), or in another
/// file, relative to `n`'s.
fn follow_ref(n: &Node, r: &str) -> Option<Node> {
    let (file_part, pointer) = r.split_once('#').unwrap_or((r, ""));
    let doc = if file_part.is_empty() {
        n.doc.clone()
    } else {
        let file = n.doc.file.parent().unwrap_or(Path::new(".")).join(file_part);
        let root: Json = serde_json::from_slice(&std::fs::read(&file).ok()?).ok()?;
        Arc::new(Doc { file, root })
    };
    let schema = if pointer.is_empty() { doc.root.clone() } else { doc.root.pointer(pointer)?.clone() };
    Some(Node { schema, doc, conditional: n.conditional })
}

/// What one schema node says about the type; `None` when it says nothing.
fn types_of(s: &Json) -> Types {
    if let Some(c) = s.get("const") {
        return Some([ty(c)].into());
    }
    if let Some(e) = s.get("enum").and_then(Json::as_array) {
        return Some(e.iter().map(ty).collect());
    }
    let named = |t: &str| match t {
        "null" => vec![Ty::Null],
        "boolean" => vec![Ty::Bool],
        "integer" => vec![Ty::Integer],
        "number" => vec![Ty::Integer, Ty::Number],
        "string" => vec![Ty::String],
        "array" => vec![Ty::Array],
        "object" => vec![Ty::Object],
        _ => vec![],
    };
    match s.get("type")? {
        Json::String(t) => Some(named(t).into_iter().collect()),
        Json::Array(ts) => Some(ts.iter().filter_map(Json::as_str).flat_map(named).collect()),
        _ => None,
    }
}

/// Every known constraint holds at once.
fn intersect_all(all: impl Iterator<Item = Types>) -> Types {
    all.flatten().reduce(|a, b| a.intersection(&b).copied().collect())
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn a_near_name_is_the_one_meant_and_a_far_one_none() {
        let declared = ["amount_total", "amount_subtotal", "currency", "id"];
        assert_eq!(nearest("amount_totl", declared.into_iter()), Some("amount_total"));
        assert_eq!(nearest("amountTotal", declared.into_iter()), Some("amount_total"));
        assert_eq!(nearest("curency", declared.into_iter()), Some("currency"));
        assert_eq!(nearest("ip", declared.into_iter()), None);
        assert_eq!(nearest("ID", declared.into_iter()), Some("id"));
        assert_eq!(nearest("curr", ["cur"].into_iter()), Some("cur"));
        assert_eq!(nearest("customer", declared.into_iter()), None);
        assert_eq!(nearest("amount_subtotl", ["amount_total"].into_iter()), None);
        let types = ["payment_intent.canceled", "payment_intent.succeeded"];
        assert_eq!(nearest("payment_intent.created", types.into_iter()), None);
        assert_eq!(nearest("payment_intent.succeded", types.into_iter()), Some("payment_intent.succeeded"));
        assert_eq!(nearest("currency", declared.into_iter()), None);
    }
}
