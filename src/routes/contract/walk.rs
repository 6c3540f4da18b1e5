//! What a schema says about a path: walking a simple JSONPath through a schema's nodes (its
//! `$ref`s, each target once; its `allOf` branches; the `then`s, `else`s and `anyOf`/`oneOf`
//! branches a rule's filter lets hold, and which of them surely do), the types a node allows,
//! the `minItems` and `required` that surely hold, and the names it declares. Several schemas
//! may stand as alternatives (the events on a topic several kinds share). The values it allows
//! are `values.rs`'s.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value as Json;
use serde_saphyr::Location;

use crate::routes::did_you_mean::nearest;
use crate::routes::expr::{Condition, Filter, Test};
use crate::routes::jsonpath::{self, Segment};
use crate::routes::{Ctx, Schema, schema_refs};

/// A JSON type as JSON Schema names it (`Integer` is also a `Number`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Ty {
    Null,
    Bool,
    Integer,
    Number,
    String,
    Array,
    Object,
}

/// The types a value may have; `None` when nothing is known.
pub(super) type Types = Option<BTreeSet<Ty>>;

pub(super) fn ty(v: &Json) -> Ty {
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

pub(super) fn name(t: Ty) -> &'static str {
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
pub(super) struct Doc {
    file: PathBuf,
    root: Json,
}

/// A schema node and the document it lives in.
#[derive(Clone, Debug)]
pub(super) struct Node {
    pub(super) schema: Json,
    doc: Arc<Doc>,
    /// Holds only if an `if` does (a `then` the rule's filter does not rule out); every
    /// other node found for a value holds at once with the others of its alternative.
    conditional: bool,
    /// Which of several schemas, any one of which describes the document, this node is from
    /// (0 when there is one): what one of them says binds only documents it describes.
    pub(super) alt: usize,
}

impl Node {
    /// The root of `schema`'s document.
    pub(super) fn root(schema: &Schema) -> Node {
        let doc = Doc { file: schema.file.clone(), root: schema.document.clone() };
        Node { schema: schema.document.clone(), doc: Arc::new(doc), conditional: false, alt: 0 }
    }

    /// The roots of `schemas`, any one of which describes the document (the events on a
    /// topic several kinds of event share).
    pub(super) fn any_of(schemas: &[Arc<Schema>]) -> Vec<Node> {
        schemas.iter().enumerate().map(|(alt, s)| Node { alt, ..Node::root(s) }).collect()
    }

    /// Whether the node holds for every document its alternative describes (not only if an `if` does).
    pub(super) fn surely(&self) -> bool {
        !self.conditional
    }

    /// `schema`, a part of the same document as `self`, holding as surely as `self`.
    pub(super) fn part(&self, schema: &Json) -> Node {
        Node { schema: schema.clone(), doc: self.doc.clone(), ..self.clone() }
    }
}

pub(super) enum Resolved {
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
    pub(super) fn reported(
        self,
        ctx: &mut Ctx,
        at: Location,
        what: &str,
        path: &str,
        described: &str,
    ) -> Option<Vec<Node>> {
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

/// The filter as it bears on the `if`s and `anyOf`s of nodes `depth` names below where a path
/// starts: at its start (the payload, or what a `for_each` selects) the rule's filter, which
/// reads that document's own members (`$.type`); below, nothing (a nested `type` is another).
fn at(depth: usize, when: &Filter) -> &Filter {
    if depth == 0 { when } else { no_filter() }
}

/// The filter that lets everything through: what holds of every document.
pub(super) fn no_filter() -> &'static Filter {
    static NONE: std::sync::LazyLock<Filter> = std::sync::LazyLock::new(Filter::default);
    &NONE
}

/// Walks a simple JSONPath (`$.a.b[0]`, `$['a']`, `[*]`) through the inbound schema, from
/// `from` (its root, or the elements a `for_each` selects).
pub(super) fn resolve(from: &[Node], path: &str, when: &Filter) -> Resolved {
    let Some(segments) = jsonpath::segments(path) else { return Resolved::Unknown };
    let mut nodes = from.to_vec();
    // Whether one of several alternative schemas says nothing of what the path finds: then
    // what the others say is not all there is (the benefit of the doubt).
    let mut open = false;
    let at_root = segments.is_empty();
    for (depth, seg) in segments.into_iter().enumerate() {
        let expanded = expand_all(&nodes, at(depth, when));
        let mut next = Vec::new();
        // A name that a node which surely holds does not allow cannot be there, whatever the
        // other nodes (`$ref`s, `allOf` branches) allow: all of them hold at once. With several
        // alternative schemas, it cannot be there only when none of them allows it.
        let mut closed = BTreeSet::new();
        let refuses = |n: &Node| match &seg {
            Segment::Name(k) => closed_to(&n.schema, k) || evaluated_names(n).is_some_and(|names| !names.contains(k)),
            Segment::Index(_) => false,
        };
        for n in &expanded {
            let found = match &seg {
                Segment::Name(k) => child(n, k),
                Segment::Index(_) => n.schema.get("items").filter(|i| i.is_object()).map(|i| n.part(i)),
            };
            match found {
                Some(c) => next.push(c),
                None if !n.conditional && refuses(n) => {
                    closed.insert(n.alt);
                }
                None => {}
            }
        }
        next.retain(|c| !closed.contains(&c.alt));
        let finding: BTreeSet<usize> = next.iter().map(|c| c.alt).collect();
        open |= expanded.iter().any(|n| !closed.contains(&n.alt) && !finding.contains(&n.alt));
        let all_closed = !expanded.is_empty() && expanded.iter().all(|n| closed.contains(&n.alt));
        match &seg {
            Segment::Name(k) if all_closed && !open => {
                let near = nearest(k, expanded.iter().flat_map(declared)).map(|n| format!("; did you mean '{n}'?"));
                let near = near.unwrap_or_default();
                let why = if expanded.iter().any(|n| n.alt > 0) {
                    format!("none of the schemas allows a property '{k}' there{near}")
                } else {
                    format!("'{k}' is not one of the properties the schema allows there{near}")
                };
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
    if open {
        return Resolved::Unknown;
    }
    let when = if at_root { when } else { at(1, when) };
    Resolved::Found(expand_all(&nodes, when))
}

/// The types the value at `path` may have in a document `when` lets through: in each case of
/// the filter (one per event type it takes, whose `then`s then surely hold), what `types_at`
/// finds; `None` when unknown in one.
pub(super) fn types_in(from: &[Node], path: &str, when: &Filter) -> Types {
    let mut all = BTreeSet::new();
    for case in cases(when) {
        let Resolved::Found(nodes) = resolve(from, path, &case) else { return None };
        all.extend(types_at(&nodes)?);
    }
    Some(all)
}

/// Whether what `from` describes declares the members `names`, one inside the other (through
/// `$ref`s, `allOf`s, and any `then` or `anyOf`/`oneOf` branch): `Err` with the place of the
/// first that is missing and the names declared there; `None` where the schema says nothing
/// of the members there (no `properties`, not closed).
pub(super) fn declares(from: &[Node], names: &[&str]) -> Option<Result<(), (usize, Vec<String>)>> {
    let mut nodes = from.to_vec();
    for (i, name) in names.iter().enumerate() {
        let expanded = expand_all(&nodes, no_filter());
        let next: Vec<Node> = expanded.iter().filter_map(|n| child(n, name)).collect();
        if next.is_empty() {
            let says = expanded
                .iter()
                .any(|n| declared(n).next().is_some() || closed_to(&n.schema, name) || evaluated_names(n).is_some());
            return says.then(|| Err((i, expanded.iter().flat_map(declared).map(str::to_owned).collect())));
        }
        nodes = next;
    }
    Some(Ok(()))
}

/// Why the array at `array` may hold fewer than `wanted` items in a payload `when` lets through:
/// no `minItems` that surely holds gives as many, or it may be missing; `None` when it cannot,
/// or when the schema does not say what is there (the benefit of the doubt).
pub(super) fn short_of(from: &[Node], array: &str, when: &Filter, wanted: u64, described: &str) -> Option<String> {
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
pub(super) fn cases(when: &Filter) -> Vec<Filter> {
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
pub(super) fn always_present(from: &[Node], path: &str, when: &Filter) -> bool {
    let Some(segments) = jsonpath::segments(path) else { return false };
    let mut nodes = from.to_vec();
    for (depth, seg) in segments.into_iter().enumerate() {
        let Segment::Name(k) = seg else { return false };
        let expanded = expand_all(&nodes, at(depth, when));
        if !expanded.iter().any(|n| n.surely() && required(&n.schema, &k)) {
            return false;
        }
        nodes = expanded.iter().filter_map(|n| child(n, &k)).collect();
    }
    true
}

/// The member names an object `schema` declares in `properties`.
pub(super) fn declared(n: &Node) -> impl Iterator<Item = &str> {
    n.schema.get("properties").and_then(Json::as_object).into_iter().flat_map(|p| p.keys().map(String::as_str))
}

/// The member names an object schema node with `unevaluatedProperties: false` lets through:
/// those declared in the `properties` of the node or of any subschema in place (its `$ref`s,
/// `allOf`, `anyOf`, `oneOf`, `if`, `then`, `else`, `not`, `dependentSchemas`), whichever of them
/// holds. `None` when the node has no such keyword, or when some part may evaluate names it does
/// not list (`patternProperties`, `additionalProperties`, an `unevaluatedProperties` schema, a
/// `$ref` that cannot be followed or a dynamic one).
pub(super) fn evaluated_names(n: &Node) -> Option<BTreeSet<String>> {
    if n.schema.get("unevaluatedProperties") != Some(&Json::Bool(false)) {
        return None;
    }
    let mut names = BTreeSet::new();
    names_into(n, &mut names, &mut HashSet::new(), 0).then_some(names)
}

/// Adds the names `n` and its subschemas in place declare; false when they may take others.
fn names_into(n: &Node, names: &mut BTreeSet<String>, seen: &mut Seen, depth: usize) -> bool {
    let s = &n.schema;
    let opens = ["patternProperties", "additionalProperties", "$dynamicRef", "$recursiveRef"];
    if depth > 16
        || opens.iter().any(|k| s.get(k).is_some())
        || (depth > 0 && s.get("unevaluatedProperties").is_some_and(|u| u != &Json::Bool(false)))
    {
        return false;
    }
    names.extend(declared(n).map(str::to_owned));
    if let Some(r) = s.get("$ref").and_then(Json::as_str)
        && seen.insert(ref_key(n, r))
    {
        match follow_ref(n, r) {
            Some(target) if names_into(&target, names, seen, depth + 1) => {}
            _ => return false,
        }
    }
    let lists = ["allOf", "anyOf", "oneOf"].iter().filter_map(|k| s.get(k)?.as_array()).flatten();
    let single = ["if", "then", "else", "not"].iter().filter_map(|k| s.get(k));
    let dependent = s.get("dependentSchemas").and_then(Json::as_object).into_iter().flat_map(|d| d.values());
    lists.chain(single).chain(dependent).all(|sub| names_into(&n.part(sub), names, seen, depth + 1))
}

/// Whether an object `schema` refuses a member named `key`: `additionalProperties: false`, and
/// neither its `properties` nor its `patternProperties` take the name (a pattern this check
/// cannot read may take any).
pub(super) fn closed_to(schema: &Json, key: &str) -> bool {
    schema.get("additionalProperties") == Some(&Json::Bool(false))
        && schema.get("properties").and_then(|p| p.get(key)).is_none()
        && patterns_taking(schema, key).is_some_and(|taking| taking.is_empty())
}

/// The schemas of the `patternProperties` whose patterns match `key` (none when it has none);
/// `None` when a pattern does not compile here (an ECMA-262 feature Rust's `regex` lacks, such
/// as a look-around): then any name may match.
fn patterns_taking<'s>(schema: &'s Json, key: &str) -> Option<Vec<&'s Json>> {
    let Some(patterns) = schema.get("patternProperties").and_then(Json::as_object) else { return Some(Vec::new()) };
    let mut taking = Vec::new();
    for (pattern, sub) in patterns {
        if regex::Regex::new(pattern).ok()?.is_match(key) {
            taking.push(sub);
        }
    }
    Some(taking)
}

/// The sub-schema for property `key`: `properties.key`, else that of the first of the
/// `patternProperties` that match it, else a schema-valued `additionalProperties` (which holds
/// only for names neither takes); `None` when nothing says, or a pattern cannot be read.
pub(super) fn child(n: &Node, key: &str) -> Option<Node> {
    let s = &n.schema;
    if let Some(sub) = s.get("properties").and_then(|p| p.get(key)) {
        return Some(n.part(sub));
    }
    let sub = match patterns_taking(s, key)?.first() {
        Some(sub) => sub,
        None => s.get("additionalProperties").filter(|a| a.is_object())?,
    };
    Some(n.part(sub))
}

/// A node with what holds with it: its `$ref`s and `allOf` branches (surely), the `then` of
/// every `if` the rule's filter does not rule out, the `else` of every `if` it does not prove,
/// and the `anyOf`/`oneOf` branches it does not rule out (each surely where it proves it).
pub(super) fn expand_when(n: &Node, when: &Filter) -> Vec<Node> {
    expand_all(std::slice::from_ref(n), when)
}

/// `expand_when` of each of `nodes`, each `$ref`'s target taken once (a schema whose `$ref`s
/// lead to one place many ways is read once, not once a way).
pub(super) fn expand_all(nodes: &[Node], when: &Filter) -> Vec<Node> {
    let (mut out, mut seen) = (Vec::new(), HashSet::new());
    for n in nodes {
        expand_into(n, when, &mut out, &mut seen, 0);
    }
    out
}

/// Where a `$ref` leads (file and pointer), and how the node following it holds: the same
/// target reached again adds nothing.
pub(super) type Seen = HashSet<(PathBuf, String, bool, usize)>;

fn expand_into(n: &Node, when: &Filter, out: &mut Vec<Node>, seen: &mut Seen, depth: usize) {
    if depth > 16 {
        return;
    }
    if let Some(r) = n.schema.get("$ref").and_then(Json::as_str)
        && seen.insert(ref_key(n, r))
        && let Some(target) = follow_ref(n, r)
    {
        expand_into(&target, when, out, seen, depth + 1);
    }
    for branch in n.schema.get("allOf").and_then(Json::as_array).into_iter().flatten() {
        let branch = n.part(branch);
        expand_into(&branch, when, out, seen, depth + 1);
    }
    if let Some(cond) = n.schema.get("if") {
        let (may, must) = (may_hold(cond, when), must_hold(cond, when));
        // A `then` holds where the `if` may, as surely as the node it is in where the filter
        // proves the `if`; an `else` where the `if` may fail, as surely where the filter
        // proves it fails.
        if let Some(then) = n.schema.get("then")
            && may
        {
            let conditional = n.conditional || !must;
            expand_into(&Node { conditional, ..n.part(then) }, when, out, seen, depth + 1);
        }
        if let Some(otherwise) = n.schema.get("else")
            && !must
        {
            let conditional = n.conditional || may;
            expand_into(&Node { conditional, ..n.part(otherwise) }, when, out, seen, depth + 1);
        }
    }
    // The document matches one of an `anyOf`'s or a `oneOf`'s branches: each may hold, but
    // none surely does, unless the filter rules out all the others (a `const` it contradicts).
    for key in ["anyOf", "oneOf"] {
        let branches = n.schema.get(key).and_then(Json::as_array).into_iter().flatten();
        let open: Vec<&Json> = branches.filter(|b| may_hold(b, when)).collect();
        let conditional = n.conditional || open.len() != 1;
        for branch in open {
            expand_into(&Node { conditional, ..n.part(branch) }, when, out, seen, depth + 1);
        }
    }
    out.push(n.clone());
}

/// False only when the rule's filter proves the `if` cannot hold (a `const` it contradicts).
pub(super) fn may_hold(cond: &Json, when: &Filter) -> bool {
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
                // The value may be missing, and then a `const` the schema does not require holds.
                Test::NotIn(vs) => !vs.contains(c) || !required(cond, prop),
                _ => true,
            },
            _ => true,
        })
    })
}

