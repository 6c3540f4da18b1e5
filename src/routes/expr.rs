//! Compiled value expressions (source → default → transform steps; an `object` of named
//! expressions; `each`, an array of one value per selected item) and filters.

use http::HeaderName;
use indexmap::IndexMap;
use serde_json::Value as Json;
use serde_saphyr::Location;

use super::Ctx;
use super::jsonpath::Path;
use super::template::{self, Part};
use crate::config::model::{ConditionConfig, ExprConfig, Locate, Spanned, StepConfig, Text, WhenConfig};

/// How one output value is produced.
#[derive(Clone, Debug)]
pub struct Expr {
    pub source: Source,
    /// With `each`: the source, default and steps run once for each value this selects (read
    /// as `$`), making an array.
    pub each: Option<Box<Path>>,
    pub default: Option<Json>,
    pub optional: bool,
    pub steps: Vec<Step>,
    /// Where the expression was written (for the static contract check).
    pub at: Location,
}

/// Where an expression's value comes from.
#[derive(Clone, Debug)]
pub enum Source {
    Const(Json),
    /// Tried in order; the first that finds a non-null value wins.
    Paths(Vec<Path>),
    /// Literal text with JSONPath placeholders.
    Template(Vec<Part<Path>>),
    /// A property of the value being produced (keys and headers only).
    Field(String),
    /// A header that came with the document: the webhook's request header, or the consumed
    /// record's Kafka header.
    Header(HeaderName),
    /// A parameter of the webhook's URL query (sources only).
    Query(String),
    /// An object of named values, each evaluated against the same document.
    Object(Vec<(String, Expr)>),
}

/// Where a filter reads: a JSONPath into the document, or a header that came with it.
#[derive(Clone, Debug)]
pub enum Locator {
    Path(Path),
    Header(HeaderName),
    /// A parameter of the webhook's URL query (sources only).
    Query(String),
}

impl Locator {
    /// The JSONPath, when it is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Locator::Path(p) => Some(p),
            Locator::Header(_) | Locator::Query(_) => None,
        }
    }

    /// Where it reads, in words: the JSONPath, or `header NAME`.
    pub fn place(&self) -> String {
        match self {
            Locator::Path(p) => p.as_str().to_owned(),
            Locator::Header(h) => format!("header {h}"),
            Locator::Query(q) => format!("query parameter {q}"),
        }
    }

    /// Whether it reads text that came with the document (a header, a query parameter),
    /// which a range reads as a number.
    pub fn reads_text(&self) -> bool {
        !matches!(self, Locator::Path(_))
    }
}

/// A transform step.
#[derive(Clone, Debug)]
pub enum Step {
    Upper,
    Lower,
    Lookup {
        table: IndexMap<String, Json>,
        default: Option<Json>,
    },
    MinorUnits {
        currency: Path,
    },
    EpochToRfc3339,
    EpochMsToRfc3339,
    ToUtc,
    ToString,
    ToNumber,
    /// `None` when its secret is unset where only a warning says so (`validate`, `check`,
    /// `test`): the step then fails with that reason.
    HmacSha256 {
        key: Option<Box<super::verify::SigningKey>>,
    },
    Trim,
    Replace {
        pattern: regex::Regex,
        with: String,
    },
    Split(String),
    Join(String),
    Round(u32),
    Multiply(f64),
    Divide(f64),
    ParseJson,
}

/// A filter: an optional event-type test plus conditions, all of which must hold.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub event_type: Option<(Locator, Vec<String>)>,
    pub conditions: Vec<Condition>,
}

/// A test of one value, or a combination of conditions.
#[derive(Clone, Debug)]
pub enum Condition {
    /// `place`: where the config writes its `path` or `header`, for diagnostics.
    Test {
        at: Locator,
        test: Test,
        place: Location,
    },
    Any(Vec<Condition>),
    All(Vec<Condition>),
    Not(Box<Condition>),
}

#[derive(Clone, Debug)]
pub enum Test {
    Equals(Json),
    In(Vec<Json>),
    /// Not among these; true when the value is missing.
    NotIn(Vec<Json>),
    Exists(bool),
    /// A number (a header's text read as one) within the bounds given.
    Range {
        low: Option<Bound>,
        high: Option<Bound>,
    },
    /// A string containing the text, or an array holding the value.
    Contains(Json),
    StartsWith(String),
    EndsWith(String),
    Matches(regex::Regex),
}

