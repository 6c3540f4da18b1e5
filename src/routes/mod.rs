//! Compiled routes: the config turned, once, into everything the pipeline needs — env
//! expanded, JSONPaths parsed, schemas compiled, verifiers and transforms built.
//!
//! [`compile`] never stops at the first problem: it gathers every diagnostic it can.

pub mod contract;
mod did_you_mean;
pub mod dispatch;
pub mod expr;
pub mod jsonpath;
mod networks;
pub mod projection;
pub mod reply;
pub mod schema;
mod schema_refs;
mod settings;
mod source;
pub mod template;
pub mod verify;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;
use serde_saphyr::Location;

use crate::config::model::{Spanned, Text};
use crate::config::{Diagnostics, Loaded, env};
pub use dispatch::Dispatcher;
pub use expr::{Expr, Filter};
pub use schema::Schema;
pub use settings::{IngressSettings, KafkaSettings};
pub use source::{Emit, Form, Rule, Source};
pub use verify::Verifier;

/// Everything one config file says, ready to run.
#[derive(Debug)]
pub struct Routes {
    pub kafka: KafkaSettings,
    pub ingress: IngressSettings,
    pub sources: Vec<Source>,
    pub dispatchers: Vec<Dispatcher>,
}

impl Routes {
    /// The source served at `path`, if any; one trailing `/` is forgiven (`/hooks/s/` is
    /// `/hooks/s`: a sender pasting the URL with a slash would otherwise get 404s, and
    /// webhook senders do not follow redirects).
    pub fn source_at(&self, path: &str) -> Option<&Source> {
        let exact = self.sources.iter().find(|s| s.path == path);
        let trimmed = || path.strip_suffix('/').and_then(|t| self.sources.iter().find(|s| s.path == t));
        exact.or_else(trimmed)
    }

    /// Every topic the routes publish to or consume from (dead-letter topics too), each once.
    pub fn topics(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let emitted = self.sources.iter().flat_map(|s| s.topics().map(str::to_owned));
        let consumed = self.dispatchers.iter().flat_map(|d| [d.topic.clone(), d.dead_letter_topic.clone()]);
        for t in emitted.chain(consumed) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    pub fn source_named(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// Every schema file the routes use (entry points; `$ref` targets live beside them).
    pub fn schema_files(&self) -> Vec<PathBuf> {
        let sources = self.sources.iter().flat_map(|s| {
            s.schema.iter().map(|x| x.file.clone()).chain(s.rules.iter().map(|r| r.emit.schema.file.clone()))
        });
        let dispatchers = self.dispatchers.iter().flat_map(|d| d.schema.iter().map(|x| x.file.clone()));
        let mut files: Vec<PathBuf> = sources.chain(dispatchers).collect();
        files.sort();
        files.dedup();
        files
    }
}

/// The most webhooks, connections or calls a setting lets be at once.
pub(crate) const MAX_AT_ONCE: u64 = 1_000_000;

/// How unset environment variables count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvMode {
    /// `serve`, `dev`, `redrive`: an unset variable without default is an error in what the
    /// process runs (`kafka:` always; `sources:` when it serves webhooks, `dispatch:` when it
    /// runs dispatchers) and a warning in what it does not run: a dispatcher-only process
    /// needs no webhook secret, an ingress-only one no order-service token.
    Strict { sources: bool, dispatch: bool },
    /// `validate`, `check`, `test`: reported as a warning.
    Lenient,
}

impl EnvMode {
    /// Strict everywhere: the process runs every part.
    pub const STRICT: EnvMode = EnvMode::Strict { sources: true, dispatch: true };
}

/// The part of the config being compiled, for [`EnvMode::Strict`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Shared,
    Sources,
    Dispatch,
}

/// The domain of the hosts [`Ctx::url_text`] puts in place of unset variables.
const UNSET_HOST: &str = ".unset.invalid";

/// True for a host that stands for an unset variable (never in a config that runs).
pub(crate) fn is_stand_in_host(host: &str) -> bool {
    host.ends_with(UNSET_HOST)
}

