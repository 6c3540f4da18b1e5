//! `${VAR}` and `${VAR:-default}` interpolation of config string values.
//!
//! `$${` writes a literal `${`. A variable that is unset (or, with `:-`, empty) takes the
//! default; one without a default is reported by name so the caller can point at its line.

/// Why a string could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpandError {
    /// `${NAME}` with no default and no value in the environment.
    Unset(String),
    /// `${` without its closing brace, or a name that is not `[A-Za-z_][A-Za-z0-9_]*`.
    Malformed(String),
}

impl std::fmt::Display for ExpandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpandError::Unset(name) => write!(
                f,
                "environment variable '{name}' is not set and has no default (write ${{{name}:-default}} to give one)"
            ),
            ExpandError::Malformed(why) => f.write_str(why),
        }
    }
}

/// Expands every `${…}` in `raw`, reading variables through `lookup`.
pub fn expand(raw: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    if !raw.contains('$') {
        return Ok(raw.to_owned());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let close = after
                .find('}')
                .ok_or_else(|| ExpandError::Malformed(format!("'${{' without a closing '}}' in \"{raw}\"")))?;
            let inner = &after[..close];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            if !is_var_name(name) {
                return Err(ExpandError::Malformed(format!(
                    "'{name}' is not a variable name in \"${{{inner}}}\" (letters, digits and '_', not starting with a digit)"
                )));
            }
            match (lookup(name), default) {
                (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => return Err(ExpandError::Unset(name.to_owned())),
            }
            rest = &after[close + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The variables `raw` writes without a default (`${NAME}`, not `${NAME:-…}`), each once, in
/// the order they come; it stops at text that is not well formed.
pub fn without_default(raw: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    loop {
        let found = expand(raw, &|name: &str| names.iter().any(|n| n == name).then(String::new));
        match found {
            Err(ExpandError::Unset(name)) => names.push(name),
            _ => return names,
        }
    }
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_set_unset_default_and_escapes() {
        assert_eq!(expand("plain", &env).unwrap(), "plain");
        assert_eq!(expand("a ${SET} b", &env).unwrap(), "a value b");
        assert_eq!(expand("${NOPE:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(expand("${EMPTY:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(expand("${EMPTY}", &env).unwrap(), "");
        assert_eq!(expand("${NOPE:-}", &env).unwrap(), "");
        assert_eq!(expand("$${SET} $5", &env).unwrap(), "${SET} $5");
        assert_eq!(expand("${SET:-http://x:1}/p", &env).unwrap(), "value/p");
    }

    #[test]
    fn lists_the_variables_written_without_a_default() {
        let raw = "a: ${A}\nb: ${B:-x} $${C} ${D:-}\nc: \"${A}/${E}\" $.data";
        assert_eq!(without_default(raw), ["A", "E"]);
        assert!(without_default("$.a ${B:-}").is_empty());
    }

    #[test]
    fn reports_unset_and_malformed() {
        assert_eq!(expand("x ${NOPE}", &env), Err(ExpandError::Unset("NOPE".into())));
        assert!(matches!(expand("${SET", &env), Err(ExpandError::Malformed(_))));
        assert!(matches!(expand("${1X}", &env), Err(ExpandError::Malformed(_))));
    }
}
