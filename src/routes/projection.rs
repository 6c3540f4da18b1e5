//! Which parts of a payload a source reads: worked out once, when the routes compile, from
//! its inbound schema and every JSONPath of its rules (a `for_each` or a value's `each` keeps
//! the values it selects whole: the paths under it read those, not the payload). The parser
//! builds only those parts
//! (the rest of the body is checked for JSON syntax and skipped): the shipped 2.7 KB Stripe
//! checkout becomes a tree of 20 values instead of 99.
//!
//! The analysis is conservative: any schema keyword that can look at an object's other
//! members (`additionalProperties`, `enum`, `minProperties`, …), any keyword it does not
//! know, any `$ref` it cannot follow and any path it cannot split keeps the whole value at
//! that place. So validating, matching and mapping the projected document gives the same
//! answer as the whole one; `tests/it/projection.rs` and the `shipped_routes` fuzz target check
//! exactly that.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;

use super::jsonpath::{self, Segment};
use super::schema_refs;

/// The part of a value that must be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Projection {
    /// The whole value.
    All,
    /// If the value is an object: only these members (sorted by name), each with its own
    /// projection (none keeps just `{}`, so presence and type still show). Any other value
    /// is kept whole.
    Fields(Vec<(String, Projection)>),
}

impl Default for Projection {
    fn default() -> Self {
        Projection::Fields(Vec::new())
    }
}

impl Projection {
    /// Widens `self` to also keep what `other` keeps.
    pub fn merge(&mut self, other: Projection) {
        match (&mut *self, other) {
            (Projection::All, _) => {}
            (_, Projection::All) => *self = Projection::All,
            (Projection::Fields(mine), Projection::Fields(theirs)) => {
                for (k, p) in theirs {
                    member(mine, &k).merge(p);
                }
            }
        }
    }

    /// The projection of member `key`, created empty when missing; `None` under `All`.
    fn member(&mut self, key: &str) -> Option<&mut Projection> {
        match self {
            Projection::All => None,
            Projection::Fields(fields) => Some(member(fields, key)),
        }
    }

    /// The projection of member `key` of an object (a linear scan: these lists are short,
    /// and comparing lengths and first bytes skips most names before a full comparison).
    pub fn of_member<'p>(fields: &'p [(String, Projection)], key: &str) -> Option<&'p Projection> {
        let (len, first) = (key.len(), key.as_bytes().first());
        fields.iter().find(|(k, _)| k.len() == len && k.as_bytes().first() == first && k == key).map(|(_, p)| p)
    }

    /// Whether the projection names more than `limit` members, at every level together.
    fn larger_than(&self, limit: usize) -> bool {
        let mut count = 0;
        let mut pending = vec![self];
        while let Some(p) = pending.pop() {
            let Projection::Fields(fields) = p else { continue };
            count += fields.len();
            if count > limit {
                return true;
            }
            pending.extend(fields.iter().map(|(_, p)| p));
        }
        false
    }

    /// Keeps what the JSONPath `text` can select (and everything under it).
    pub fn read_path(&mut self, text: &str) {
        let Some(segments) = jsonpath::segments(text) else {
            *self = Projection::All;
            return;
        };
        let mut at = self;
        for seg in segments {
            match seg {
                Segment::Name(name) => match at.member(&name) {
                    Some(next) => at = next,
                    None => return,
                },
                // Arrays are always kept whole, and a wildcard reads every member.
                Segment::Index(_) => break,
            }
        }
        *at = Projection::All;
    }

    /// Keeps what the schema in `file` (its document given) looks at.
    pub fn read_schema(&mut self, document: &Json, file: &Path) {
        let mut walk = SchemaWalk {
            files: HashMap::new(),
            followed: HashMap::new(),
            walking: HashMap::new(),
            depth: 0,
            at_root: true,
        };
        walk.files.insert(file.to_path_buf(), Some(Arc::new(document.clone())));
        self.merge(walk.node(document, file));
    }
}

/// The entry for `key`, inserted empty (in order) when missing.
fn member<'f>(fields: &'f mut Vec<(String, Projection)>, key: &str) -> &'f mut Projection {
    let i = match fields.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
        Ok(i) => i,
        Err(i) => {
            fields.insert(i, (key.to_owned(), Projection::default()));
            i
        }
    };
    &mut fields[i].1
}

/// How many times a schema that refers back into itself is followed down before the value
/// there is kept whole.
const UNROLL: usize = 8;

/// The most members (at every level) a `$ref`'s projection keeps before it keeps the whole value.
const MAX_MEMBERS: usize = 1024;

