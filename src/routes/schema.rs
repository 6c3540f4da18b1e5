//! JSON Schemas from `schemas/`: loaded once, compiled to validators (draft 2020-12 by
//! default, formats checked, `$ref` between files resolved from disk at compile time: never
//! over the network, see `schema_refs`).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value as Json;

use crate::text::clip_owned;

/// A compiled schema and the file it came from.
pub struct Schema {
    /// The path as written in the config (for messages).
    pub name: String,
    pub file: PathBuf,
    /// The schema document itself (read by the static contract check).
    pub document: Json,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema").field("file", &self.file).finish()
    }
}

/// At most this many violations are reported for one instance.
pub const MAX_VIOLATIONS: usize = 20;

/// An instance with more values than this gets only its first violation listed.
pub const LISTED_UP_TO_VALUES: usize = 2_000;

/// At most this many characters of a violation's path or message are reported (a message can
/// quote the instance's member names: `additionalProperties`).
pub const MAX_VIOLATION_TEXT: usize = 256;

/// One reason an instance does not satisfy a schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON Pointer into the instance, e.g. `/data/object/amount_total` (empty for the root).
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    /// `/items: value has less than 1 item` (`/` for the root), as a log line shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.path.is_empty() { "/" } else { &self.path };
        write!(f, "{at}: {}", self.message)
    }
}

/// Violations as one line: each as [`Violation`] shows it, `; ` between them.
pub fn one_line(violations: &[Violation]) -> String {
    violations.iter().map(Violation::to_string).collect::<Vec<_>>().join("; ")
}

/// How every schema is compiled: draft 2020-12 unless it says otherwise, formats checked.
fn options() -> jsonschema::ValidationOptions<'static> {
    jsonschema::options().with_draft(jsonschema::Draft::Draft202012).should_validate_formats(true)
}

/// The keywords that judge a value by itself: no member, item, reference or other value.
const VALUE_KEYWORDS: [&str; 9] = [
    "pattern",
    "minLength",
    "maxLength",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
];

/// What the keywords of schema node `node` that judge a value by itself ([`VALUE_KEYWORDS`])
/// say against `value`, compiled as the pipeline compiles schemas: for the static contract
/// check of a constant. Empty when they allow it, or when the node has none of them.
pub fn value_breaks(node: &Json, value: &Json) -> Vec<String> {
    let Some(node) = node.as_object() else { return Vec::new() };
    let only: serde_json::Map<String, Json> =
        VALUE_KEYWORDS.iter().filter_map(|k| Some((k.to_string(), node.get(*k)?.clone()))).collect();
    if only.is_empty() {
        return Vec::new();
    }
    // A keyword the validator refuses (a broken pattern) is the schema's error, reported when it loads.
    let Ok(validator) = options().build(&Json::Object(only)) else { return Vec::new() };
    validator.iter_errors(value).map(|e| clip_owned(e.to_string(), MAX_VIOLATION_TEXT)).collect()
}

impl Schema {
    /// Reads and compiles the schema at `file`; `name` is how the config wrote it.
    pub fn load(name: &str, file: &Path) -> Result<Schema, String> {
        let document = super::schema_refs::read(file)?;
        let absolute = std::path::absolute(file).map_err(|e| format!("schema '{}': {e}", file.display()))?;
        // `$ref`s lead to files only: beside this one, or where its `$id` puts them.
        let files = super::schema_refs::Files::new(&document, &absolute);
        let options = options().with_base_uri(super::schema_refs::file_uri(&absolute)).with_retriever(files);
        let validator = options.build(&document).map_err(|e| {
            // Where in the schema file: `/properties/type/type` (none for a whole-file error).
            let path = e.instance_path().as_str();
            let at = if path.is_empty() { String::new() } else { format!(" at {path}") };
            // A misspelt type name (`"strin"`) gets the one meant.
            const TYPES: [&str; 7] = ["array", "boolean", "integer", "null", "number", "object", "string"];
            let written = document.pointer(path).and_then(Json::as_str).filter(|_| path.ends_with("/type"));
            let near = written.and_then(|w| super::did_you_mean::nearest(w, TYPES.into_iter()));
            let near = near.map(|n| format!("; did you mean \"{n}\"?")).unwrap_or_default();
            // A `$ref` that leads nowhere: which, and why (`schema_refs::Files` says).
            if let jsonschema::error::ValidationErrorKind::Referencing(jsonschema::ReferencingError::Unretrievable {
                uri,
                source,
            }) = e.kind()
            {
                return format!("schema '{}' is invalid: its $ref to '{uri}' leads nowhere: {source}", file.display());
            }
            format!("schema '{}' is invalid{at}: {e}{near}", file.display())
        })?;
        Ok(Schema { name: name.to_owned(), file: file.to_path_buf(), document, validator })
    }

