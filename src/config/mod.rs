//! Config: read `routes.yaml` and the files it includes, parse them into the [`model`], report
//! problems as [`Diagnostics`].
//!
//! Parsing is strict (unknown keys, wrong types and duplicate keys are errors with
//! `file:line:col`); interpretation of values is left to [`crate::routes::compile`].

pub mod diagnostic;
pub mod env;
mod include;
pub mod model;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use include::Included;
pub use model::RoutesFile;
use model::{DispatcherConfig, SourceConfig, TestCaseConfig};
use serde_saphyr::Location;

/// A parsed config file and where it came from (relative paths in it resolve against `dir`),
/// with the files it includes.
#[derive(Debug)]
pub struct Loaded {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub file: RoutesFile,
    pub included: Vec<Included>,
}

/// One file's share of the config: the main file's, or an included one's.
#[derive(Clone, Copy)]
pub struct Unit<'a> {
    pub path: &'a Path,
    pub dir: &'a Path,
    pub sources: &'a [SourceConfig],
    pub dispatch: &'a [DispatcherConfig],
    pub tests: &'a [TestCaseConfig],
}

impl Loaded {
    /// The main file's share, then each included file's, in include order.
    pub fn units(&self) -> Vec<Unit<'_>> {
        let main = Unit {
            path: &self.path,
            dir: &self.dir,
            sources: &self.file.sources,
            dispatch: &self.file.dispatch,
            tests: &self.file.tests,
        };
        let included = self.included.iter().map(|i| Unit {
            path: &i.path,
            dir: &i.dir,
            sources: &i.file.sources,
            dispatch: &i.file.dispatch,
            tests: &i.file.tests,
        });
        std::iter::once(main).chain(included).collect()
    }

    /// Every file the config is read from: the main one, then the included ones.
    pub fn files(&self) -> Vec<&Path> {
        std::iter::once(self.path.as_path()).chain(self.included.iter().map(|i| i.path.as_path())).collect()
    }
}

/// The JSON Schema of `routes.yaml`, generated from the model (for editors; committed as
/// `schemas/routes.schema.json`, and a test keeps the two equal).
pub fn json_schema() -> String {
    let mut schema = schemars::schema_for!(RoutesFile);
    schema.insert("title".into(), "Switchyard routes.yaml".into());
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

/// Reads and parses the config at `path`.
pub fn load(path: &Path) -> Result<Loaded, Diagnostics> {
    let text = crate::files::read_to_string(path).map_err(|e| {
        let mut diags = Diagnostics::default();
        diags.error(path, Location::UNKNOWN, format!("cannot read config: {e}"));
        diags
    })?;
    let file = parse(path, &text)?;
    let dir = folder(path);
    let included = include::read(path, &file)?;
    Ok(Loaded { path: path.to_path_buf(), dir, file, included })
}

/// The folder relative paths in the file at `path` resolve against.
pub(crate) fn folder(path: &Path) -> PathBuf {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()
}

/// Parses config text; `path` only names the file in diagnostics.
pub fn parse(path: &Path, text: &str) -> Result<RoutesFile, Diagnostics> {
    parse_as(path, text)
}

pub(crate) fn parse_as<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, Diagnostics> {
    serde_saphyr::from_str::<T>(text).map_err(|e| {
        let mut diags = Diagnostics::default();
        let at = e.location().unwrap_or(Location::UNKNOWN);
        let mut message = humanize(&e.without_snippet().to_string());
        // `{ path: $.items[0].id }`: YAML reads `[` inside `{ … }` as the start of a list.
        let line = text.lines().nth((at.line() as usize).saturating_sub(1)).unwrap_or("");
        if message.contains("flow") && line.contains("$") && line.contains('[') {
            message.push_str(
                ": a JSONPath with brackets inside { … } or [ … ] must be quoted, e.g. path: \"$.items[0].id\"",
            );
        }
        // A test case's payload written inline under `payload:`, which names a file.
        let key = line.trim_start().trim_start_matches("- ");
        if message.starts_with("expected string") && key.starts_with("payload:") {
            message.push_str(": 'payload' names a JSON file; write the payload itself under 'body:'");
        }
        diags.error(path, at, message);
        diags
    })
}

/// Turns serde's wording into the one diagnostics use: quotes instead of backticks, no
/// trailing position (the diagnostic carries it), no library hints.
fn humanize(raw: &str) -> String {
    let msg = match raw.rfind(" at line ") {
        Some(at) => &raw[..at],
        None => raw,
    };
    let msg = msg.replace('`', "'");
    // serde-saphyr's limits on hostile documents (deep nesting, alias bombs), in its Debug form.
    if let Some(limit) = msg.strip_prefix("budget breached: ") {
        if let Some(depth) = limit.strip_prefix("Depth { depth: ").and_then(|d| d.strip_suffix(" }")) {
            return format!("the YAML nests {depth} levels deep: more than any config needs, so it is not read");
        }
        return format!("the YAML is over a limit of what is read ({limit}): no config needs this much");
    }
    if let Some(key) = msg.strip_prefix("duplicate mapping key: ") {
        let key = key.split(',').next().unwrap_or(key);
        return format!("duplicate key '{key}': each key may appear once in a mapping");
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(text: &str) -> String {
        parse(Path::new("routes.yaml"), text).unwrap_err().list[0].to_string()
    }

    #[test]
    fn hostile_nesting_is_refused_in_words() {
        let deep = format!("tests: [{{ name: n, body: {}1{} }}]", "[".repeat(200), "]".repeat(200));
        assert!(first(&deep).contains("the YAML nests 65 levels deep: more than any config needs"), "{}", first(&deep));
    }

    #[test]
    fn unknown_key_names_file_line_col_and_the_right_keys() {
        let msg = first("sources:\n  - name: s\n    paht: /x\n");
        assert!(msg.starts_with("routes.yaml:3:5: unknown field 'paht', expected one of"), "{msg}");
        assert!(msg.contains("path"), "{msg}");
    }

    #[test]
    fn a_payload_written_inline_is_told_to_go_under_body() {
        for case in ["  - name: n\n    payload: { a: 1 }\n", "  - payload: [1]\n    name: n\n"] {
            let msg = first(&format!("tests:\n{case}"));
            assert!(msg.ends_with("'payload' names a JSON file; write the payload itself under 'body:'"), "{msg}");
        }
    }

    #[test]
    fn an_unquoted_jsonpath_with_brackets_in_a_flow_mapping_is_told_to_be_quoted() {
        let msg =
            first("sources:\n  - name: s\n    rules:\n      - when: { all: [{ path: $.actions[0].id, equals: a }] }\n");
        assert!(msg.starts_with("routes.yaml:4:"), "{msg}");
        assert!(
            msg.ends_with(
                "a JSONPath with brackets inside { … } or [ … ] must be quoted, e.g. path: \"$.items[0].id\""
            ),
            "{msg}"
        );
    }

    #[test]
    fn wrong_type_and_duplicate_key() {
        let msg = first("kafka:\n  publish_timeout_ms: soon\n");
        assert!(msg.starts_with("routes.yaml:2:23: "), "{msg}");
        let msg = first("kafka: {}\nkafka: {}\n");
        assert_eq!(msg, "routes.yaml:2:1: duplicate key 'kafka': each key may appear once in a mapping");
    }
}