/// Whether `schema` requires the member `name`.
fn required(schema: &Json, name: &str) -> bool {
    schema.get("required").and_then(Json::as_array).is_some_and(|r| r.iter().any(|v| v == name))
}

/// True only when the rule's filter proves the `if` holds: it is only `properties` of `const`s
/// (and `required` of those), and the filter allows each property that one value alone.
pub(super) fn must_hold(cond: &Json, when: &Filter) -> bool {
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
pub(super) fn follow_ref(n: &Node, r: &str) -> Option<Node> {
    let (file_part, pointer) = r.split_once('#').unwrap_or((r, ""));
    let doc = if file_part.is_empty() {
        n.doc.clone()
    } else {
        let file = ref_file(n, file_part)?;
        let root = schema_refs::read(&file).ok()?;
        Arc::new(Doc { file, root })
    };
    let schema = match pointer {
        "" => doc.root.clone(),
        p if p.starts_with('/') => doc.root.pointer(p)?.clone(),
        anchor => anchored(&doc.root, anchor, 0)?.clone(),
    };
    Some(Node { schema, doc, ..n.clone() })
}

/// The subschema of `schema` that declares plain-name fragment `name`: `$anchor: name` (draft
/// 2019-09 on), or draft 7's `$id: "#name"`; `None` past a depth no real schema reaches.
fn anchored<'a>(schema: &'a Json, name: &str, depth: usize) -> Option<&'a Json> {
    if depth > 32 {
        return None;
    }
    match schema {
        Json::Object(m) => {
            let own_id = m.get("$id").and_then(Json::as_str).and_then(|id| id.strip_prefix('#'));
            if m.get("$anchor").and_then(Json::as_str) == Some(name) || own_id == Some(name) {
                return Some(schema);
            }
            // Instances (`const`, `enum`, …) are not schemas: an `$anchor` in one declares nothing.
            let schemas = m.iter().filter(|(k, _)| !matches!(k.as_str(), "const" | "enum" | "examples" | "default"));
            schemas.into_iter().find_map(|(_, v)| anchored(v, name, depth + 1))
        }
        Json::Array(items) => items.iter().find_map(|v| anchored(v, name, depth + 1)),
        _ => None,
    }
}

