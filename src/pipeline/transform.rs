//! Transform steps applied to one value: case, white space, regular-expression replacement,
//! split and join, lookup, text ↔ number, rounding and scaling, minor units → decimal, epoch →
//! RFC 3339, embedded JSON, a keyed hash.

use serde_json::{Number, Value as Json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::map::Input;
use crate::routes::expr::Step;
use crate::text::{QUOTED_VALUE, clip};

/// Applies `step` to `value`; `input` is what the value was read from (for `minor_units`).
/// Every step builds a new value from a borrowed one, so a value found in the document is
/// never copied just to be transformed.
pub fn apply(step: &Step, value: &Json, input: Input) -> Result<Json, String> {
    match step {
        Step::Upper => string(value, "upper").map(|s| Json::String(s.to_uppercase())),
        Step::Lower => string(value, "lower").map(|s| Json::String(s.to_lowercase())),
        Step::ToString => Ok(Json::String(scalar_text(value).ok_or("to_string needs a scalar value")?)),
        Step::ToNumber => match value {
            Json::Number(_) => Ok(value.clone()),
            Json::String(s) => serde_json::from_str::<Number>(s.trim()).map(Json::Number).map_err(|_| {
                format!("to_number: '{}' is not a number (JSON's form: 100, -2.5, 1e3)", clip(s, QUOTED_VALUE))
            }),
            other => Err(format!("to_number needs a number written as a string, not {}", what(other))),
        },
        Step::Lookup { table, default } => {
            let found = match value {
                Json::String(s) => table.get(s.as_str()),
                other => table.get(&scalar_text(other).ok_or("lookup needs a scalar value")?),
            };
            match (found, default) {
                (Some(found), _) => Ok(found.clone()),
                (None, Some(d)) => Ok(d.clone()),
                (None, None) => {
                    let key = scalar_text(value).unwrap_or_default();
                    Err(format!("'{}' is not in the lookup table and no default is given", clip(&key, QUOTED_VALUE)))
                }
            }
        }
        Step::MinorUnits { currency } => {
            let code = currency
                .find(input.for_path(currency))
                .and_then(Json::as_str)
                .ok_or_else(|| format!("minor_units: no currency code at {currency}"))?;
            let amount =
                integer(value).ok_or_else(|| format!("minor_units needs an integer amount, not {}", what(value)))?;
            minor_to_major(amount, code)
        }
        Step::HmacSha256 { key: None } => Err("hmac_sha256: its secret is not set here".into()),
        Step::HmacSha256 { key: Some(k) } => {
            let text = match value {
                Json::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
                other => scalar_text(other).ok_or("hmac_sha256 needs a scalar value")?.into(),
            };
            Ok(Json::String(hex::encode(aws_lc_rs::hmac::sign(&k.key, text.as_bytes()))))
        }
        Step::EpochToRfc3339 => {
            let secs =
                integer(value).ok_or_else(|| format!("epoch_to_rfc3339 needs integer seconds, not {}", what(value)))?;
            epoch_to_rfc3339(secs).map(Json::String)
        }
        Step::EpochMsToRfc3339 => {
            let ms = integer(value)
                .ok_or_else(|| format!("epoch_ms_to_rfc3339 needs integer milliseconds, not {}", what(value)))?;
            let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .map_err(|_| format!("{ms} ms is out of the timestamp range"))?;
            at.format(&Rfc3339).map(Json::String).map_err(|e| e.to_string())
        }
        Step::ToUtc => {
            let text = string(value, "to_utc")?;
            let at = OffsetDateTime::parse(text, &Rfc3339)
                .map_err(|_| format!("to_utc: '{}' is not an RFC 3339 timestamp", clip(text, QUOTED_VALUE)))?;
            at.to_offset(time::UtcOffset::UTC).format(&Rfc3339).map(Json::String).map_err(|e| e.to_string())
        }
        Step::Trim => string(value, "trim").map(|s| Json::String(s.trim().to_owned())),
        Step::Replace { pattern, with } => {
            string(value, "replace").map(|s| Json::String(pattern.replace_all(s, with.as_str()).into_owned()))
        }
        Step::Split(by) => {
            let text = string(value, "split")?;
            Ok(Json::Array(text.split(by.as_str()).map(|part| Json::String(part.to_owned())).collect()))
        }
        Step::Join(by) => {
            let Json::Array(items) = value else {
                return Err(format!("join needs an array, not {}", what(value)));
            };
            let texts: Option<Vec<String>> = items.iter().map(scalar_text).collect();
            Ok(Json::String(texts.ok_or("join needs an array of strings, numbers or booleans")?.join(by)))
        }
        Step::Round(places) => round(number(value, "round")?, *places),
        Step::Multiply(by) => {
            // An integer times an integral factor stays an integer while it fits.
            if let (Some(i), true) = (value.as_i64(), by.fract() == 0.0 && by.abs() < 9.0e15)
                && let Some(product) = i.checked_mul(*by as i64)
            {
                return Ok(Json::Number(product.into()));
            }
            finite(number(value, "multiply")? * by, "multiply")
        }
        Step::Divide(by) => finite(number(value, "divide")? / by, "divide"),
        Step::ParseJson => {
            let text = string(value, "parse_json")?;
            serde_json::from_str(text).map_err(|e| format!("parse_json: the string is not JSON ({e})"))
        }
    }
}

/// A number's value as a double, or an error naming the step.
fn number(value: &Json, step: &str) -> Result<f64, String> {
    value.as_f64().ok_or_else(|| format!("{step} needs a number, not {}", what(value)))
}

/// A double as a JSON number; infinity and NaN are refused, naming the step.
fn finite(n: f64, step: &str) -> Result<Json, String> {
    Number::from_f64(n).map(Json::Number).ok_or_else(|| format!("{step}: the result is not a finite number"))
}

/// `n` rounded to `places` decimals (a half away from zero); with no places, an integer.
fn round(n: f64, places: u32) -> Result<Json, String> {
    if places == 0 {
        let r = n.round();
        if (-9.0e18..9.0e18).contains(&r) {
            return Ok(Json::Number((r as i64).into()));
        }
        return finite(r, "round");
    }
    let scale = 10f64.powi(places as i32);
    let scaled = n * scale;
    // Past 2^53 a double has no fractional digits left to round.
    if !scaled.is_finite() || scaled.abs() >= 9.0e15 {
        return finite(n, "round");
    }
    finite(scaled.round() / scale, "round")
}

/// An integer as JSON Schema counts them: `100`, and also `100.0` or `-0` (a number with no
/// fractional part), so a value an `integer` schema admits is never refused here.
fn integer(value: &Json) -> Option<i64> {
    let n = value.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    // Every such double is an exact integer; -2^63 is the least i64, 2^63 is past the greatest.
    (f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f)).then_some(f as i64)
}