/// One end of a range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bound {
    pub value: f64,
    pub inclusive: bool,
}

/// Compiles one expression; `allow_field` is true where `field:` may be used.
pub(super) fn compile(ctx: &mut Ctx, spanned: &Spanned<ExprConfig>, what: &str, allow_field: bool) -> Option<Expr> {
    compile_nested(ctx, spanned, what, allow_field, 0)
}

/// Compiles an expression `depth` objects deep.
fn compile_nested(
    ctx: &mut Ctx,
    spanned: &Spanned<ExprConfig>,
    what: &str,
    allow_field: bool,
    depth: usize,
) -> Option<Expr> {
    let cfg = &spanned.value;
    if depth > MAX_NESTING {
        ctx.error(spanned.referenced, format!("{what}: values nest more than {MAX_NESTING} objects deep"));
        return None;
    }
    let each = cfg.each.as_ref().map(|text| ctx.path(text));
    // What is under `each` reads the selected values, not the payload, whose projection keeps
    // those values whole: its paths are not the payload's.
    let reads = if each.is_some() { ctx.source_paths.take() } else { None };
    let compiled = compile_source(ctx, spanned, what, allow_field, depth);
    if each.is_some() {
        ctx.source_paths = reads;
    }
    let (source, at) = compiled?;
    if let (Some(each), Source::Field(_)) = (&cfg.each, &source) {
        ctx.error(
            each.referenced,
            format!("{what}: 'each' reads selected values, not a property of the value: use 'path'"),
        );
        return None;
    }
    let object = matches!(source, Source::Object(_));
    if object && (cfg.default.is_some() || cfg.optional || !cfg.then.is_empty()) {
        let message = format!(
            "{what}: an 'object' is always produced, and no step takes one: put 'default', 'optional' and 'then' on its properties"
        );
        ctx.error(at, message);
        return None;
    }
    let steps = cfg.then.iter().map(|s| compile_step(ctx, s)).collect::<Option<Vec<_>>>()?;
    let each = match each {
        Some(path) => Some(Box::new(path?)),
        None => None,
    };
    Some(Expr {
        source,
        each,
        default: match &cfg.default {
            Some(d) => Some(ctx.json(&d.value, d.referenced)?),
            None => None,
        },
        optional: cfg.optional,
        steps,
        at,
    })
}

/// An expression's one source, and where it is written.
fn compile_source(
    ctx: &mut Ctx,
    spanned: &Spanned<ExprConfig>,
    what: &str,
    allow_field: bool,
    depth: usize,
) -> Option<(Source, Location)> {
    let cfg = &spanned.value;
    let mut sources = Vec::new();
    let mut at = spanned.referenced;
    if let Some(c) = &cfg.constant {
        at = c.referenced;
        sources.push(Source::Const(ctx.json(&c.value, c.referenced)?));
    }
    if let Some(p) = &cfg.path {
        at = p.referenced;
        let paths: Option<Vec<Path>> = p.value.to_vec().iter().map(|text| ctx.path_at(text, p.referenced)).collect();
        sources.push(Source::Paths(paths?));
    }
    if let Some(t) = &cfg.template {
        at = t.referenced;
        sources.push(Source::Template(compile_template(ctx, t)?));
    }
    if let Some(f) = &cfg.field {
        at = f.referenced;
        if !allow_field {
            ctx.error(at, format!("{what}: 'field' is only allowed in 'key' and 'headers'; use 'path' here"));
            return None;
        }
        sources.push(Source::Field(f.value.clone()));
    }
    if let Some(h) = &cfg.header {
        at = h.referenced;
        sources.push(Source::Header(ctx.header_name(&h.value, at)?));
    }
    if let Some(q) = &cfg.query {
        at = q.referenced;
        sources.push(Source::Query(ctx.query_name(q, what)?));
    }
    if let Some(fields) = &cfg.object {
        let mut compiled = Vec::with_capacity(fields.len());
        for (name, e) in fields {
            compiled.push((name.clone(), compile_nested(ctx, e, &format!("{what}.{name}"), false, depth + 1)));
        }
        let compiled: Option<Vec<(String, Expr)>> = compiled.into_iter().map(|(n, e)| Some((n, e?))).collect();
        sources.push(Source::Object(compiled?));
    }
    match sources.len() {
        1 => Some((sources.pop()?, at)),
        0 => {
            let hint = if allow_field {
                ", 'template', 'header', 'query', 'object' or 'field'"
            } else {
                ", 'template', 'header', 'query' or 'object'"
            };
            ctx.error(at, format!("{what}: give exactly one source: 'const', 'path'{hint}"));
            None
        }
        _ => {
            ctx.error(at, format!("{what}: give only one of 'const', 'path', 'template', 'header', 'object', 'field'"));
            None
        }
    }
}