    /// The first [`MAX_VIOLATIONS`] violations of `instance`, in the validator's order, each
    /// path and message clipped to [`MAX_VIOLATION_TEXT`] characters, and whether there may
    /// be more. Valid instances (the hot path) take the validator's short-circuiting check,
    /// which builds no error values. The validator builds every error before it hands out
    /// the first (some hundreds of bytes each), so an instance of more than
    /// [`LISTED_UP_TO_VALUES`] values gets only its first violation, found by the
    /// short-circuiting `validate`: a million wrong items must not cost a million errors.
    pub fn violations(&self, instance: &Json) -> (Vec<Violation>, bool) {
        if self.validator.is_valid(instance) {
            return (Vec::new(), false);
        }
        let violation = |e: jsonschema::ValidationError| Violation {
            path: clip_owned(e.instance_path().to_string(), MAX_VIOLATION_TEXT),
            message: clip_owned(e.masked().to_string(), MAX_VIOLATION_TEXT),
        };
        let (mut found, more) = if more_values_than(instance, LISTED_UP_TO_VALUES) {
            (self.validator.validate(instance).err().map(violation).into_iter().collect(), true)
        } else {
            let mut found: Vec<Violation> =
                self.validator.iter_errors(instance).take(MAX_VIOLATIONS + 1).map(violation).collect();
            let more = found.len() > MAX_VIOLATIONS;
            found.truncate(MAX_VIOLATIONS);
            (found, more)
        };
        // The validator's checks agree on the verdict; should they ever not, an invalid
        // instance is still refused (an empty list reads as valid to the caller).
        if found.is_empty() {
            found.push(Violation { path: String::new(), message: "the value does not match the schema".into() });
        }
        (found, more)
    }

    /// As [`Schema::violations`], for a consumer: an object's top-level members that the
    /// schema's root `properties` do not list are left out before the check, so an event that
    /// gained a property (its producer was upgraded first) still matches a closed schema
    /// (`additionalProperties: false`). Every listed property is checked as written. A schema
    /// without root `properties`, or with `patternProperties` there, checks the whole event.
    pub fn violations_of_listed(&self, instance: &Json) -> (Vec<Violation>, bool) {
        if self.validator.is_valid(instance) {
            return (Vec::new(), false);
        }
        let root = &self.document;
        let (Some(listed), Json::Object(members)) = (root.get("properties").and_then(Json::as_object), instance) else {
            return self.violations(instance);
        };
        if root.get("patternProperties").is_some() {
            return self.violations(instance);
        }
        let view = members.iter().filter(|(k, _)| listed.contains_key(*k)).map(|(k, v)| (k.clone(), v.clone()));
        self.violations(&Json::Object(view.collect()))
    }

    pub fn is_valid(&self, instance: &Json) -> bool {
        self.validator.is_valid(instance)
    }
}

