//! Compiled value expressions (source → default → transform steps) and filters.

use http::HeaderName;
use indexmap::IndexMap;
use serde_json::Value as Json;
use serde_saphyr::Location;

use super::Ctx;
use super::jsonpath::Path;
use super::template::{self, Part};
use crate::config::model::{ConditionConfig, ExprConfig, Locate, OneOrMany, Spanned, StepConfig, Text};

/// How one output value is produced.
#[derive(Clone, Debug)]
pub struct Expr {
    pub source: Source,
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
}

/// Where a filter reads: a JSONPath into the document, or a header that came with it.
#[derive(Clone, Debug)]
pub enum Locator {
    Path(Path),
    Header(HeaderName),
}

impl Locator {
    /// The JSONPath, when it is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Locator::Path(p) => Some(p),
            Locator::Header(_) => None,
        }
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
    ToString,
    /// `None` when its secret is unset where only a warning says so (`validate`, `check`,
    /// `test`): the step then fails with that reason.
    HmacSha256 {
        key: Option<Box<super::verify::SigningKey>>,
    },
}

/// A filter: an optional event-type test plus conditions, all of which must hold.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub event_type: Option<(Locator, Vec<String>)>,
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug)]
pub struct Condition {
    pub at: Locator,
    pub test: Test,
}

#[derive(Clone, Debug)]
pub enum Test {
    Equals(Json),
    In(Vec<Json>),
    /// Not among these; true when the value is missing.
    NotIn(Vec<Json>),
    Exists(bool),
}

/// Compiles one expression; `allow_field` is true where `field:` may be used.
pub(super) fn compile(ctx: &mut Ctx, spanned: &Spanned<ExprConfig>, what: &str, allow_field: bool) -> Option<Expr> {
    let cfg = &spanned.value;
    let mut sources = Vec::new();
    let mut at = spanned.referenced;
    if let Some(c) = &cfg.constant {
        at = c.referenced;
        sources.push(Source::Const(c.value.clone()));
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
    let source = match sources.len() {
        1 => sources.pop()?,
        0 => {
            let hint = if allow_field { ", 'template', 'header' or 'field'" } else { ", 'template' or 'header'" };
            ctx.error(at, format!("{what}: give exactly one source: 'const', 'path'{hint}"));
            return None;
        }
        _ => {
            ctx.error(at, format!("{what}: give only one of 'const', 'path', 'template', 'header', 'field'"));
            return None;
        }
    };
    let steps = cfg.then.iter().map(|s| compile_step(ctx, &s.value)).collect::<Option<Vec<_>>>()?;
    Some(Expr { source, default: cfg.default.as_ref().map(|d| d.value.clone()), optional: cfg.optional, steps, at })
}

fn compile_step(ctx: &mut Ctx, step: &StepConfig) -> Option<Step> {
    Some(match step {
        StepConfig::Upper => Step::Upper,
        StepConfig::Lower => Step::Lower,
        StepConfig::Lookup { table, default } => Step::Lookup { table: table.clone(), default: default.clone() },
        StepConfig::MinorUnits { currency } => Step::MinorUnits { currency: ctx.path(currency)? },
        StepConfig::EpochToRfc3339 => Step::EpochToRfc3339,
        StepConfig::ToString => Step::ToString,
        StepConfig::HmacSha256 { secret } => {
            Step::HmacSha256 { key: super::verify::step_key(ctx, secret).map(Box::new) }
        }
    })
}

fn compile_template(ctx: &mut Ctx, text: &Text) -> Option<Vec<Part<Path>>> {
    let parts = match template::parse(&text.value) {
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
pub(super) fn compile_filter(
    ctx: &mut Ctx,
    event_type: Option<&Spanned<OneOrMany>>,
    event_type_at: EventTypeAt,
    conditions: &[Spanned<ConditionConfig>],
) -> Option<Filter> {
    let mut filter = Filter::default();
    if let Some(types) = event_type {
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
    for Spanned(serde_saphyr::Spanned { value: c, referenced, .. }) in conditions {
        let (at, place) = match (&c.path, &c.header) {
            (Some(path), None) => (Locator::Path(ctx.path(path)?), path.referenced),
            (None, Some(header)) => {
                (Locator::Header(ctx.header_name(&header.value, header.referenced)?), header.referenced)
            }
            _ => {
                ctx.error(*referenced, "a condition needs exactly one of 'path' and 'header'");
                return None;
            }
        };
        let test = match (&c.equals, &c.one_of, &c.not_in, c.exists) {
            (Some(v), None, None, None) => Test::Equals(v.clone()),
            (None, Some(vs), None, None) => Test::In(vs.clone()),
            (None, None, Some(vs), None) => Test::NotIn(vs.clone()),
            (None, None, None, Some(b)) => Test::Exists(b),
            _ => {
                let message = "a condition needs exactly one of 'equals', 'in', 'not_in', 'exists'";
                ctx.error(place, message);
                return None;
            }
        };
        filter.conditions.push(Condition { at, test });
    }
    Some(filter)
}
