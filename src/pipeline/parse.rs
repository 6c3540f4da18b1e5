//! Parsing a body once, building only what the source reads ([`Projection`]). The whole body
//! must still be UTF-8 and JSON; members nothing reads are checked for syntax and skipped,
//! not built. A form-encoded body is first made JSON: the JSON in the source's `form_field`
//! (GitHub's form content type), or an object of its fields (`form_fields`).

use std::borrow::Cow;
use std::fmt;

use http::HeaderMap;
use http::header::{CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value as Json};

use crate::routes::Form;
use crate::routes::projection::Projection;

/// The media type of form-encoded bodies.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// The media type of a `Content-Type` value: lower-cased, without parameters.
pub fn media_type(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    Some(text.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

/// The JSON a request carries: its body, or, when the source reads forms and the body is
/// form-encoded, the JSON the form holds. The error is a human sentence.
pub fn json_of<'b>(body: &'b [u8], headers: &HeaderMap, form: Option<&Form>) -> Result<Cow<'b, [u8]>, String> {
    let Some(form) = form else { return Ok(Cow::Borrowed(body)) };
    if headers.get(CONTENT_TYPE).and_then(media_type).as_deref() != Some(FORM) {
        return Ok(Cow::Borrowed(body));
    }
    let field = match form {
        Form::Field(field) => field,
        Form::Fields => return Ok(Cow::Owned(fields_as_json(body))),
    };
    let value = form_urlencoded::parse(body).find(|(k, _)| k == field).map(|(_, v)| v);
    match value {
        Some(Cow::Borrowed(v)) => Ok(Cow::Borrowed(v.as_bytes())),
        Some(Cow::Owned(v)) => Ok(Cow::Owned(v.into_bytes())),
        None => Err(format!("the form has no '{field}' field")),
    }
}

/// A form's fields as a JSON object, in their order: each a string, or an array of strings
/// where a field repeats. Bytes that are not UTF-8 become U+FFFD, as browsers decode forms.
fn fields_as_json(body: &[u8]) -> Vec<u8> {
    let mut object = Map::new();
    for (name, value) in form_urlencoded::parse(body) {
        let value = Json::String(value.into_owned());
        match object.get_mut(name.as_ref()) {
            None => {
                object.insert(name.into_owned(), value);
            }
            Some(Json::Array(values)) => values.push(value),
            Some(first) => *first = Json::Array(vec![first.take(), value]),
        }
    }
    // Serializing a map of strings cannot fail.
    serde_json::to_vec(&object).unwrap_or_default()
}

/// The parts of `body` that `projection` keeps; the error is a human sentence.
pub fn parse(body: &[u8], projection: &Projection) -> Result<Json, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let doc = Keep(projection).deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(doc)
}

/// Builds a value as far as its projection says.
struct Keep<'p>(&'p Projection);

impl<'de> DeserializeSeed<'de> for Keep<'_> {
    type Value = Json;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        match self.0 {
            Projection::All => Json::deserialize(d),
            Projection::Fields(fields) => d.deserialize_any(Members(fields)),
        }
    }
}

/// An object keeps the listed members; any other value is built whole (as `Json` would).
struct Members<'p>(&'p [(String, Projection)]);