/// Paths that the server answers itself.
pub const RESERVED_PATHS: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// Compiles a loaded config. `Ok` carries the routes and any warnings.
pub fn compile(
    loaded: &Loaded,
    env: &dyn Fn(&str) -> Option<String>,
    mode: EnvMode,
) -> Result<(Routes, Diagnostics), Diagnostics> {
    let mut ctx = Ctx {
        file: &loaded.path,
        dir: &loaded.dir,
        env,
        mode,
        part: Part::Shared,
        diags: Diagnostics::default(),
        schemas: HashMap::new(),
        source_paths: None,
        root_paths: Vec::new(),
        stand_ins: Default::default(),
    };
    let cfg = &loaded.file;
    let kafka = settings::compile_kafka(&mut ctx, &cfg.kafka);
    let ingress = settings::compile_ingress(&mut ctx, &cfg.ingress);

    let units = loaded.units();
    if units.iter().all(|u| u.sources.is_empty() && u.dispatch.is_empty()) {
        ctx.warning(Location::UNKNOWN, "no 'sources' and no 'dispatch': a server on this config would do nothing");
    }
    let mut sources: Vec<Source> = Vec::new();
    ctx.part = Part::Sources;
    for unit in &units {
        (ctx.file, ctx.dir) = (unit.path, unit.dir);
        for s in unit.sources {
            let Some(source) = source::compile(&mut ctx, s) else { continue };
            for rule in &source.rules {
                contract::check_rule(&mut ctx, rule, source.schema.as_deref());
            }
            if let Some(other) = sources.iter().find(|o| o.path == source.path) {
                let msg = format!("duplicate route path '{}': source '{}' already serves it", source.path, other.name);
                ctx.error(s.path.referenced, msg);
            } else if let Some(other) = sources.iter().find(|o| o.name == source.name) {
                let msg = format!("duplicate source name '{}'", other.name);
                ctx.error(s.name.referenced, msg);
            } else {
                sources.push(source);
            }
        }
    }
    // A dispatcher without its own `schema` is checked against what is published to its topic.
    let mut published: HashMap<String, dispatch::Published> = HashMap::new();
    for rule in sources.iter().flat_map(|s| &s.rules) {
        let on_topic = published.entry(rule.emit.topic.clone()).or_default();
        if !on_topic.schemas.iter().any(|s| s.file == rule.emit.schema.file) {
            on_topic.schemas.push(rule.emit.schema.clone());
        }
        on_topic.rules.push(rule.emit.headers.iter().map(|(name, _)| name.to_ascii_lowercase()).collect());
    }
    ctx.part = Part::Dispatch;
    let mut dispatchers: Vec<Dispatcher> = Vec::new();
    for unit in &units {
        (ctx.file, ctx.dir) = (unit.path, unit.dir);
        for d in unit.dispatch {
            let Some(dispatcher) = dispatch::compile(&mut ctx, d, &published) else { continue };
            // Its name is what `redrive --dispatcher`, dead letters and metrics know it by.
            if dispatchers.iter().any(|o| o.name == dispatcher.name) {
                ctx.error(d.name.referenced, format!("duplicate dispatcher name '{}'", dispatcher.name));
            } else {
                dispatchers.push(dispatcher);
            }
        }
    }
    // A topic of refused webhooks must not be read as one of events.
    let written = units.iter().flat_map(|u| u.sources.iter().map(move |c| (u, c)));
    for (unit, source_cfg) in written {
        (ctx.file, ctx.dir) = (unit.path, unit.dir);
        let Some(source) = sources.iter().find(|s| s.name == source_cfg.name.value) else { continue };
        let (Some(topic), Some(text)) = (&source.dead_letter_topic, &source_cfg.dead_letter_topic) else {
            continue;
        };
        let why = if published.contains_key(topic) {
            "rules publish events to it"
        } else if dispatchers.iter().any(|d| &d.topic == topic) {
            "a dispatcher consumes it"
        } else {
            continue;
        };
        let message = format!(
            "dead_letter_topic '{topic}' of source '{}' holds refused webhooks, but {why}: give it a topic of its own",
            source.name
        );
        ctx.error(text.referenced, message);
    }
    if ctx.diags.has_errors() {
        return Err(ctx.diags);
    }
    Ok((Routes { kafka, ingress, sources, dispatchers }, ctx.diags))
}

/// State shared while compiling one file: where it is, the environment, what was found.
pub(crate) struct Ctx<'a> {
    file: &'a Path,
    dir: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
    mode: EnvMode,
    part: Part,
    diags: Diagnostics,
    schemas: HashMap<PathBuf, Arc<Schema>>,
    /// While a source compiles: the text of every JSONPath it compiles (for its projection).
    source_paths: Option<Vec<String>>,
    /// The `$$…` paths compiled since the source began, as `$…` paths: they read the payload
    /// even under a `for_each` or an `each`.
    root_paths: Vec<String>,
    /// Strings that an unset variable's stand-in made (`$CURRENCY`), where that is only a
    /// warning: the contract check does not hold a constant holding one to the schema's
    /// `pattern` or `enum`, which the variable's real value is for.
    stand_ins: std::collections::HashSet<String>,
}

