//! `${VAR}` interpolation of config string values, with the shell's (and Vector's, and Docker
//! Compose's) forms.
//!
//! `${VAR:-default}` takes the default when the variable is unset or empty, `${VAR-default}`
//! only when it is unset; `${VAR:?message}` refuses the config when it is unset or empty,
//! `${VAR?message}` when it is unset, saying `message`. `$${` writes a literal `${`. A
//! variable that is unset without a default is reported by name so the caller can point at
//! its line.

/// Why a string could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpandError {
    /// `${NAME}` with no default and no value in the environment, or `${NAME:?message}` with an
    /// empty one (`empty`); `message` is what the `?` form says.
    Unset { name: String, empty: bool, message: Option<String> },
    /// `${` without its closing brace, or a name that is not `[A-Za-z_][A-Za-z0-9_]*`.
    Malformed(String),
}

impl ExpandError {
    /// The variable that is missing, when that is the error.
    pub fn unset(&self) -> Option<&str> {
        match self {
            ExpandError::Unset { name, .. } => Some(name),
            ExpandError::Malformed(_) => None,
        }
    }
}

impl std::fmt::Display for ExpandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpandError::Unset { name, empty: false, message: None } => write!(
                f,
                "environment variable '{name}' is not set and has no default (write ${{{name}:-default}} to give one)"
            ),
            ExpandError::Unset { name, empty, message: Some(message) } => {
                let state = if *empty { "is empty" } else { "is not set" };
                match message.trim() {
                    "" => write!(f, "environment variable '{name}' {state}"),
                    message => write!(f, "environment variable '{name}' {state}: {message}"),
                }
            }
            ExpandError::Unset { name, empty: true, message: None } => {
                write!(f, "environment variable '{name}' is empty")
            }
            ExpandError::Malformed(why) => f.write_str(why),
        }
    }
}

/// What follows a variable's name inside `${…}`.
enum Form<'a> {
    /// `${NAME}`
    Plain,
    /// `${NAME:-default}` (`or_empty`) or `${NAME-default}`
    Default { value: &'a str, or_empty: bool },
    /// `${NAME:?message}` (`or_empty`) or `${NAME?message}`
    Required { message: &'a str, or_empty: bool },
}

/// Splits the inside of `${…}` into the name and its form.
fn form(inner: &str) -> Result<(&str, Form<'_>), ExpandError> {
    let end = inner.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(inner.len());
    let (name, rest) = inner.split_at(end);
    let form = if rest.is_empty() {
        Form::Plain
    } else if let Some(value) = rest.strip_prefix(":-") {
        Form::Default { value, or_empty: true }
    } else if let Some(value) = rest.strip_prefix('-') {
        Form::Default { value, or_empty: false }
    } else if let Some(message) = rest.strip_prefix(":?") {
        Form::Required { message, or_empty: true }
    } else if let Some(message) = rest.strip_prefix('?') {
        Form::Required { message, or_empty: false }
    } else {
        return Err(ExpandError::Malformed(format!(
            "'{inner}' is not a variable in \"${{{inner}}}\": write ${{NAME}}, ${{NAME:-default}}, ${{NAME-default}}, ${{NAME:?message}} or ${{NAME?message}}"
        )));
    };
    if !is_var_name(name) {
        return Err(ExpandError::Malformed(format!(
            "'{name}' is not a variable name in \"${{{inner}}}\" (letters, digits and '_', not starting with a digit)"
        )));
    }
    Ok((name, form))
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
            let (name, form) = form(&after[..close])?;
            let unset = |empty: bool, message: Option<&str>| ExpandError::Unset {
                name: name.to_owned(),
                empty,
                message: message.map(str::to_owned),
            };
            match (lookup(name), form) {
                (Some(value), Form::Default { value: default, or_empty: true }) if value.is_empty() => {
                    out.push_str(default)
                }
                (Some(value), Form::Required { message, or_empty: true }) if value.is_empty() => {
                    return Err(unset(true, Some(message)));
                }
                (Some(value), _) => out.push_str(&value),
                (None, Form::Default { value: default, .. }) => out.push_str(default),
                (None, Form::Plain) => return Err(unset(false, None)),
                (None, Form::Required { message, .. }) => return Err(unset(false, Some(message))),
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

/// The variables `raw` needs a value for (`${NAME}`, `${NAME:?…}`, `${NAME?…}`: not those with
/// a default), each once, in the order they come; it stops at text that is not well formed.
pub fn without_default(raw: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    loop {
        let found = expand(raw, &|name: &str| names.iter().any(|n| n == name).then(|| "set".to_owned()));
        match found {
            Err(ExpandError::Unset { name, .. }) if !names.contains(&name) => names.push(name),
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
    fn the_dash_default_is_taken_only_when_unset() {
        assert_eq!(expand("${NOPE-fallback}", &env).unwrap(), "fallback");
        assert_eq!(expand("${EMPTY-fallback}", &env).unwrap(), "");
        assert_eq!(expand("${SET-fallback}", &env).unwrap(), "value");
        assert_eq!(expand("${NOPE-a:-b}", &env).unwrap(), "a:-b");
    }

    #[test]
    fn the_question_mark_forms_refuse_with_their_message() {
        assert_eq!(expand("${SET:?need it}", &env).unwrap(), "value");
        assert_eq!(expand("${EMPTY?need it}", &env).unwrap(), "");
        let unset = expand("x ${NOPE:?the order service's base URL}", &env).unwrap_err();
        assert_eq!(unset.unset(), Some("NOPE"));
        assert_eq!(unset.to_string(), "environment variable 'NOPE' is not set: the order service's base URL");
        let empty = expand("${EMPTY:?set the secret}", &env).unwrap_err();
        assert_eq!(empty.to_string(), "environment variable 'EMPTY' is empty: set the secret");
        assert_eq!(expand("${NOPE?}", &env).unwrap_err().to_string(), "environment variable 'NOPE' is not set");
    }

    #[test]
    fn lists_the_variables_written_without_a_default() {
        let raw = "a: ${A}\nb: ${B:-x} $${C} ${D:-} ${F-x}\nc: \"${A}/${E}\" $.data ${G:?g} ${H?h}";
        assert_eq!(without_default(raw), ["A", "E", "G", "H"]);
        assert!(without_default("$.a ${B:-}").is_empty());
    }

    #[test]
    fn reports_unset_and_malformed() {
        assert_eq!(expand("x ${NOPE}", &env).unwrap_err().unset(), Some("NOPE"));
        assert!(matches!(expand("${SET", &env), Err(ExpandError::Malformed(_))));
        assert!(matches!(expand("${1X}", &env), Err(ExpandError::Malformed(_))));
        assert!(matches!(expand("${}", &env), Err(ExpandError::Malformed(_))));
        let odd = expand("${A.B}", &env).unwrap_err().to_string();
        assert!(odd.contains("${NAME:?message}"), "{odd}");
    }
}