fn compile_step(ctx: &mut Ctx, spanned: &Spanned<StepConfig>) -> Option<Step> {
    let at = spanned.referenced;
    Some(match &spanned.value {
        StepConfig::Upper => Step::Upper,
        StepConfig::Lower => Step::Lower,
        StepConfig::Lookup { table, default } => Step::Lookup { table: table.clone(), default: default.clone() },
        StepConfig::MinorUnits { currency } => Step::MinorUnits { currency: ctx.path(currency)? },
        StepConfig::EpochToRfc3339 => Step::EpochToRfc3339,
        StepConfig::EpochMsToRfc3339 => Step::EpochMsToRfc3339,
        StepConfig::ToUtc => Step::ToUtc,
        StepConfig::ToString => Step::ToString,
        StepConfig::ToNumber => Step::ToNumber,
        StepConfig::HmacSha256 { secret } => {
            Step::HmacSha256 { key: super::verify::step_key(ctx, secret).map(Box::new) }
        }
        StepConfig::Trim => Step::Trim,
        StepConfig::Replace { pattern, with } => {
            Step::Replace { pattern: compile_regex(ctx, pattern, "replace: 'pattern'")?, with: with.clone() }
        }
        StepConfig::Split(by) if by.is_empty() => {
            ctx.error(at, "'split' needs the text to cut at (an empty one cuts nowhere)");
            return None;
        }
        StepConfig::Split(by) => Step::Split(by.clone()),
        StepConfig::Join(by) => Step::Join(by.clone()),
        StepConfig::Round(places) if *places > 15 => {
            ctx.error(at, format!("'round' keeps 0 to 15 decimal places (a double holds no more), not {places}"));
            return None;
        }
        StepConfig::Round(places) => Step::Round(*places),
        StepConfig::Multiply(by) if !by.is_finite() => {
            ctx.error(at, format!("'multiply' needs a finite number, not {by}"));
            return None;
        }
        StepConfig::Multiply(by) => Step::Multiply(*by),
        StepConfig::Divide(by) if !by.is_finite() || *by == 0.0 => {
            ctx.error(at, format!("'divide' needs a finite number other than 0, not {by}"));
            return None;
        }
        StepConfig::Divide(by) => Step::Divide(*by),
        StepConfig::ParseJson => Step::ParseJson,
    })
}

/// A regular expression (Rust's `regex` syntax: linear in time, at most 1 MiB compiled), or an
/// error at `text` naming `what` and the mistake.
fn compile_regex(ctx: &mut Ctx, text: &Text, what: &str) -> Option<regex::Regex> {
    match regex::RegexBuilder::new(&text.value).size_limit(1 << 20).build() {
        Ok(re) => Some(re),
        Err(e) => {
            // A syntax error draws a caret under the pattern; its last line says what is wrong.
            let message = e.to_string();
            let why = message.lines().last().map_or(message.as_str(), |l| l.strip_prefix("error: ").unwrap_or(l));
            ctx.error(text.referenced, format!("{what} is not a regular expression ({why}): {}", text.value));
            None
        }
    }
}

