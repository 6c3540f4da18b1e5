//! Diagnostics: one message tied to `file:line:col`, collected instead of failing fast.

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

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.list {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}