/// Following a schema and the files its `$ref`s lead to.
struct SchemaWalk {
    /// Schema files read so far (`None`: unreadable).
    files: HashMap<PathBuf, Option<Arc<Json>>>,
    /// What each `$ref` target (file, pointer) looks at, worked out once for each number of
    /// times it is already being walked: a schema whose `$ref`s lead to one place many ways is
    /// walked once, not once a way, and one that refers back into itself is followed
    /// `UNROLL` times down, then kept whole.
    followed: HashMap<(PathBuf, String, usize), Projection>,
    /// How many times each target is being walked now (its `$ref`s on the way here).
    walking: HashMap<(PathBuf, String), usize>,
    depth: usize,
    /// The next node walked is a file's root, where an `$id` that keeps the file's folder only
    /// names the file: the validator reads the `$ref`s relative to it from the files beside it,
    /// as this walk does (`schema_refs::id_keeps_refs`). Another `$id`, or one further in, moves
    /// the base of the `$ref`s under it: the value there is kept whole.
    at_root: bool,
}

/// Keywords that say nothing about an object's members (they apply to other types, or are
/// annotations): an object is kept as far as other keywords need it.
const NOT_ABOUT_MEMBERS: &[&str] = &[
    "$schema",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$defs",
    "definitions",
    "format",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "items",
    "prefixItems",
    "additionalItems",
    "minItems",
    "maxItems",
    "uniqueItems",
    "contains",
    "minContains",
    "maxContains",
    "unevaluatedItems",
];

impl SchemaWalk {
    /// What one schema node looks at, for an instance at its place.
    fn node(&mut self, schema: &Json, file: &Path) -> Projection {
        let at_root = std::mem::take(&mut self.at_root);
        let Json::Object(keywords) = schema else {
            // `true` and `false` accept or refuse anything, whatever it holds.
            return Projection::default();
        };
        if self.depth > 32 {
            return Projection::All;
        }
        self.depth += 1;
        let mut out = Projection::default();
        for (keyword, value) in keywords {
            let part = match keyword.as_str() {
                k if NOT_ABOUT_MEMBERS.contains(&k) => Some(Projection::default()),
                "$id" if at_root && schema_refs::id_keeps_refs(schema) => Some(Projection::default()),
                "type" => is_type_names(value).then(Projection::default),
                "properties" => value.as_object().map(|props| {
                    let mut p = Projection::default();
                    for (name, sub) in props {
                        let sub = self.node(sub, file);
                        if let Some(m) = p.member(name) {
                            m.merge(sub);
                        }
                    }
                    p
                }),
                "required" => names(value).map(|names| fields_present(&names)),
                "dependentRequired" => value.as_object().and_then(|deps| {
                    let mut all: Vec<&str> = deps.keys().map(String::as_str).collect();
                    for listed in deps.values() {
                        all.extend(names(listed)?);
                    }
                    Some(fields_present(&all))
                }),
                "allOf" | "anyOf" | "oneOf" => value.as_array().map(|branches| {
                    let mut p = Projection::default();
                    for b in branches {
                        p.merge(self.node(b, file));
                    }
                    p
                }),
                "not" | "if" | "then" | "else" => Some(self.node(value, file)),
                "$ref" => value.as_str().and_then(|r| self.reference(r, file)),
                // `const`, `enum`, `additionalProperties`, `propertyNames`, `$id`, unknown…
                _ => None,
            };
            out.merge(part.unwrap_or(Projection::All));
            if out == Projection::All {
                break;
            }
        }
        self.depth -= 1;
        out
    }

