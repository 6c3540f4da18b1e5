//! The static contract check: from the inbound schema and a rule's mapping, prove that every
//! event the rule can publish satisfies its canonical schema — required properties are
//! always produced, JSONPaths point where the inbound schema allows, and produced types fit
//! the canonical types, into nested objects (`object`) and arrays (`each`) too. Anything the
//! schemas do not pin down is given the benefit of the doubt. What a schema says about one
//! path is `walk`'s; what a rule's `when` reads and tests, `conditions`'.

mod conditions;
mod values;
mod walk;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value as Json;
use serde_saphyr::Location;

use super::did_you_mean::nearest;
use super::expr::{Condition, Expr, Filter, Source, Step};
use super::template::Part;
use super::{Ctx, Rule, Schema};
use conditions::check_conditions;
pub(super) use conditions::check_event_types;
use values::{same, values_allowed};
use walk::{
    Node, Ty, Types, cases, child, closed_to, evaluated_names, expand_all, expand_when, intersect_all, no_filter,
    resolve, short_of, ty, types_in, types_of,
};

/// What a rule reads, as the inbound schema describes it: the payload, or each value a
/// `for_each` selects (the schemas of its elements, found by walking the path).
struct Inbound {
    nodes: Vec<Node>,
    /// Where a path is looked for, for messages: "payloads valid for 'x.json'".
    described: String,
    /// The payload's nodes, and their description: where a `$$…` path is looked for.
    root: Vec<Node>,
    root_described: String,
    /// Whether the rule's filter reads what `nodes` describe (the payload, or what a `for_each`
    /// selects; not what a value's `each` selects), and whether it reads the payload.
    filtered: bool,
    root_filtered: bool,
}

impl Inbound {
    /// The payload of `schema`, or what `for_each` selects in it; `None` when the schema does not
    /// say what that is (given the benefit of the doubt), with an error when it cannot exist.
    fn of(ctx: &mut Ctx, rule: &Rule, schema: &Schema) -> Option<Inbound> {
        let payload = Inbound::whole(schema, format!("payloads valid for '{}'", schema.name));
        match &rule.for_each {
            Some((each, at)) => {
                let selected = payload.select(ctx, each.as_str(), *at, &format!("rule '{}', for_each", rule.name))?;
                Some(Inbound { filtered: true, root_filtered: false, ..selected })
            }
            None => Some(payload),
        }
    }

    /// Every document `schema` describes (`described`, for messages).
    fn whole(schema: &Schema, described: String) -> Inbound {
        Inbound::of_roots(vec![Node::root(schema)], described)
    }

    /// Every event any of `schemas` describes: "events valid for 'a.json' or 'b.json'".
    fn any_of(schemas: &[Arc<Schema>]) -> Inbound {
        let names: Vec<String> = schemas.iter().map(|s| format!("'{}'", s.name)).collect();
        Inbound::of_roots(Node::any_of(schemas), format!("events valid for {}", names.join(" or ")))
    }

    fn of_roots(root: Vec<Node>, described: String) -> Inbound {
        let (nodes, root_described) = (root.clone(), described.clone());
        Inbound { nodes, described, root, root_described, filtered: true, root_filtered: true }
    }

    /// The values the JSONPath `each` selects in what `self` describes (a `for_each`, or a value's
    /// `each`); `None` when unknown, with an error naming `what` when they cannot exist.
    fn select(&self, ctx: &mut Ctx, each: &str, at: Location, what: &str) -> Option<Inbound> {
        let (from, path, described) = self.from(each);
        let nodes = resolve(from, path, no_filter()).reported(ctx, at, what, path, described)?;
        Some(Inbound {
            nodes,
            described: format!("the values {path} selects in {described}"),
            root: self.root.clone(),
            root_described: self.root_described.clone(),
            filtered: false,
            root_filtered: self.root_filtered,
        })
    }