impl<'de> Visitor<'de> for Members<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Number::from_f64(v).map_or(Json::Null, Json::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<Json>()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key)? {
            match Projection::of_member(self.0, &key) {
                // As in `Json`, the last of duplicate members wins.
                Some(p) => {
                    let value = map.next_value_seed(Keep(p))?;
                    out.insert(key.into_owned(), value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Json::Object(out))
    }
}

/// A member name, borrowed from the body when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn projection(paths: &[&str]) -> Projection {
        let mut p = Projection::default();
        for path in paths {
            p.read_path(path);
        }
        p
    }

    #[test]
    fn builds_only_what_is_read_and_everything_under_it() {
        let body = br#"{"id": "e1", "big": {"x": [1, 2, {"deep": "\u00e9"}], "y": "skip \"me\""},
                        "data": {"object": {"id": 7, "meta": {"a": "b"}, "n": null}, "other": 1.5}, "id": "e2"}"#;
        let doc = parse(body, &projection(&["$.id", "$.data.object.meta", "$.data.object.n", "$.data.gone"])).unwrap();
        assert_eq!(doc, json!({"id": "e2", "data": {"object": {"meta": {"a": "b"}, "n": null}}}));
        let whole: Json = serde_json::from_slice(body).unwrap();
        assert_eq!(parse(body, &Projection::All).unwrap(), whole);
    }

    #[test]
    fn values_that_are_not_objects_are_kept_whole() {
        let p = projection(&["$.data.object.id"]);
        assert_eq!(parse(br#"{"data": [1, {"object": 2}]}"#, &p).unwrap(), json!({"data": [1, {"object": 2}]}));
        assert_eq!(parse(br#"{"data": "text"}"#, &p).unwrap(), json!({"data": "text"}));
        assert_eq!(parse(b"-1.5e3", &p).unwrap(), json!(-1500.0));
        assert_eq!(
            parse(br#"{"d\u0061ta": {"object": {"id": 1}}}"#, &p).unwrap(),
            json!({"data": {"object": {"id": 1}}})
        );
    }

    #[test]
    fn a_form_encoded_body_carries_its_json_in_the_named_field() {
        let form: HeaderMap =
            [(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"))]
                .into_iter()
                .collect();
        let body = b"x=1&payload=%7B%22ref%22%3A+%22a+b%22%7D";
        let payload = Some(&Form::Field("payload".into()));
        assert_eq!(json_of(body, &form, payload).unwrap().as_ref(), br#"{"ref": "a b"}"#);
        assert_eq!(json_of(b"x=1", &form, payload).unwrap_err(), "the form has no 'payload' field");
        // Without `form_field`, or with a JSON body, the body is the JSON.
        assert_eq!(json_of(body, &form, None).unwrap().as_ref(), body);
        let json: HeaderMap = [(CONTENT_TYPE, HeaderValue::from_static("application/json"))].into_iter().collect();
        assert!(matches!(json_of(b"{}", &json, payload).unwrap(), Cow::Borrowed(b"{}")));
        assert!(matches!(json_of(b"{}", &HeaderMap::new(), payload).unwrap(), Cow::Borrowed(b"{}")));
    }

    #[test]
    fn a_form_encoded_body_can_be_its_fields() {
        let form: HeaderMap =
            [(CONTENT_TYPE, HeaderValue::from_static("Application/X-WWW-Form-Urlencoded"))].into_iter().collect();
        let fields = Some(&Form::Fields);
        let json = |body: &[u8]| -> Json { serde_json::from_slice(&json_of(body, &form, fields).unwrap()).unwrap() };
        // Slack's slash command, as Slack sends it.
        let body =
            b"token=x&command=%2Fdeploy&text=api+v1.2+%E2%9C%93&response_url=https%3A%2F%2Fhooks.slack.com%2Fc%2F1";
        assert_eq!(
            json(body),
            json!({"token": "x", "command": "/deploy", "text": "api v1.2 \u{2713}", "response_url": "https://hooks.slack.com/c/1"})
        );
        // A repeated field is an array, in the order sent; empty and valueless fields are "".
        assert_eq!(json(b"to=a&x&to=b&to=c&y="), json!({"to": ["a", "b", "c"], "x": "", "y": ""}));
        assert_eq!(json(b""), json!({}));
        // Not UTF-8: replaced, never refused (the signature was over the bytes as sent).
        assert_eq!(json(b"name=%FF"), json!({"name": "\u{fffd}"}));
        // A JSON body is still read as JSON.
        assert!(matches!(json_of(b"{}", &HeaderMap::new(), fields).unwrap(), Cow::Borrowed(b"{}")));
    }

    #[test]
    fn skipped_members_must_still_be_json() {
        let p = projection(&["$.id"]);
        for bad in [
            &br#"{"id": 1, "x": [1, }"#[..],
            br#"{"id": 1, "x": "tab	in string"}"#,
            br#"{"id": 1, "x": "\q"}"#,
            br#"{"id": 1} trailing"#,
            b"{\"id\": 1, \"x\": \"\xff\"}",
            b"",
        ] {
            assert!(parse(bad, &p).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse(b"{\"id\": 1, \"x\": \"\xff\"}", &p).unwrap_err().contains("UTF-8"));
    }
}