    /// What the target of a `$ref` looks at; `None` when it cannot be followed here (a URL
    /// outside the file's `$id` folder, an anchor, an unreadable file), which keeps everything.
    fn reference(&mut self, reference: &str, file: &Path) -> Option<Projection> {
        let (file_part, pointer) = reference.split_once('#').unwrap_or((reference, ""));
        if pointer.contains('%') || !(pointer.is_empty() || pointer.starts_with('/')) {
            return None;
        }
        let target = if file_part.is_empty() {
            file.to_path_buf()
        } else {
            let here = self.files.get(file).cloned().flatten()?;
            schema_refs::ref_file(file_part, &here, file)?
        };
        let place = (target.clone(), pointer.to_owned());
        let inside = self.walking.get(&place).copied().unwrap_or(0);
        if inside >= UNROLL {
            return Some(Projection::All);
        }
        let key = (target.clone(), pointer.to_owned(), inside);
        if let Some(known) = self.followed.get(&key) {
            return Some(known.clone());
        }
        let doc = self
            .files
            .entry(target.clone())
            .or_insert_with(|| schema_refs::read(&target).ok().map(Arc::new))
            .clone()?;
        // An `$id` on the way to the target (below the file's root) moves the base its own
        // `$ref`s resolve against.
        let mut schema = &*doc;
        for token in pointer.split('/').skip(1) {
            let token = token.replace("~1", "/").replace("~0", "~");
            schema = match schema {
                Json::Object(m) => m.get(&token)?,
                Json::Array(a) => a.get(token.parse::<usize>().ok()?)?,
                _ => return None,
            };
            if schema.get("$id").is_some() {
                return None;
            }
        }
        self.at_root = pointer.is_empty();
        self.walking.insert(place.clone(), inside + 1);
        let projection = self.node(schema, &target);
        self.walking.insert(place, inside);
        // Schemas that refer to one place under many names (a tree's node under each of its
        // children) would make a projection as large as all the ways down: past a size, the
        // value is kept whole.
        let projection = if projection.larger_than(MAX_MEMBERS) { Projection::All } else { projection };
        self.followed.insert(key, projection.clone());
        Some(projection)
    }
}

fn is_type_names(value: &Json) -> bool {
    match value {
        Json::String(_) => true,
        Json::Array(items) => items.iter().all(Json::is_string),
        _ => false,
    }
}

fn names(value: &Json) -> Option<Vec<&str>> {
    value.as_array()?.iter().map(Json::as_str).collect()
}

