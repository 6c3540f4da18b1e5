//! Diagnostics: one message tied to `file:line:col`, collected instead of failing fast; printed
//! as text, as JSON, or as GitHub Actions' workflow commands (annotations on the lines).

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::Location;

/// How bad a diagnostic is. Errors make a config unusable; warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about a config file, printed as `file:line:col: message`.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every diagnostic of one load, in the order found.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    pub list: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn error(&mut self, file: &Path, at: Location, message: impl Into<String>) {
        self.push(file, at, Severity::Error, message.into());
    }

    pub fn warning(&mut self, file: &Path, at: Location, message: impl Into<String>) {
        self.push(file, at, Severity::Warning, message.into());
    }

    fn push(&mut self, file: &Path, at: Location, severity: Severity, message: String) {
        self.list.push(Diagnostic {
            file: file.to_path_buf(),
            // Unknown locations (0:0) still point at the file's first character.
            line: at.line().max(1) as u32,
            column: at.column().max(1) as u32,
            severity,
            message,
        });
    }

    pub fn has_errors(&self) -> bool {
        self.list.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.list.iter().filter(|d| d.severity == Severity::Error)
    }
}

impl Diagnostic {
    fn severity_name(&self) -> &'static str {
        match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }

    /// As a JSON object: `file`, `line`, `column`, `severity` and `message`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "file": self.file.display().to_string(),
            "line": self.line,
            "column": self.column,
            "severity": self.severity_name(),
            "message": self.message,
        })
    }

    /// As a GitHub Actions workflow command, `::error file=…,line=…,col=…::message`, which a
    /// workflow step turns into an annotation on that line of the file.
    pub fn to_github(&self) -> String {
        // The workflow commands' own escapes: data, and property values, which also take ':' and ','.
        let data = |s: &str| s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
        let property = |s: &str| data(s).replace(':', "%3A").replace(',', "%2C");
        format!(
            "::{} file={},line={},col={}::{}",
            self.severity_name(),
            property(&self.file.display().to_string()),
            self.line,
            self.column,
            data(&self.message)
        )
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.list {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workflow_command_escapes_what_github_reads_as_its_own() {
        let d = Diagnostic {
            file: PathBuf::from("routes.d/a,b:c.yaml"),
            line: 3,
            column: 7,
            severity: Severity::Warning,
            message: "100% sure\nsecond line".into(),
        };
        assert_eq!(d.to_github(), "::warning file=routes.d/a%2Cb%3Ac.yaml,line=3,col=7::100%25 sure%0Asecond line");
        assert_eq!(d.to_json()["severity"], "warning");
        assert_eq!(d.to_json()["line"], 3);
    }
}