    /// The rule's filter as it bears on where `path` starts: none where it reads other values.
    fn filter<'w>(&self, path: &str, when: &'w Filter) -> &'w Filter {
        let filtered = if super::jsonpath::root_relative(path).is_some() { self.root_filtered } else { self.filtered };
        if filtered { when } else { no_filter() }
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
    // The canonical schema's `then`s bind the rule as surely as its constants prove their `if`s.
    let props = expand_when(&root, &constants(&rule.emit.value));
    check_fields(ctx, &check, &rule.emit.value, &props, inbound.as_ref(), "", at_rule, 0);
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
    // The answer reads the webhook, also under a `for_each` (whose filter reads the values it
    // selects, so says nothing of the payload).
    if let (Some(answer), Some(schema)) = (&rule.answer, schema) {
        let payload = Inbound::whole(schema, format!("payloads valid for '{}'", schema.name));
        let when = if rule.for_each.is_some() { no_filter() } else { &rule.when };
        check_answer(ctx, answer, &payload, when, &format!("rule '{}', answer", rule.name));
    }
}

/// What the constants among an event's values (`event_type: { const: refund }`) say of every
/// event a rule produces, as a filter on it: what a canonical `if` is proved (or ruled out) by.
fn constants(fields: &[(String, Expr)]) -> Filter {
    let conditions = fields
        .iter()
        .filter_map(|(name, expr)| match &expr.source {
            Source::Const(v) if expr.steps.is_empty() && expr.each.is_none() => {
                let at = super::jsonpath::Path::parse(&format!("$.{name}")).ok()?;
                let test = super::expr::Test::Equals(v.clone());
                Some(Condition::Test { at: super::expr::Locator::Path(at), test, place: expr.at })
            }
            _ => None,
        })
        .collect();
    Filter { event_type: None, conditions }
}

/// Checks where a source reads its event type or id (`what` names it) against its inbound
/// schema: a path that cannot exist there is an error where rules name event types (`needed`:
/// an event type never found takes every webhook past them), else a warning (it would only
/// ever be missing from logs and answers); a misspelt one a warning. The event id is read in
/// the payload; the event type where each rule's filter reads (`rules`), so also in what a
/// `for_each` selects (Adyen's items): it is refused only where it can exist in none of them.
pub(super) fn check_source_path(
    ctx: &mut Ctx,
    what: &str,
    path: &str,
    at: Location,
    schema: &Schema,
    rules: &[Rule],
    needed: bool,
) {
    let payload = Inbound::whole(schema, format!("payloads valid for '{}'", schema.name));
    let mut read_in = vec![(payload.nodes.clone(), payload.described.clone())];
    for (each, _) in rules.iter().filter_map(|r| r.for_each.as_ref()) {
        match resolve(&payload.nodes, each.as_str(), no_filter()) {
            walk::Resolved::Found(nodes) => {
                read_in.push((nodes, format!("the values {} selects in {}", each.as_str(), payload.described)));
            }
            // What the `for_each` selects is unknown (its own error, if any, is the rule's).
            _ => return,
        }
    }
    let mut found = read_in.iter().map(|(nodes, _)| resolve(nodes, path, no_filter()));
    let Some(first) = found.next() else { return };
    if found.any(|r| !matches!(r, walk::Resolved::NotAllowed(_))) {
        return;
    }
    let described = &read_in[0].1;
    match first {
        walk::Resolved::NotAllowed(why) if !needed => {
            ctx.warning(at, format!("{what}: {path} cannot exist in {described}: {why}"));
        }
        resolved => {
            resolved.reported(ctx, at, what, path, described);
        }
    }
}