/// Whether `value` holds more than `limit` values (itself included); stops counting there.
fn more_values_than(value: &Json, limit: usize) -> bool {
    let mut count = 0;
    let mut pending = vec![value];
    while let Some(v) = pending.pop() {
        count += 1;
        if count > limit {
            return true;
        }
        match v {
            Json::Array(items) => pending.extend(items),
            Json::Object(members) => pending.extend(members.values()),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn violations_read_as_one_line_in_the_log() {
        let v = |path: &str, message: &str| Violation { path: path.into(), message: message.into() };
        let listed = [v("/items", "value has less than 1 item"), v("", "\"x\" is a required property")];
        assert_eq!(one_line(&listed), "/items: value has less than 1 item; /: \"x\" is a required property");
        assert_eq!(one_line(&[]), "");
    }

    #[test]
    fn a_consumer_ignores_members_a_closed_schema_does_not_list() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("event.json");
        std::fs::write(
            &file,
            r#"{"type": "object", "additionalProperties": false, "required": ["id"],
                "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}}"#,
        )
        .unwrap();
        let schema = Schema::load("event.json", &file).unwrap();
        assert!(schema.violations_of_listed(&json!({"id": "a", "added_later": [1, 2]})).0.is_empty());
        assert!(!schema.violations(&json!({"id": "a", "added_later": [1, 2]})).0.is_empty(), "the producer's view");
        let (found, _) = schema.violations_of_listed(&json!({"n": "x", "added_later": 1}));
        let paths: Vec<&str> = found.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths.len(), 2, "{found:?}");
        assert!(paths.contains(&"") && paths.contains(&"/n"), "required id and the type of n: {found:?}");
        assert!(!schema.violations_of_listed(&json!([1])).0.is_empty(), "not an object: checked whole");
    }

    #[test]
    fn reports_every_violation_with_its_path_and_resolves_refs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("money.json"), r#"{"type": "integer", "minimum": 0}"#).unwrap();
        std::fs::write(
            dir.path().join("main.json"),
            r#"{"type": "object", "required": ["id"],
                "properties": {"amount": {"$ref": "money.json"}, "at": {"type": "string", "format": "date-time"}}}"#,
        )
        .unwrap();
        let schema = Schema::load("main.json", &dir.path().join("main.json")).unwrap();
        let (found, more) = schema.violations(&json!({"amount": "x", "at": "yesterday"}));
        assert!(!more);
        let paths: Vec<_> = found.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(paths.contains(&"") && paths.contains(&"/amount") && paths.contains(&"/at"), "{paths:?}");
        assert!(schema.is_valid(&json!({"id": 1, "amount": 5, "at": "2023-11-06T14:30:00Z"})));
    }

    #[test]
    fn a_page_of_violations_each_clipped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.json");
        std::fs::write(&file, r#"{"type": "array", "items": {"type": "string"}}"#).unwrap();
        let items = Schema::load("s.json", &file).unwrap();
        let (found, more) = items.violations(&json!(vec![1; 100]));
        assert_eq!((found.len(), more), (MAX_VIOLATIONS, true));
        assert_eq!(found[19].path, "/19");
        let (found, more) = items.violations(&json!(vec![1; MAX_VIOLATIONS]));
        assert_eq!((found.len(), more), (MAX_VIOLATIONS, false));
        // Past the values listed in full: the first violation only.
        let (found, more) = items.violations(&json!(vec![1; 1_000_000]));
        assert_eq!((found.len(), more), (1, true));
        assert_eq!(found[0].path, "/0");
        assert!(more_values_than(&json!([[1, 2], {"a": 3}]), 5) && !more_values_than(&json!([[1, 2], {"a": 3}]), 6));
        std::fs::write(&file, r#"{"type": "object", "properties": {"a": {}}, "additionalProperties": false}"#).unwrap();
        let closed = Schema::load("s.json", &file).unwrap();
        let name = "n".repeat(10_000);
        let (found, _) = closed.violations(&json!({ name.clone(): 1 }));
        assert_eq!(found[0].message.chars().count(), MAX_VIOLATION_TEXT + 1, "{}", found[0].message);
        assert!(found[0].message.ends_with('…'));
        std::fs::write(&file, r#"{"additionalProperties": {"type": "string"}}"#).unwrap();
        let (found, _) = Schema::load("s.json", &file).unwrap().violations(&json!({ name: 1 }));
        assert_eq!(found[0].path, format!("/{}…", "n".repeat(MAX_VIOLATION_TEXT - 1)));
    }

    #[test]
    fn missing_ref_target_is_a_load_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.json"), r#"{"$ref": "nowhere.json"}"#).unwrap();
        let err = Schema::load("main.json", &dir.path().join("main.json")).unwrap_err();
        let missing = dir.path().join("nowhere.json");
        let want = format!(
            "is invalid: its $ref to 'file://{}' leads nowhere: cannot read schema '{}': No such file",
            missing.display(),
            missing.display()
        );
        assert!(err.contains(&want), "{err}");
    }
}
