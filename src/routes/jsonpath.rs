//! The JSONPath engine, behind one small type so it can be swapped (serde_json_path, RFC 9535).
//!
//! Most mappings are singular paths (`$.data.object.id`, `$.items[0]`): those are also kept
//! as a list of steps and walked directly, which skips the engine's node list (about 5× faster
//! per lookup). Every other path goes through the engine. A path written `$$…` is the same
//! path read from the payload's root where `$` is a selected value (`Path::reads_root`).

use serde_json::Value as Json;
use serde_json_path::JsonPath;

/// A parsed JSONPath and the text it was written as (for messages).
#[derive(Clone, Debug)]
pub struct Path {
    text: String,
    compiled: JsonPath,
    /// The same path as direct steps, when it is a chain of names and non-negative indices.
    singular: Option<Vec<Step>>,
    /// Written `$$…`: it reads the whole payload (or event) even where `$` is a value that a
    /// `for_each` or an `each` selected, as JSONata's `$$` does.
    root: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Name(String),
    Index(usize),
}

impl Path {
    /// Parses `text`; the error is a human sentence.
    pub fn parse(text: &str) -> Result<Path, String> {
        let (plain, root) = match root_relative(text) {
            Some(plain) => (plain, true),
            None => (text, false),
        };
        JsonPath::parse(plain)
            .map(|compiled| Path { text: text.to_owned(), compiled, singular: singular_steps(plain), root })
            .map_err(|e| format!("invalid JSONPath \"{text}\": {e}"))
    }

    /// Whether it reads the whole payload (`$$…`) rather than the value in hand.
    pub fn reads_root(&self) -> bool {
        self.root
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

    /// Every node the path selects, in document order (nulls too).
    pub fn select<'v>(&self, value: &'v Json) -> Vec<&'v Json> {
        self.compiled.query(value).all()
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// The path `text` written `$$…` (the payload's root, wherever it is read), as the `$…` path
/// it is from there; `None` for any other path.
pub fn root_relative(text: &str) -> Option<&str> {
    text.strip_prefix('$').filter(|rest| rest.starts_with('$'))
}

/// One segment of a simple path: a member name, an index, or `*` (`Index(None)`).
#[derive(Clone, Debug, PartialEq)]
pub enum Segment {
    Name(String),
    Index(Option<usize>),
}

/// Splits a path made only of `.name`, `['name']`, `[n]` (n ≥ 0) and `.*`/`[*]` segments;
/// `None` for anything else (filters, slices, descendants, negative indices, escapes). Also
/// read by the static contract check, which follows such paths through a schema.
pub fn segments(text: &str) -> Option<Vec<Segment>> {
    let mut rest = text.strip_prefix('$')?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let name = &r[..end];
            let name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii();
            match name {
                "*" => out.push(Segment::Index(None)),
                _ if name.starts_with(|c: char| c.is_ascii_digit()) || !name.chars().all(name_char) => return None,
                "" => return None,
                _ => out.push(Segment::Name(name.to_owned())),
            }
            rest = &r[end..];
        } else {
            let r = rest.strip_prefix('[')?;
            let (inner, after) = r.split_once(']')?;
            let inner = inner.trim();
            let quoted = inner.strip_prefix('\'').and_then(|k| k.strip_suffix('\''));
            if inner == "*" {
                out.push(Segment::Index(None));
            } else if let Some(name) = quoted.filter(|k| !k.contains(['\\', '\''])) {
                out.push(Segment::Name(name.to_owned()));
            } else if !inner.is_empty()
                && inner.bytes().all(|b| b.is_ascii_digit())
                && (inner == "0" || !inner.starts_with('0'))
            {
                out.push(Segment::Index(Some(inner.parse().ok()?)));
            } else {
                return None;
            }
            rest = after;
        }
    }
    Some(out)
}

/// The steps of a path that selects at most one node (no wildcard), for the direct walk.
fn singular_steps(text: &str) -> Option<Vec<Step>> {
    segments(text)?
        .into_iter()
        .map(|s| match s {
            Segment::Name(n) => Some(Step::Name(n)),
            Segment::Index(i) => i.map(Step::Index),
        })
        .collect()
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
    fn a_double_dollar_path_is_the_same_path_read_from_the_root() {
        let doc = json!({"a": {"b": 1}});
        for text in ["$$.a.b", "$$['a'].b", "$$..b"] {
            let path = Path::parse(text).unwrap();
            assert!(path.reads_root() && path.as_str() == text, "{text}");
            assert_eq!(path.find(&doc), Some(&json!(1)), "{text}");
        }
        assert!(!Path::parse("$.a").unwrap().reads_root());
        assert!(Path::parse("$$$.a").unwrap_err().starts_with("invalid JSONPath \"$$$.a\""));
    }

    #[test]
    fn singular_paths_are_walked_directly_and_agree_with_the_engine() {
        let doc = json!({"a": {"b": [null, 7, {"c": "x"}], "é_1": 2}, "n": null, "0": 1, "s": "str"});
        let fast = [
            "$",
            "$.a",
            "$.a.b[1]",
            "$.a.b[2].c",
            "$.a.b[0]",
            "$.a.b[9]",
            "$.n",
            "$.a.é_1",
            "$.s.x",
            "$.s[0]",
            "$['0']",
            "$.a[ 1 ]",
            "$['a']['b'][2]",
        ];
        let engine = ["$.a.b[-1]", "$.a.b[*]", "$..c", "$.a.b[01]", "$ .a", "$.0", "$['a\\'b']", "$.a.b[0:1]"];
        for text in fast.iter().chain(&engine) {
            let Ok(path) = Path::parse(text) else { continue };
            assert_eq!(path.singular.is_some(), fast.contains(text), "{text}");
            let by_engine = path.compiled.query(&doc).all().into_iter().find(|v| !v.is_null());
            assert_eq!(path.find(&doc), by_engine, "{text}");
        }
    }
}
