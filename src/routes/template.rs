//! String templates: literal text with `{placeholder}` parts; `{{` and `}}` are literal braces.
//!
//! What a placeholder names is up to the user of the template: a JSONPath in ingress
//! mappings, a canonical property or `header.NAME` in dispatch requests.

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part<V> {
    Lit(String),
    Var(V),
}

/// Splits `text` into literal and placeholder parts (placeholders trimmed).
pub fn parse(text: &str) -> Result<Vec<Part<String>>, String> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|p| p.1) == Some('{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek().map(|p| p.1) == Some('}') => {
                chars.next();
                lit.push('}');
            }
            '{' => {
                let rest = &text[i + 1..];
                let end = rest
                    .find('}')
                    .ok_or_else(|| format!("'{{' at offset {i} has no closing '}}' in template \"{text}\""))?;
                let name = rest[..end].trim();
                if name.is_empty() {
                    return Err(format!("empty placeholder '{{}}' in template \"{text}\""));
                }
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(Part::Var(name.to_owned()));
                // Skip the placeholder's characters.
                for _ in 0..rest[..=end].chars().count() {
                    chars.next();
                }
            }
            '}' => return Err(format!("unmatched '}}' at offset {i} in template \"{text}\" (write '}}}}')")),
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_literals_placeholders_and_escapes() {
        assert_eq!(
            parse("a/{ order_id }/b{{c}}").unwrap(),
            vec![Part::Lit("a/".into()), Part::Var("order_id".into()), Part::Lit("/b{c}".into())]
        );
        assert_eq!(parse("{$.x}").unwrap(), vec![Part::Var("$.x".into())]);
        assert!(parse("a{b").is_err());
        assert!(parse("a}b").is_err());
        assert!(parse("a{}").is_err());
    }
}
