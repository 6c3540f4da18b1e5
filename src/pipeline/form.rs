//! A dispatch call's `form:` body: named values as `application/x-www-form-urlencoded` fields,
//! the way APIs that take forms (Twilio's, Stripe's) read them.
//!
//! A string, number or boolean is one field; an array repeats its field for each item (Twilio's
//! `MediaUrl`); an object's members are `name[member]` (Stripe's `metadata[order_id]`), and an
//! array's object or array items `name[index]`; null leaves the field out.

use serde_json::Value as Json;

/// The fields of `values`, in order, as names and texts.
pub fn fields<'a>(values: impl IntoIterator<Item = (&'a str, &'a Json)>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, value) in values {
        flatten(name.to_owned(), value, &mut out);
    }
    out
}

/// The body sent for `values`.
pub fn encode<'a>(values: impl IntoIterator<Item = (&'a str, &'a Json)>) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(fields(values)).finish()
}

/// The fields of a form body, decoded, sorted by name (fields of one name keep their order):
/// two bodies with the same fields in another order read the same to a server.
pub fn decoded(body: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> =
        form_urlencoded::parse(body.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs
}

fn flatten(name: String, value: &Json, out: &mut Vec<(String, String)>) {
    match value {
        Json::Null => {}
        Json::String(text) => out.push((name, text.clone())),
        Json::Bool(_) | Json::Number(_) => out.push((name, value.to_string())),
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Json::Object(_) | Json::Array(_) => flatten(format!("{name}[{i}]"), item, out),
                    scalar => flatten(name.clone(), scalar, out),
                }
            }
        }
        Json::Object(members) => {
            for (member, item) in members {
                flatten(format!("{name}[{member}]"), item, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn form(fields: &[(&str, Json)]) -> String {
        encode(fields.iter().map(|(k, v)| (*k, v)))
    }

    #[test]
    fn scalars_are_fields_in_order_and_null_is_left_out() {
        let body = form(&[
            ("To", json!("+15551234567")),
            ("Body", json!("Order 12345 & co: shipped")),
            ("n", json!(2.5)),
            ("ok", json!(true)),
            ("x", json!(null)),
        ]);
        assert_eq!(body, "To=%2B15551234567&Body=Order+12345+%26+co%3A+shipped&n=2.5&ok=true");
    }

    #[test]
    fn arrays_repeat_the_field_and_objects_nest_in_brackets() {
        let body = form(&[
            ("MediaUrl", json!(["https://a/1.png", "https://a/2.png"])),
            ("metadata", json!({"order_id": "12345", "tags": ["a", "b"]})),
            ("items", json!([{"price": "price_1", "quantity": 2}, ["x"]])),
        ]);
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(body.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let want = [
            ("MediaUrl", "https://a/1.png"),
            ("MediaUrl", "https://a/2.png"),
            ("metadata[order_id]", "12345"),
            ("metadata[tags]", "a"),
            ("metadata[tags]", "b"),
            ("items[0][price]", "price_1"),
            ("items[0][quantity]", "2"),
            ("items[1]", "x"),
        ];
        let want: Vec<(String, String)> = want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(pairs, want);
    }

    #[test]
    fn decoded_fields_do_not_depend_on_their_order() {
        let a = form(&[("b", json!("2")), ("a", json!(["1", "3"]))]);
        let b = form(&[("a", json!(["1", "3"])), ("b", json!("2"))]);
        assert_ne!(a, b);
        assert_eq!(decoded(&a), decoded(&b));
        assert_ne!(decoded(&a), decoded(&form(&[("a", json!(["3", "1"])), ("b", json!("2"))])));
    }
}