/// A number as written, any other value by its kind: an error never quotes a long string.
fn what(value: &Json) -> String {
    match value {
        Json::Number(n) => n.to_string(),
        Json::String(_) => "a string".into(),
        Json::Bool(_) => "a boolean".into(),
        Json::Null => "null".into(),
        Json::Array(_) => "an array".into(),
        Json::Object(_) => "an object".into(),
    }
}

fn string<'v>(value: &'v Json, step: &str) -> Result<&'v str, String> {
    value.as_str().ok_or_else(|| format!("{step} needs a string"))
}

/// The text of a string, number or boolean.
pub fn scalar_text(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// ISO 4217 minor-unit exponent of a currency code (case-insensitive); 2 for any other
/// well-formed code, as ISO 4217 assigns to the great majority of currencies.
pub fn currency_exponent(code: &str) -> Option<u32> {
    let code: [u8; 3] = code.as_bytes().try_into().ok()?;
    if !code.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let upper = code.map(|b| b.to_ascii_uppercase());
    Some(match &upper {
        b"BIF" | b"CLP" | b"DJF" | b"GNF" | b"ISK" | b"JPY" | b"KMF" | b"KRW" | b"PYG" | b"RWF" | b"UGX" | b"UYI"
        | b"VND" | b"VUV" | b"XAF" | b"XOF" | b"XPF" => 0,
        b"BHD" | b"IQD" | b"JOD" | b"KWD" | b"LYD" | b"OMR" | b"TND" => 3,
        b"CLF" | b"UYW" => 4,
        _ => 2,
    })
}

/// `amount` minor units of `code` as a JSON number in major units (an integer for
/// zero-decimal currencies).
pub fn minor_to_major(amount: i64, code: &str) -> Result<Json, String> {
    let exp = currency_exponent(code)
        .ok_or_else(|| format!("'{}' is not an ISO 4217 currency code", clip(code, QUOTED_VALUE)))?;
    if exp == 0 {
        return Ok(Json::Number(amount.into()));
    }
    if amount.unsigned_abs() > (1u64 << 53) {
        return Err(format!("amount {amount} is too large to convert exactly"));
    }
    // Dividing an exactly representable integer by a power of ten gives the double closest to
    // the decimal, which prints as that decimal.
    let major = amount as f64 / 10f64.powi(exp as i32);
    Number::from_f64(major).map(Json::Number).ok_or_else(|| "amount is not finite".to_string())
}

/// Unix seconds as RFC 3339 UTC, e.g. `2023-11-06T14:30:00Z`.
pub fn epoch_to_rfc3339(secs: i64) -> Result<String, String> {
    let at = OffsetDateTime::from_unix_timestamp(secs).map_err(|_| format!("{secs} is out of the timestamp range"))?;
    at.format(&Rfc3339).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::map::Headers;
    use serde_json::json;

    /// [`super::apply`] reading `doc`, without headers.
    fn apply(step: &Step, value: &Json, doc: &Json) -> Result<Json, String> {
        super::apply(step, value, Input::new(doc, Headers::Kafka { text: &[], binary: &[] }))
    }

    #[test]
    fn minor_units_follow_iso_4217() {
        assert_eq!(minor_to_major(10000, "usd").unwrap().to_string(), "100.0");
        assert_eq!(minor_to_major(1234, "EUR").unwrap().to_string(), "12.34");
        assert_eq!(minor_to_major(5000, "jpy").unwrap(), json!(5000));
        assert_eq!(minor_to_major(1000, "KWD").unwrap().to_string(), "1.0");
        assert_eq!(minor_to_major(1234, "kwd").unwrap().to_string(), "1.234");
        assert_eq!(minor_to_major(1, "usd").unwrap().to_string(), "0.01");
        assert_eq!(minor_to_major(-250, "gbp").unwrap().to_string(), "-2.5");
        assert_eq!(minor_to_major(12345, "CLF").unwrap().to_string(), "1.2345");
        assert!(minor_to_major(1, "US").is_err());
        assert!(minor_to_major(1, "U$D").is_err());
        assert!(minor_to_major(i64::MAX, "usd").is_err());
    }

    #[test]
    fn text_steps_trim_replace_split_and_join() {
        let none = json!({});
        let step = |s: Step, v: Json| apply(&s, &v, &none);
        assert_eq!(step(Step::Trim, json!("  ord_1 \n")), Ok(json!("ord_1")));
        let strip = Step::Replace { pattern: regex::Regex::new("^cus_").unwrap(), with: String::new() };
        assert_eq!(step(strip, json!("cus_123")), Ok(json!("123")));
        let swap = Step::Replace { pattern: regex::Regex::new(r"(\w+)@(\w+)").unwrap(), with: "$2 at $1, $$1".into() };
        assert_eq!(step(swap, json!("ana@shop")), Ok(json!("shop at ana, $1")));
        assert_eq!(step(Step::Split(",".into()), json!("a,b,,c")), Ok(json!(["a", "b", "", "c"])));
        assert_eq!(step(Step::Split(",".into()), json!("")), Ok(json!([""])));
        assert_eq!(step(Step::Join(", ".into()), json!(["a", 1, true])), Ok(json!("a, 1, true")));
        assert_eq!(step(Step::Join("".into()), json!([])), Ok(json!("")));
        assert_eq!(
            step(Step::Join(",".into()), json!([{}])),
            Err("join needs an array of strings, numbers or booleans".into())
        );
        assert_eq!(step(Step::Join(",".into()), json!("a")), Err("join needs an array, not a string".into()));
        assert_eq!(step(Step::Trim, json!(1)), Err("trim needs a string".into()));
    }

    #[test]
    fn number_steps_round_scale_and_parse() {
        let none = json!({});
        let step = |s: Step, v: Json| apply(&s, &v, &none);
        assert_eq!(step(Step::Round(2), json!(12.3456)), Ok(json!(12.35)));
        assert_eq!(step(Step::Round(2), json!(-0.125)), Ok(json!(-0.13)), "a half away from zero");
        assert_eq!(step(Step::Round(0), json!(2.5)), Ok(json!(3)));
        assert_eq!(step(Step::Round(3), json!(7)), Ok(json!(7.0)));
        assert_eq!(step(Step::Round(2), json!(1e300)), Ok(json!(1e300)), "nothing left to round");
        assert_eq!(step(Step::Multiply(100.0), json!(12)), Ok(json!(1200)), "an integer stays one");
        assert_eq!(step(Step::Multiply(100.0), json!(12.34)), Ok(json!(1234.0)));
        assert_eq!(step(Step::Multiply(0.5), json!(3)), Ok(json!(1.5)));
        assert_eq!(step(Step::Multiply(10.0), json!(i64::MAX)), Ok(json!(9.223372036854776e19)));
        assert_eq!(
            step(Step::Multiply(1e308), json!(1e308)),
            Err("multiply: the result is not a finite number".into())
        );
        assert_eq!(step(Step::Divide(100.0), json!(1234)), Ok(json!(12.34)));
        assert_eq!(step(Step::Divide(4.0), json!("8")), Err("divide needs a number, not a string".into()));
        assert_eq!(step(Step::ParseJson, json!(r#"{"order": [1, "a"]}"#)), Ok(json!({"order": [1, "a"]})));
        let broken = step(Step::ParseJson, json!("{order")).unwrap_err();
        assert!(broken.starts_with("parse_json: the string is not JSON (key must be a string"), "{broken}");
    }

    #[test]
    fn epoch_seconds_become_rfc3339_utc() {
        assert_eq!(epoch_to_rfc3339(1699281000).unwrap(), "2023-11-06T14:30:00Z");
        assert_eq!(epoch_to_rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert!(epoch_to_rfc3339(i64::MAX).is_err());
    }

    /// RFC 4231's second test case, and a number hashed as the text JSON writes.
    #[test]
    fn a_keyed_hash_is_the_hex_hmac_sha256_of_the_text() {
        let input = json!({});
        let jefe = Step::HmacSha256 { key: Some(Box::new(crate::routes::verify::SigningKey::new(b"Jefe".to_vec()))) };
        assert_eq!(
            apply(&jefe, &json!("what do ya want for nothing?"), &input).unwrap(),
            json!("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
        assert_eq!(apply(&jefe, &json!(12345), &input).unwrap(), apply(&jefe, &json!("12345"), &input).unwrap());
        assert_eq!(apply(&jefe, &json!({"a": 1}), &input).unwrap_err(), "hmac_sha256 needs a scalar value");
        let unset = Step::HmacSha256 { key: None };
        assert_eq!(apply(&unset, &json!("x"), &input).unwrap_err(), "hmac_sha256: its secret is not set here");
    }

    #[test]
    fn case_lookup_and_to_string() {
        let input = json!({});
        assert_eq!(apply(&Step::Upper, &json!("usd"), &input).unwrap(), json!("USD"));
        assert_eq!(apply(&Step::Lower, &json!("USD"), &input).unwrap(), json!("usd"));
        assert!(apply(&Step::Upper, &json!(5), &input).is_err());
        assert_eq!(apply(&Step::ToString, &json!(5), &input).unwrap(), json!("5"));
        assert_eq!(apply(&Step::ToNumber, &json!("100.00"), &input).unwrap().to_string(), "100.0");
        assert_eq!(apply(&Step::ToNumber, &json!(" 12 "), &input).unwrap(), json!(12));
        assert_eq!(apply(&Step::ToNumber, &json!("-2.5e1"), &input).unwrap(), json!(-25.0));
        assert_eq!(apply(&Step::ToNumber, &json!(7), &input).unwrap(), json!(7));
        for text in ["1,000.00", "", "NaN", "1e400", "0x10", "+1"] {
            let refused = apply(&Step::ToNumber, &json!(text), &input).unwrap_err();
            assert!(refused.starts_with(&format!("to_number: '{text}' is not a number")), "{refused}");
        }
        let refused = apply(&Step::ToNumber, &json!(true), &input).unwrap_err();
        assert_eq!(refused, "to_number needs a number written as a string, not a boolean");
        let table = [("card".to_string(), json!("Credit Card"))].into_iter().collect();
        let lookup = Step::Lookup { table, default: None };
        assert_eq!(apply(&lookup, &json!("card"), &input).unwrap(), json!("Credit Card"));
        assert!(apply(&lookup, &json!("cash"), &input).unwrap_err().contains("'cash'"));
        let long = format!("{}é", "x".repeat(100));
        let quoted = apply(&lookup, &json!(long), &input).unwrap_err();
        assert_eq!(quoted, format!("'{}…' is not in the lookup table and no default is given", "x".repeat(64)));
        let table = [("card".to_string(), json!("Credit Card"))].into_iter().collect();
        let with_default = Step::Lookup { table, default: Some(json!("Other")) };
        assert_eq!(apply(&with_default, &json!("cash"), &input).unwrap(), json!("Other"));
    }

    #[test]
    fn minor_units_reads_the_currency_from_the_input() {
        let path = crate::routes::jsonpath::Path::parse("$.c").unwrap();
        let step = Step::MinorUnits { currency: path };
        assert_eq!(apply(&step, &json!(1234), &json!({"c": "eur"})).unwrap().to_string(), "12.34");
        assert!(apply(&step, &json!(1234), &json!({})).unwrap_err().contains("no currency code at $.c"));
        assert!(apply(&step, &json!("12"), &json!({"c": "eur"})).is_err());
    }

    #[test]
    fn integers_written_as_decimals_are_integers() {
        let path = crate::routes::jsonpath::Path::parse("$.c").unwrap();
        let step = Step::MinorUnits { currency: path };
        let usd = json!({"c": "usd"});
        assert_eq!(apply(&step, &json!(10000.0), &usd).unwrap().to_string(), "100.0");
        assert_eq!(apply(&step, &json!(-0.0), &usd).unwrap().to_string(), "0.0");
        assert!(apply(&step, &json!(100.5), &usd).unwrap_err().contains("not 100.5"));
        assert!(apply(&step, &json!(1e23), &usd).unwrap_err().contains("integer amount"));
        assert!(apply(&step, &json!(u64::MAX), &usd).unwrap_err().contains("integer amount"));
        let epoch = apply(&Step::EpochToRfc3339, &json!(1699281000.0), &usd).unwrap();
        assert_eq!(epoch, json!("2023-11-06T14:30:00Z"));
        let quoted = apply(&Step::EpochToRfc3339, &json!("1699281000"), &usd).unwrap_err();
        assert_eq!(quoted, "epoch_to_rfc3339 needs integer seconds, not a string");
    }

    #[test]
    fn milliseconds_and_offsets_become_utc_timestamps() {
        let input = json!({});
        let ms = |v: Json| apply(&Step::EpochMsToRfc3339, &v, &input);
        assert_eq!(ms(json!(1699281000123_i64)).unwrap(), json!("2023-11-06T14:30:00.123Z"));
        assert_eq!(ms(json!(1699281000000_i64)).unwrap(), json!("2023-11-06T14:30:00Z"));
        assert_eq!(
            ms(json!("1699281000123")).unwrap_err(),
            "epoch_ms_to_rfc3339 needs integer milliseconds, not a string"
        );
        assert!(ms(json!(i64::MAX)).unwrap_err().contains("out of the timestamp range"));
        let utc = |v: Json| apply(&Step::ToUtc, &v, &input);
        assert_eq!(utc(json!("2019-06-28T18:03:50+01:00")).unwrap(), json!("2019-06-28T17:03:50Z"));
        assert_eq!(utc(json!("2023-11-06T14:30:00.5-05:30")).unwrap(), json!("2023-11-06T20:00:00.5Z"));
        assert_eq!(utc(json!("2023-11-06T14:30:00Z")).unwrap(), json!("2023-11-06T14:30:00Z"));
        assert_eq!(utc(json!("06/11/2023")).unwrap_err(), "to_utc: '06/11/2023' is not an RFC 3339 timestamp");
        assert_eq!(utc(json!(5)).unwrap_err(), "to_utc needs a string");
    }
}