/// The file a `$ref`'s file part names, relative to `n`'s or under its `$id`
/// ([`schema_refs::ref_file`]); `None`: not a file (the `$ref` is left unfollowed).
fn ref_file(n: &Node, file_part: &str) -> Option<PathBuf> {
    schema_refs::ref_file(file_part, &n.doc.root, &n.doc.file)
}

/// Where `$ref` `r` of `n` leads (its file and pointer), with how the node following it holds.
pub(super) fn ref_key(n: &Node, r: &str) -> (PathBuf, String, bool, usize) {
    let (file_part, pointer) = r.split_once('#').unwrap_or((r, ""));
    let file = match file_part {
        "" => n.doc.file.clone(),
        part => ref_file(n, part).unwrap_or_else(|| PathBuf::from(part)),
    };
    (file, pointer.to_owned(), n.conditional, n.alt)
}

/// What one schema node says about the type; `None` when it says nothing.
pub(super) fn types_of(s: &Json) -> Types {
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
pub(super) fn intersect_all(all: impl Iterator<Item = Types>) -> Types {
    all.flatten().reduce(|a, b| a.intersection(&b).copied().collect())
}

/// The types a value described by `nodes` may have: what all the nodes of one alternative
/// that surely hold allow, in any alternative (`None` when one of them says nothing). A node
/// that holds only if an `if` or an `anyOf` branch does can only narrow that, in some documents.
fn types_at(nodes: &[Node]) -> Types {
    let alts: BTreeSet<usize> = nodes.iter().map(|n| n.alt).collect();
    let mut all = BTreeSet::new();
    for alt in alts {
        let surely = nodes.iter().filter(|n| n.alt == alt && n.surely());
        all.extend(intersect_all(surely.map(|n| types_of(&n.schema)))?);
    }
    Some(all)
}