/// Checks what a dispatch rule reads (its `when`, and its `body`, `form` or `body_value`) against the
/// schemas of the events it takes (any one of which describes an event): a path that cannot
/// exist in any is an error (the call would fail, or the rule never hold, for every event), a
/// misspelt one a warning.
pub(super) fn check_dispatch_rule(ctx: &mut Ctx, rule: &super::dispatch::DispatchRule, schemas: &[Arc<Schema>]) {
    let inbound = Inbound::any_of(schemas);
    let what = format!("dispatch rule '{}'", rule.name);
    check_conditions(ctx, &rule.when.conditions, &inbound, &rule.when, &format!("{what}, when"));
    let label = if rule.form { "form" } else { "body" };
    for (name, expr) in &rule.body {
        check_reads(ctx, expr, &inbound, &rule.when, &format!("{what}, {label}.{name}"));
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
    check_answer(ctx, &reply.answer, &inbound, &reply.when, &what);
}

/// Checks what an answer (a reply's, or a rule's `answer:`) reads, in the payloads `when` lets through.
fn check_answer(ctx: &mut Ctx, answer: &super::reply::Answer, inbound: &Inbound, when: &Filter, what: &str) {
    match &answer.body {
        super::reply::AnswerBody::Json(fields) => {
            for (name, expr) in fields {
                check_reads(ctx, expr, inbound, when, &format!("{what}, body.{name}"));
            }
        }
        super::reply::AnswerBody::Text(expr, _) => check_reads(ctx, expr, inbound, when, &format!("{what}, text")),
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

/// Whether the events `schemas` describe (any one of them) declare the dispatch template
/// variable `var`: a property of that name, or a path of `.`-separated names (`customer.id`).
/// `Err` when they do not, with the declared name a misspelt one was meant as; `Ok` too when
/// the schemas say nothing of it (the benefit of the doubt).
pub(super) fn declares_variable(schemas: &[Arc<Schema>], var: &str) -> Result<(), Option<String>> {
    let roots = Node::any_of(schemas);
    let Some(Err((_, top))) = walk::declares(&roots, &[var]) else { return Ok(()) };
    let nested: Vec<&str> = var.split('.').collect();
    let Some(Err((at, there))) = walk::declares(&roots, &nested) else { return Ok(()) };
    // The name meant where the path stops: `customer.idd` → `customer.id`.
    let prefix: String = nested[..at].iter().map(|n| format!("{n}.")).collect();
    let near = nearest(nested[at], there.iter().map(String::as_str)).map(|n| format!("{prefix}{n}"));
    Err(near.or_else(|| nearest(var, top.iter().map(String::as_str)).map(str::to_owned)))
}

/// Why a dispatch rule's `when.event_type`, which reads the event's `member` (at `path`: the
/// dispatcher's `event_type`, by default `$.event_type`), can hold for no event valid for
/// `schemas` (any one of them): the member cannot be there, or is never a string. `None` when it
/// may hold. Where a member the schemas declare holds one of `types` (a `const` or `enum`), the
/// message names it as where the dispatcher should read the type.
pub(super) fn event_type_never_there(
    schemas: &[Arc<Schema>],
    path: &str,
    member: &str,
    types: &[String],
) -> Option<String> {
    let inbound = Inbound::any_of(schemas);
    let described = &inbound.described;
    let why = match resolve(&inbound.nodes, path, no_filter()) {
        walk::Resolved::NotAllowed(why) => format!("{path} cannot exist in {described}: {why}"),
        walk::Resolved::Found(_) => {
            let found = types_in(&inbound.nodes, path, no_filter()).filter(|ts| !ts.is_empty())?;
            if found.contains(&Ty::String) {
                return None;
            }
            let only: Vec<&str> = found.iter().map(|t| walk::name(*t)).collect();
            format!("{path} is never a string in {described} (the schema allows only {} there)", only.join(" or "))
        }
        _ => return None,
    };
    let nodes = expand_all(&inbound.nodes, no_filter());
    let holds_type = |n: &Node, name: &str| {
        let mut named = Vec::new();
        values::event_types_in(n, name, &mut named);
        named.iter().any(|t| types.contains(t))
    };
    let meant = nodes.iter().find_map(|n| walk::declared(n).find(|name| *name != member && holds_type(n, name)));
    let instead = match meant {
        Some(name) => format!("the type is in '{name}': say so on the dispatcher with `event_type: $.{name}`"),
        None => "say on the dispatcher where the type is (`event_type: $.kind`, or `{ header: event_type }`)".into(),
    };
    Some(format!(
        "this rule would never call: its when.event_type reads {path} (the dispatcher's event_type), and {why}; {instead}"
    ))
}

/// The event types a canonical event valid for `schema` can have (its `member`, by default
/// `event_type`), when the schema lists them: a `const` or `enum`, at its root or through
/// `$ref`s, `allOf`s, `anyOf`s and `oneOf`s. `None` when it may be any, and when it would be none (a schema no event
/// passes says nothing useful about types).
pub(super) fn event_types_allowed(schema: &Schema, member: &str) -> Option<BTreeSet<String>> {
    values_allowed(&Node::root(schema), member).filter(|types| !types.is_empty())
}

/// What `schema`'s `dependentRequired` (or draft 7's `dependencies`, where a member's value is a
/// list of names) asks: each member name, with the names that must be there wherever it is.
fn dependent_required(schema: &Json) -> impl Iterator<Item = (&str, impl Iterator<Item = &str>)> {
    ["dependentRequired", "dependencies"]
        .into_iter()
        .filter_map(|key| schema.get(key).and_then(Json::as_object))
        .flatten()
        .filter_map(|(present, needs)| Some((present.as_str(), needs.as_array()?.iter().filter_map(Json::as_str))))
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
    // A node that holds only if an `if` does (one the rule's constants do not prove) binds
    // nothing for sure: the benefit of the doubt.
    for node in props.iter().filter(|n| n.surely()) {
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
    // A property produced brings the ones the schema requires with it (`dependentRequired`,
    // or draft 7's `dependencies` with a list).
    for node in props.iter().filter(|n| n.surely()) {
        for (present, needs) in dependent_required(&node.schema) {
            if !fields.iter().any(|(n, _)| n == present) {
                continue;
            }
            for need in needs.filter(|need| !fields.iter().any(|(n, _)| n == need)) {
                ctx.error(
                    at,
                    format!(
                        "rule '{}' produces '{}' but never '{}', which its canonical schema '{}' requires wherever '{}' is (dependentRequired)",
                        check.rule,
                        name(present),
                        name(need),
                        check.canonical,
                        name(present)
                    ),
                );
            }
        }
    }
    // Each node closed to names it does not list (`additionalProperties: false`, the names
    // its `properties` and `patternProperties` take) refuses the others, whatever its `allOf`
    // siblings list: JSON Schema reads `additionalProperties` against what is beside it only.
    let sure: Vec<&Node> = props.iter().filter(|n| n.surely()).collect();
    // And each with `unevaluatedProperties: false` refuses what no part of it declares.
    let evaluated: Vec<BTreeSet<String>> = props.iter().filter(|n| n.surely()).filter_map(evaluated_names).collect();
    for (field, expr) in fields {
        let target = expand_all(&props.iter().filter_map(|n| child(n, field)).collect::<Vec<_>>(), no_filter());
        let refused = if evaluated.iter().any(|names| !names.contains(field)) {
            Some(" (its 'unevaluatedProperties: false' refuses what no part of it declares)")
        } else if sure.iter().any(|n| closed_to(&n.schema, field)) {
            let listed = " (one part of it lists it, but another's 'additionalProperties: false' refuses it: it counts only the properties beside it)";
            Some(if target.is_empty() { "" } else { listed })
        } else {
            None
        };
        if let Some(why) = refused {
            let message = format!(
                "{}: '{field}' is not a property of the canonical schema '{}'{why}",
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
    let wanted = target
        .iter()
        .filter(|n| n.surely())
        .filter_map(|n| n.schema.get("minItems").and_then(Json::as_u64))
        .max()
        .unwrap_or(0);
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
        let filter = inbound.filter(each.as_str(), check.when);
        if let Some(why) = cases(filter).iter().find_map(|case| short_of(from, array, case, wanted, described)) {
            let message =
                format!("{}: '{}' wants at least {wanted} item(s), but {why}", check.what(name), check.canonical);
            ctx.error(expr.at, message);
        }
    }
    let items: Vec<Node> =
        target.iter().filter_map(|n| n.schema.get("items").filter(|i| i.is_object()).map(|i| n.part(i))).collect();
    let items = expand_all(&items, no_filter());
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
    for (v, what) in constants_of(expr).into_iter().chain(default_of(expr)) {
        if ctx.stands_in(&v) {
            continue;
        }
        for n in target.iter().filter(|n| n.surely()) {
            for why in super::schema::value_breaks(&n.schema, &v) {
                let message = format!("{}: {what} breaks '{}': {why}", check.what(name), check.canonical);
                ctx.error(expr.at, message);
            }
            if let Some(c) = n.schema.get("const")
                && !same(c, &v)
            {
                let message =
                    format!("{}: {what} is not the {c} that '{}' requires", check.what(name), check.canonical);
                ctx.error(expr.at, message);
            }
            if let Some(allowed) = n.schema.get("enum").and_then(Json::as_array)
                && !allowed.iter().any(|a| same(a, &v))
            {
                let texts = allowed.iter().filter_map(Json::as_str);
                let near = v.as_str().and_then(|v| nearest(v, texts)).map(|n| format!("; did you mean \"{n}\"?"));
                let listed: Vec<String> = allowed.iter().map(Json::to_string).collect();
                let message = format!(
                    "{}: {what} is not one of the values '{}' allows ({}){}",
                    check.what(name),
                    check.canonical,
                    listed.join(", "),
                    near.unwrap_or_default()
                );
                ctx.error(expr.at, message);
            }
        }
    }
}

/// The values an expression can only produce, each with how messages name it: a constant, or
/// what a lookup ending its steps gives (each value of its table, and its default).
fn constants_of(expr: &Expr) -> Vec<(Json, String)> {
    match (&expr.source, expr.steps.last()) {
        (Source::Const(v), None) => vec![(v.clone(), format!("the constant {v}"))],
        (_, Some(Step::Lookup { table, default })) => {
            let values = table.iter().map(|(k, v)| (v.clone(), format!("the lookup's {v} (for '{k}')")));
            values.chain(default.iter().map(|d| (d.clone(), format!("the lookup's default {d}")))).collect()
        }
        _ => Vec::new(),
    }
}

/// The `default` an expression produces as written when its source finds nothing (one no
/// step changes), with how messages name it.
fn default_of(expr: &Expr) -> Option<(Json, String)> {
    let d = expr.default.as_ref().filter(|_| expr.steps.is_empty() && !matches!(expr.source, Source::Const(_)))?;
    Some((d.clone(), format!("the default {d}")))
}

/// Reports the `produced` types that `target` does not allow.
fn fits(ctx: &mut Ctx, check: &Check, expr: &Expr, produced: &Types, target: &[Node], name: &str) {
    let allowed = intersect_all(target.iter().filter(|n| n.surely()).map(|n| types_of(&n.schema)));
    let (Some(produced), Some(allowed)) = (produced, &allowed) else { return };
    let fits = |t: &Ty| allowed.contains(t) || (*t == Ty::Integer && allowed.contains(&Ty::Number));
    let bad: Vec<&str> = produced.iter().filter(|t| !fits(t)).map(|t| walk::name(*t)).collect();
    if !bad.is_empty() {
        let want: Vec<&str> = allowed.iter().map(|t| walk::name(*t)).collect();
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

/// The schema nodes of what `path` finds in what `inbound` describes (`None` when unknown); a
/// path that cannot exist there is an error, and a misspelt one a warning, naming `what`.
fn nodes_at(
    ctx: &mut Ctx,
    path: &str,
    inbound: Option<&Inbound>,
    when: &Filter,
    at: Location,
    what: &str,
) -> Option<Vec<Node>> {
    let inbound = inbound?;
    let (from, relative, described) = inbound.from(path);
    resolve(from, relative, inbound.filter(path, when)).reported(ctx, at, what, path, described)
}

/// The types an expression can produce (after its steps).
fn produced_types(ctx: &mut Ctx, expr: &Expr, inbound: Option<&Inbound>, when: &Filter, what: &str) -> Types {
    let mut types: Types = match &expr.source {
        Source::Const(v) => Some([ty(v)].into()),
        Source::Template(parts) => {
            for path in parts.iter().filter_map(|p| if let Part::Var(p) = p { Some(p) } else { None }) {
                nodes_at(ctx, path.as_str(), inbound, when, expr.at, what);
            }
            Some([Ty::String].into())
        }
        Source::Header(_) | Source::Query(_) => Some([Ty::String].into()),
        Source::Field(_) => None,
        Source::Object(_) => Some([Ty::Object].into()),
        Source::Paths(paths) => {
            let mut all: Types = Some(BTreeSet::new());
            for p in paths {
                let t = nodes_at(ctx, p.as_str(), inbound, when, expr.at, what).and_then(|_| {
                    let (from, relative, _) = inbound?.from(p.as_str());
                    types_in(from, relative, inbound?.filter(p.as_str(), when))
                });
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