fn fields_present(names: &[&str]) -> Projection {
    let mut p = Projection::default();
    for n in names {
        p.member(n);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(pairs: &[(&str, Projection)]) -> Projection {
        let mut p = Projection::default();
        for (k, sub) in pairs {
            p.member(k).unwrap().merge(sub.clone());
        }
        p
    }

    fn from_schema(schema: Json) -> Projection {
        let mut p = Projection::default();
        p.read_schema(&schema, Path::new("/nowhere/schema.json"));
        p
    }

    #[test]
    fn paths_keep_what_they_select() {
        let mut p = Projection::default();
        p.read_path("$.data.object.id");
        p.read_path("$.data.items[0].x");
        p.read_path("$['type']");
        let object = fields(&[("id", Projection::All)]);
        let data = fields(&[("object", object), ("items", Projection::All)]);
        assert_eq!(p, fields(&[("data", data), ("type", Projection::All)]));
        p.read_path("$..id");
        assert_eq!(p, Projection::All, "a path that cannot be split reads everything");
        let mut root = Projection::default();
        root.read_path("$");
        assert_eq!(root, Projection::All);
    }

    #[test]
    fn schemas_keep_members_their_keywords_look_at() {
        let p = from_schema(json!({
            "type": "object", "required": ["id", "data"], "title": "x",
            "properties": {
                "id": {"type": "string", "pattern": "^evt_"},
                "kind": {"enum": ["a", "b"]},
                "data": {"properties": {"meta": {"additionalProperties": {"type": "string"}}}}
            },
            "allOf": [{"if": {"properties": {"kind": {"const": "a"}}}, "then": {"required": ["extra"]}}]
        }));
        let data = fields(&[("meta", Projection::All)]);
        let want = fields(&[
            ("id", Projection::default()),
            ("kind", Projection::All),
            ("data", data),
            ("extra", Projection::default()),
        ]);
        assert_eq!(p, want);
    }

    #[test]
    fn keywords_about_other_members_or_unknown_keep_everything() {
        for schema in [
            json!({"additionalProperties": false}),
            json!({"minProperties": 1}),
            json!({"const": {}}),
            json!({"propertyNames": {"maxLength": 3}}),
            json!({"x-custom": 1}),
            json!({"$ref": "https://example.com/s.json"}),
            json!({"$ref": "#anchor"}),
            json!({"$ref": "missing.json"}),
            json!({"type": {"type": "string"}}),
            json!({"required": "id"}),
        ] {
            assert_eq!(from_schema(schema.clone()), Projection::All, "{schema}");
        }
        assert_eq!(from_schema(json!(true)), Projection::default());
    }

    /// A file's `$id` names it (its `$ref`s are read from the files beside it either way); one
    /// further in moves the base of the `$ref`s under it, so what is under it is kept whole.
    #[test]
    fn an_id_at_a_files_root_hides_nothing_and_one_further_in_keeps_its_value() {
        let dir = tempfile::tempdir().unwrap();
        let money = r#"{"$id": "https://example.com/money.json", "properties": {"cents": {"type": "integer"}}}"#;
        std::fs::write(dir.path().join("money.json"), money).unwrap();
        let root = json!({
            "$id": "https://example.com/main.json",
            "$defs": {"inner": {"$id": "https://example.com/inner.json", "properties": {"x": {"type": "string"}}}},
            "properties": {"amount": {"$ref": "money.json"}, "inner": {"$ref": "#/$defs/inner"},
                           "nested": {"$id": "nested.json", "properties": {"y": {"type": "string"}}}}
        });
        let mut p = Projection::default();
        p.read_schema(&root, &dir.path().join("main.json"));
        let want = fields(&[
            ("amount", fields(&[("cents", Projection::default())])),
            ("inner", Projection::All),
            ("nested", Projection::All),
        ]);
        assert_eq!(p, want);
        let moved = json!({"$id": "elsewhere/main.json", "properties": {"id": {"type": "string"}}});
        let mut p = Projection::default();
        p.read_schema(&moved, &dir.path().join("main.json"));
        assert_eq!(p, Projection::All);
    }

    #[test]
    fn refs_are_followed_within_and_between_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("money.json"), r#"{"properties": {"cents": {"const": 1}}}"#).unwrap();
        let root = json!({
            "$defs": {"node": {"properties": {"next": {"$ref": "#/$defs/node"}}}},
            "properties": {"amount": {"$ref": "money.json"}, "list": {"$ref": "#/$defs/node"}}
        });
        let mut p = Projection::default();
        p.read_schema(&root, &dir.path().join("main.json"));
        let Projection::Fields(top) = &p else { panic!("{p:?}") };
        assert_eq!(Projection::of_member(top, "amount"), Some(&fields(&[("cents", Projection::All)])));
        // A schema that refers to itself ends, deep down, in keeping everything.
        let mut depth = 0;
        let mut at = Projection::of_member(top, "list").unwrap();
        while let Projection::Fields(f) = at {
            at = Projection::of_member(f, "next").unwrap();
            depth += 1;
        }
        assert!(depth > 5, "{depth}");
    }

    #[test]
    fn a_ref_reached_many_ways_is_walked_once() {
        // Each level refers to the next three times: 3^15 ways down, one walk of each level.
        let mut defs = serde_json::Map::new();
        for i in 0..15 {
            let next = json!({"$ref": format!("#/$defs/l{}", i + 1)});
            let level = json!({"allOf": [next, next, next], "properties": {format!("p{i}"): {"type": "string"}}});
            defs.insert(format!("l{i}"), level);
        }
        defs.insert("l15".into(), json!({"properties": {"end": {"type": "string"}}}));
        let root = json!({"$defs": defs, "$ref": "#/$defs/l0"});
        let mut p = Projection::default();
        p.read_schema(&root, Path::new("main.json"));
        let Projection::Fields(top) = &p else { panic!("{p:?}") };
        assert_eq!(top.len(), 16, "{p:?}");
        assert_eq!(Projection::of_member(top, "end"), Some(&Projection::default()));
        // Each level is the next one under two names (2^30 members all told): kept whole past a size.
        let mut defs = serde_json::Map::new();
        for i in 0..30 {
            let next = json!({"$ref": format!("#/$defs/l{}", i + 1)});
            defs.insert(format!("l{i}"), json!({"properties": {"a": next, "b": next}}));
        }
        defs.insert("l30".into(), json!({"properties": {"end": {"type": "string"}}}));
        let mut p = Projection::default();
        p.read_schema(&json!({"$defs": defs, "$ref": "#/$defs/l0"}), Path::new("main.json"));
        assert!(!p.larger_than(4 * MAX_MEMBERS), "{p:?}");
        assert!(matches!(&p, Projection::Fields(f) if f.len() == 2), "{p:?}");
        // A tree whose node refers to itself ten times: followed down as a list is, each level once.
        let kids: serde_json::Map<String, serde_json::Value> =
            (0..10).map(|i| (format!("k{i}"), json!({"$ref": "#/$defs/node"}))).collect();
        let root = json!({"$defs": {"node": {"properties": kids}}, "$ref": "#/$defs/node"});
        let mut p = Projection::default();
        p.read_schema(&root, Path::new("main.json"));
        let Projection::Fields(top) = &p else { panic!("{p:?}") };
        assert!(matches!(Projection::of_member(top, "k9"), Some(Projection::Fields(f)) if f.len() == 10), "{p:?}");
    }
}