impl Ctx<'_> {
    pub(crate) fn error(&mut self, at: Location, message: impl Into<String>) {
        self.diags.error(self.file, at, message);
    }

    pub(crate) fn warning(&mut self, at: Location, message: impl Into<String>) {
        self.diags.warning(self.file, at, message);
    }

    /// An error when a limit, timeout or delay that is set is below `min` (a zero there
    /// refuses every webhook, fails every call, or retries without pause).
    pub(crate) fn at_least(&mut self, value: &Option<Spanned<u64>>, min: u64, what: &str) {
        if let Some(v) = value
            && v.value < min
        {
            self.error(v.referenced, format!("'{what}' must be at least {min}, not {}", v.value));
        }
    }

    /// An error when a limit that is set is above `max` (`why`: what bounds it).
    pub(crate) fn at_most(&mut self, value: &Option<Spanned<u64>>, max: u64, what: &str, why: &str) {
        if let Some(v) = value
            && v.value > max
        {
            self.error(v.referenced, format!("'{what}' must be at most {max} ({why}), not {}", v.value));
        }
    }

    /// The string with `${VAR}` expanded; `None` (and a diagnostic) when it cannot be.
    pub(crate) fn text(&mut self, text: &Text) -> Option<String> {
        let e = match env::expand(&text.value, self.env) {
            Ok(s) => return Some(s),
            Err(e) => e,
        };
        self.report_unset(text, e);
        None
    }

    /// Reports why `text` does not expand: each variable it needs that is unset (or empty
    /// where `:?` needs it), a warning or an error as `unset_is_fine` says, so one run of
    /// `validate` names them all; or the text's malformed `${`. True where they are warnings.
    fn report_unset(&mut self, text: &Text, first: env::ExpandError) -> bool {
        if first.unset().is_none() {
            self.error(text.referenced, first.to_string());
            return false;
        }
        let why = self.unset_is_fine();
        for e in self.unset_in(&text.value) {
            match why {
                Some(why) => self.warning(text.referenced, format!("{e}{why}")),
                None => self.error(text.referenced, e.to_string()),
            }
        }
        why.is_some()
    }

    /// Every variable `raw` needs that is unset (or empty where `:?` needs it), with its error,
    /// in the order they come.
    fn unset_in(&self, raw: &str) -> Vec<env::ExpandError> {
        let env = self.env;
        let mut found: Vec<env::ExpandError> = Vec::new();
        loop {
            let known = |name: &str| found.iter().any(|e| e.unset() == Some(name));
            let lookup = |name: &str| if known(name) { Some("x".to_owned()) } else { env(name) };
            match env::expand(raw, &lookup) {
                Err(e) if e.unset().is_some_and(|name| !known(name)) => found.push(e),
                _ => return found,
            }
        }
    }

    /// As [`Ctx::text`], but where an unset variable is only a warning (what reads it does not
    /// run here: `validate`, `check`, `test`, or a part this process does not run) it stands
    /// for `$NAME`, so what holds the value still compiles and is checked: a topic, a group, a
    /// header's value, an id.
    pub(crate) fn text_or_name(&mut self, text: &Text) -> Option<String> {
        self.text_with(text, |name, _| format!("${name}"))
    }

    /// As [`Ctx::text`], telling an unset variable that is only a warning here (`Some(None)`)
    /// from an error (`None`).
    pub(crate) fn text_unless_unset(&mut self, text: &Text) -> Option<Option<String>> {
        let errors = self.diags.errors().count();
        match self.text(text) {
            Some(value) => Some(Some(value)),
            None if self.diags.errors().count() == errors => Some(None),
            None => None,
        }
    }

    /// As [`Ctx::text_or_name`], for each string in a JSON value the config writes (a `const`,
    /// a `default`, a condition's `equals`): `${VAR}` there reads the environment as it does
    /// in any other string of the config.
    pub(crate) fn json(&mut self, value: &Json, at: Location) -> Option<Json> {
        Some(match value {
            Json::String(s) if s.contains('$') => {
                Json::String(self.text_or_name(&Spanned(serde_saphyr::Spanned::new(s.clone(), at, at)))?)
            }
            Json::Array(items) => Json::Array(items.iter().map(|v| self.json(v, at)).collect::<Option<_>>()?),
            Json::Object(members) => {
                Json::Object(members.iter().map(|(k, v)| Some((k.clone(), self.json(v, at)?))).collect::<Option<_>>()?)
            }
            other => other.clone(),
        })
    }

    /// As [`Ctx::text_or_name`], for a URL: an unset variable stands for a host of its own
    /// under `.unset.invalid` (`http://order-service-url.unset.invalid` when it begins the
    /// URL), which no call can reach and `allowed_hosts` lets by ([`is_stand_in_host`]).
    pub(crate) fn url_text(&mut self, text: &Text) -> Option<String> {
        self.text_with(text, |name, first| {
            let host = format!("{}{UNSET_HOST}", name.to_ascii_lowercase().replace('_', "-"));
            if first { format!("http://{host}") } else { host }
        })
    }

    fn text_with(&mut self, text: &Text, stand_in: impl Fn(&str, bool) -> String) -> Option<String> {
        let e = match env::expand(&text.value, self.env) {
            Ok(s) => return Some(s),
            Err(e) => e,
        };
        if !self.report_unset(text, e) {
            return None;
        }
        // Every variable that is missing (or empty where `:?` needs it) takes its stand-in.
        let raw = &text.value;
        let missing = self.unset_in(raw);
        let env = self.env;
        let lookup = |name: &str| {
            let first = raw.starts_with(&format!("${{{name}"));
            if missing.iter().any(|e| e.unset() == Some(name)) { Some(stand_in(name, first)) } else { env(name) }
        };
        let expanded = env::expand(raw, &lookup).ok()?;
        self.stand_ins.insert(expanded.clone());
        Some(expanded)
    }

    /// Whether `value` holds a string an unset variable's stand-in made (`Ctx::stand_ins`).
    pub(crate) fn stands_in(&self, value: &Json) -> bool {
        match value {
            Json::String(s) => self.stand_ins.contains(s),
            Json::Array(items) => items.iter().any(|v| self.stands_in(v)),
            Json::Object(members) => members.values().any(|v| self.stands_in(v)),
            _ => false,
        }
    }

    /// Whether this compile is for a dry run (`validate`, `check`, `test`): nothing it compiles
    /// is served or called.
    pub(crate) fn dry_run(&self) -> bool {
        matches!(self.mode, EnvMode::Lenient)
    }

    /// `Some` (with what to add to the warning) when an unset variable in the part being
    /// compiled is only a warning; `None` when it is an error.
    fn unset_is_fine(&self) -> Option<&'static str> {
        match (self.mode, self.part) {
            (EnvMode::Lenient, _) => Some(""),
            (EnvMode::Strict { sources: false, .. }, Part::Sources) => {
                Some("; only a warning: this process serves no webhooks, so it does not read it")
            }
            (EnvMode::Strict { dispatch: false, .. }, Part::Dispatch) => {
                Some("; only a warning: this process runs no dispatcher, so it does not read it")
            }
            (EnvMode::Strict { .. }, _) => None,
        }
    }

    /// `name` as an HTTP header name (lower-cased: header names ignore case); `None` (and a
    /// diagnostic at `at`) when HTTP does not allow it.
    pub(crate) fn header_name(&mut self, name: &str, at: Location) -> Option<http::HeaderName> {
        match http::HeaderName::from_bytes(name.as_bytes()) {
            Ok(h) => Some(h),
            Err(_) => {
                self.error(at, format!("'{name}' is not a valid header name"));
                None
            }
        }
    }

    /// Whether what compiles reads consumed events (a dispatcher's), not webhooks.
    pub(crate) fn reads_events(&self) -> bool {
        matches!(self.part, Part::Dispatch)
    }

    /// A query parameter's name, where one can be read: a webhook's URL (an event consumed
    /// from Kafka has none).
    pub(crate) fn query_name(&mut self, name: &Text, what: &str) -> Option<String> {
        if self.reads_events() {
            let message = format!(
                "{what}: 'query' reads a webhook's URL query, and an event consumed from Kafka has none (its Kafka headers: 'header')"
            );
            self.error(name.referenced, message);
            return None;
        }
        if name.value.is_empty() {
            self.error(name.referenced, format!("{what}: 'query' names no parameter"));
            return None;
        }
        Some(name.value.clone())
    }

    pub(crate) fn path(&mut self, text: &Text) -> Option<jsonpath::Path> {
        self.path_at(&text.value, text.referenced)
    }

    pub(crate) fn path_at(&mut self, text: &str, at: Location) -> Option<jsonpath::Path> {
        let path = jsonpath::Path::parse(text).map_err(|e| self.error(at, e)).ok()?;
        match jsonpath::root_relative(text) {
            Some(plain) => self.root_paths.push(plain.to_owned()),
            None => {
                if let Some(paths) = &mut self.source_paths {
                    paths.push(text.to_owned());
                }
            }
        }
        Some(path)
    }

    /// The compiled schema at `text` (relative to the config's folder), loaded once per file.
    pub(crate) fn schema(&mut self, text: &Text) -> Option<Arc<Schema>> {
        let name = self.text(text)?;
        let file = self.dir.join(&name);
        if let Some(s) = self.schemas.get(&file) {
            return Some(s.clone());
        }
        match Schema::load(&name, &file) {
            Ok(s) => {
                let s = Arc::new(s);
                self.schemas.insert(file, s.clone());
                Some(s)
            }
            Err(e) => {
                self.error(text.referenced, e);
                None
            }
        }
    }
}