/// A template's `${` that begins no variable name stays as written: `"Total: ${$.amount}"` is a
/// dollar sign before a placeholder, not the environment (`$${`, the escape, is left alone).
fn dollar_before_placeholder(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for (i, c) in raw.char_indices() {
        let rest = &raw[i..];
        let begins_no_name = rest.starts_with("${")
            && !raw[..i].ends_with('$')
            && !rest[2..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
        if begins_no_name {
            out.push('$');
        }
        out.push(c);
    }
    out
}

fn compile_template(ctx: &mut Ctx, text: &Text) -> Option<Vec<Part<Path>>> {
    let escaped =
        Spanned(serde_saphyr::Spanned::new(dollar_before_placeholder(&text.value), text.referenced, text.defined));
    let expanded = ctx.text_or_name(&escaped)?;
    let parts = match template::parse(&expanded) {
        Ok(parts) => parts,
        Err(e) => {
            ctx.error(text.referenced, e);
            return None;
        }
    };
    parts
        .into_iter()
        .map(|part| match part {
            Part::Lit(s) => Some(Part::Lit(s)),
            Part::Var(v) => ctx.path_at(&v, text.referenced).map(Part::Var),
        })
        .collect()
}

/// Compiles a source's `event_type` or `event_id`: a JSONPath, or `{ header: Name }`.
pub(super) fn compile_locate(ctx: &mut Ctx, spanned: &Spanned<Locate>) -> Option<Locator> {
    let at = spanned.referenced;
    match &spanned.value {
        Locate::Path(text) => ctx.path_at(text, at).map(Locator::Path),
        Locate::Header(h) => ctx.header_name(&h.header, at).map(Locator::Header),
    }
}

/// Where a rule's `when.event_type` reads the event type, as its source says.
#[derive(Clone, Debug)]
pub(super) enum EventTypeAt {
    At(Locator),
    /// The source does not say.
    Unsaid,
    /// The source says it in a way that did not compile (already reported).
    Broken,
}

/// Compiles a rule's filter. `event_type_at` is where the event type is read from.
pub(super) fn compile_filter(ctx: &mut Ctx, when: &WhenConfig, event_type_at: EventTypeAt) -> Option<Filter> {
    let mut filter = Filter::default();
    if let Some(types) = &when.event_type {
        match event_type_at {
            EventTypeAt::At(at) => filter.event_type = Some((at, types.value.to_vec())),
            EventTypeAt::Broken => return None,
            EventTypeAt::Unsaid => {
                ctx.error(
                    types.referenced,
                    "'when.event_type' needs the source to say where the type is: add 'event_type: $.type' (or 'event_type: { header: X-Event-Type }') to the source",
                );
                return None;
            }
        }
    }
    for c in &when.all {
        filter.conditions.push(compile_condition(ctx, c, 0)?);
    }
    if let Some(any) = &when.any {
        filter.conditions.push(compile_any(ctx, any, 0)?);
    }
    Some(filter)
}

/// How deep `any`, `all` and `not` may nest: deeper is a config no one means to write.
const MAX_NESTING: usize = 16;

fn compile_any(ctx: &mut Ctx, any: &Spanned<Vec<Spanned<ConditionConfig>>>, depth: usize) -> Option<Condition> {
    compile_list(ctx, any.referenced, &any.value, true, depth)
}

/// The conditions of an `any` (`any` true) or an `all`: one message for an empty list wherever
/// it is written, at the top of `when` or nested.
fn compile_list(
    ctx: &mut Ctx,
    at: Location,
    list: &[Spanned<ConditionConfig>],
    any: bool,
    depth: usize,
) -> Option<Condition> {
    let word = if any { "any" } else { "all" };
    if list.is_empty() {
        let never = if any { "an empty 'any' never holds" } else { "an empty 'all' always holds" };
        ctx.error(at, format!("'{word}' needs at least one condition ({never})"));
        return None;
    }
    let list: Option<Vec<Condition>> = list.iter().map(|c| compile_condition(ctx, c, depth + 1)).collect();
    Some(if any { Condition::Any(list?) } else { Condition::All(list?) })
}

fn compile_condition(ctx: &mut Ctx, spanned: &Spanned<ConditionConfig>, depth: usize) -> Option<Condition> {
    let (c, at) = (&spanned.value, spanned.referenced);
    if depth > MAX_NESTING {
        ctx.error(at, format!("conditions nest more than {MAX_NESTING} deep"));
        return None;
    }
    let tested = c.path.is_some() || c.header.is_some() || c.query.is_some() || has_test(c);
    match (&c.any, &c.all, &c.not) {
        (None, None, None) => compile_test(ctx, c, at),
        _ if tested => {
            let message =
                "a condition is either a test ('path' or 'header' with a test) or one of 'any', 'all', 'not', not both";
            ctx.error(at, message);
            None
        }
        (Some(list), None, None) => compile_list(ctx, at, list, true, depth),
        (None, Some(list), None) => compile_list(ctx, at, list, false, depth),
        (None, None, Some(not)) => compile_condition(ctx, not, depth + 1).map(|c| Condition::Not(Box::new(c))),
        _ => {
            let message = "a condition holds one of 'any', 'all' or 'not', not two: nest one inside an item of an 'all' to need both";
            ctx.error(at, message);
            None
        }
    }
}

fn has_test(c: &ConditionConfig) -> bool {
    !plain_tests(c).is_empty() || c.matches.is_some() || [c.gt, c.gte, c.lt, c.lte].iter().any(Option::is_some)
}

/// The tests a condition writes, but `matches` and a range (each checked as it compiles).
fn plain_tests(c: &ConditionConfig) -> Vec<Test> {
    [
        c.equals.clone().map(Test::Equals),
        c.one_of.clone().map(Test::In),
        c.not_in.clone().map(Test::NotIn),
        c.exists.map(Test::Exists),
        c.contains.clone().map(Test::Contains),
        c.starts_with.clone().map(Test::StartsWith),
        c.ends_with.clone().map(Test::EndsWith),
    ]
    .into_iter()
    .flatten()
    .collect()
}

const TESTS: &str = "'equals', 'in', 'not_in', 'exists', 'contains', 'starts_with', 'ends_with', 'matches', or a range ('gt' or 'gte', 'lt' or 'lte')";

fn compile_test(ctx: &mut Ctx, c: &ConditionConfig, referenced: Location) -> Option<Condition> {
    let (at, place) = match (&c.path, &c.header, &c.query) {
        (Some(path), None, None) => (Locator::Path(ctx.path(path)?), path.referenced),
        (None, Some(header), None) => {
            (Locator::Header(ctx.header_name(&header.value, header.referenced)?), header.referenced)
        }
        (None, None, Some(query)) => (Locator::Query(ctx.query_name(query, "a condition")?), query.referenced),
        _ => {
            let message = match ctx.reads_events() {
                true => "a condition needs exactly one of 'path' and 'header' (or is 'any', 'all' or 'not')",
                false => "a condition needs exactly one of 'path', 'header' and 'query' (or is 'any', 'all' or 'not')",
            };
            ctx.error(referenced, message);
            return None;
        }
    };
    let low = bound(c.gt, c.gte);
    let high = bound(c.lt, c.lte);
    let mut tests = Vec::new();
    for test in plain_tests(c) {
        // `${VAR}` in a value the test compares with reads the environment.
        tests.push(match test {
            Test::Equals(v) => Test::Equals(ctx.json(&v, referenced)?),
            Test::In(vs) => Test::In(vs.iter().map(|v| ctx.json(v, referenced)).collect::<Option<_>>()?),
            Test::NotIn(vs) => Test::NotIn(vs.iter().map(|v| ctx.json(v, referenced)).collect::<Option<_>>()?),
            Test::Contains(v) => Test::Contains(ctx.json(&v, referenced)?),
            Test::StartsWith(t) => Test::StartsWith(ctx.json(&Json::String(t), referenced)?.as_str()?.to_owned()),
            Test::EndsWith(t) => Test::EndsWith(ctx.json(&Json::String(t), referenced)?.as_str()?.to_owned()),
            other => other,
        });
    }
    if let Some(m) = &c.matches {
        tests.push(Test::Matches(compile_regex(ctx, m, "'matches'")?));
    }
    match (low, high) {
        (Err(()), _) | (_, Err(())) => {
            ctx.error(place, "a range gives at most one lower bound ('gt' or 'gte') and one upper ('lt' or 'lte')");
            return None;
        }
        (Ok(None), Ok(None)) => {}
        (Ok(low), Ok(high)) => {
            let empty = match (low, high) {
                (Some(l), Some(h)) => l.value > h.value || (l.value == h.value && !(l.inclusive && h.inclusive)),
                _ => false,
            };
            let bad = [low, high].iter().flatten().any(|b| !b.value.is_finite());
            if bad || empty {
                let why = if bad { "its bounds must be finite numbers" } else { "no number is within its bounds" };
                ctx.error(place, format!("this range can never hold: {why}"));
                return None;
            }
            tests.push(Test::Range { low, high });
        }
    }
    if tests.len() != 1 {
        ctx.error(place, format!("a condition needs exactly one of {TESTS}"));
        return None;
    }
    tests.pop().map(|test| Condition::Test { at, test, place })
}

/// One end of a range from its exclusive and inclusive forms; `Err` when both are given.
fn bound(exclusive: Option<f64>, inclusive: Option<f64>) -> Result<Option<Bound>, ()> {
    match (exclusive, inclusive) {
        (Some(_), Some(_)) => Err(()),
        (Some(value), None) => Ok(Some(Bound { value, inclusive: false })),
        (None, Some(value)) => Ok(Some(Bound { value, inclusive: true })),
        (None, None) => Ok(None),
    }
}
