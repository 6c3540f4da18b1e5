//! The JSONPath engine, behind one small type so it can be swapped (serde_json_path, RFC 9535).

use serde_json::Value as Json;
use serde_json_path::JsonPath;

/// A parsed JSONPath and the text it was written as (for messages).
#[derive(Clone, Debug)]
pub struct Path {
    text: String,
    compiled: JsonPath,
}

impl Path {
    /// Parses `text`; the error is a human sentence.
    pub fn parse(text: &str) -> Result<Path, String> {
        JsonPath::parse(text)
            .map(|compiled| Path { text: text.to_owned(), compiled })
            .map_err(|e| format!("invalid JSONPath \"{text}\": {e}"))
    }

    /// The first node the path selects that is not `null`.
    pub fn find<'v>(&self, value: &'v Json) -> Option<&'v Json> {
        self.compiled.query(value).all().into_iter().find(|v| !v.is_null())
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
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
}
