//! The JSONPath engine, behind one small type so it can be swapped (serde_json_path, RFC 9535).
//!
//! Most mappings are singular paths (`$.data.object.id`, `$.items[0]`): those are also kept
//! as a list of steps and walked directly, which skips the engine's node list (about 5× faster
//! per lookup). Every other path goes through the engine.

use serde_json::Value as Json;
use serde_json_path::JsonPath;

/// A parsed JSONPath and the text it was written as (for messages).
#[derive(Clone, Debug)]
pub struct Path {
    text: String,
    compiled: JsonPath,
    /// The same path as direct steps, when it is a chain of names and non-negative indices.
    singular: Option<Vec<Step>>,
}

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Name(String),
    Index(usize),
}

impl Path {
    /// Parses `text`; the error is a human sentence.
    pub fn parse(text: &str) -> Result<Path, String> {
        JsonPath::parse(text)
            .map(|compiled| Path { text: text.to_owned(), compiled, singular: singular_steps(text) })
            .map_err(|e| format!("invalid JSONPath \"{text}\": {e}"))
    }

    /// The first node the path selects that is not `null`.
    pub fn find<'v>(&self, value: &'v Json) -> Option<&'v Json> {
        if let Some(steps) = &self.singular {
            let found = steps.iter().try_fold(value, |v, step| match step {
                Step::Name(name) => v.as_object()?.get(name),
                Step::Index(i) => v.as_array()?.get(*i),
            });
            return found.filter(|v| !v.is_null());
        }
        self.compiled.query(value).all().into_iter().find(|v| !v.is_null())
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// `$` followed only by `.name` (RFC 9535 member-name shorthand) and `[n]` (n ≥ 0, no
/// leading zero) segments, as steps; `None` for anything else (the engine handles it).
fn singular_steps(text: &str) -> Option<Vec<Step>> {
    let mut rest = text.strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let name = &r[..end];
            let mut chars = name.chars();
            let first = chars.next()?;
            let name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii();
            if first.is_ascii_digit() || !name_char(first) || !chars.all(name_char) {
                return None;
            }
            steps.push(Step::Name(name.to_owned()));
            rest = &r[end..];
        } else {
            let r = rest.strip_prefix('[')?;
            let (index, after) = r.split_once(']')?;
            let digits = !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit());
            if !digits || (index.len() > 1 && index.starts_with('0')) {
                return None;
            }
            steps.push(Step::Index(index.parse().ok()?));
            rest = after;
        }
    }
    Some(steps)
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_first_non_null_and_rejects_bad_syntax() {
        let doc = json!({"a": {"b": [null, 7]}, "n": null});
        assert_eq!(Path::parse("$.a.b[1]").unwrap().find(&doc), Some(&json!(7)));
        assert_eq!(Path::parse("$.a.b[*]").unwrap().find(&doc), Some(&json!(7)));
        assert_eq!(Path::parse("$.n").unwrap().find(&doc), None);
        assert_eq!(Path::parse("$.missing").unwrap().find(&doc), None);
        assert!(Path::parse("$.a[").unwrap_err().starts_with("invalid JSONPath \"$.a[\""));
    }

    #[test]
    fn singular_paths_are_walked_directly_and_agree_with_the_engine() {
        let doc = json!({"a": {"b": [null, 7, {"c": "x"}], "é_1": 2}, "n": null, "0": 1, "s": "str"});
        let fast = ["$", "$.a", "$.a.b[1]", "$.a.b[2].c", "$.a.b[0]", "$.a.b[9]", "$.n", "$.a.é_1", "$.s.x", "$.s[0]"];
        let engine = ["$.a.b[-1]", "$['0']", "$.a.b[*]", "$..c", "$.a.b[01]", "$ .a", "$.a[ 1 ]", "$.0"];
        for text in fast.iter().chain(&engine) {
            let Ok(path) = Path::parse(text) else { continue };
            assert_eq!(path.singular.is_some(), fast.contains(text), "{text}");
            let by_engine = path.compiled.query(&doc).all().into_iter().find(|v| !v.is_null());
            assert_eq!(path.find(&doc), by_engine, "{text}");
        }
    }
}
