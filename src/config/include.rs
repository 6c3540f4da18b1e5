//! `include:`: the files and folders a config names, read and parsed into their share of the
//! config (sources, dispatchers, tests), each problem reported with its file and line.

use std::path::{Path, PathBuf};

use super::model::IncludedFile;
use super::{Diagnostics, RoutesFile, folder, parse_as};

/// A file the config includes (relative paths in it resolve against its own `dir`).
#[derive(Debug)]
pub struct Included {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub file: IncludedFile,
}

/// Reads the files `file` (at `path`) includes; every problem with any of them is reported.
pub(super) fn read(path: &Path, file: &RoutesFile) -> Result<Vec<Included>, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut out: Vec<Included> = Vec::new();
    // Named as the main file is (`routes.d/a.yaml` beside `routes.yaml`), for diagnostics.
    let base = path.parent().unwrap_or(Path::new(""));
    let mut seen = vec![std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())];
    for entry in &file.include {
        let at = entry.referenced;
        let target = base.join(&entry.value);
        let files = match std::fs::metadata(&target) {
            // A folder that holds the main file too (`include: [.]`) stands for the others.
            Ok(m) if m.is_dir() => match yaml_files(&target) {
                Ok(files) => {
                    files.into_iter().filter(|f| std::fs::canonicalize(f).ok().as_ref() != seen.first()).collect()
                }
                Err(e) => {
                    diags.error(path, at, format!("cannot read included folder '{}': {e}", entry.value));
                    continue;
                }
            },
            Ok(_) => vec![target],
            Err(e) => {
                diags.error(path, at, format!("cannot read included file '{}': {e}", entry.value));
                continue;
            }
        };
        for f in files {
            let canonical = std::fs::canonicalize(&f).unwrap_or_else(|_| f.clone());
            if seen.contains(&canonical) {
                let what = if canonical == seen[0] { "the config itself" } else { "already included" };
                diags.error(path, at, format!("'{}' is {what}: a file is read once", f.display()));
                continue;
            }
            seen.push(canonical);
            match crate::files::read_regular_to_string(&f).map_err(|e| e.to_string()) {
                Ok(text) => match parse_included(&f, &text) {
                    Ok(file) => out.push(Included { dir: folder(&f), path: f, file }),
                    Err(d) => diags.list.extend(d.list),
                },
                Err(e) => diags.error(path, at, format!("cannot read included file '{}': {e}", f.display())),
            }
        }
    }
    match diags.has_errors() {
        true => Err(diags),
        false => Ok(out),
    }
}

/// The `*.yaml` and `*.yml` files of `folder`, in name order; hidden ones (an editor's, or a
/// Kubernetes volume's `..data`) are passed over.
fn yaml_files(folder: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !p.file_name().is_some_and(|n| n.as_encoded_bytes().starts_with(b".")))
        .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    Ok(files)
}

/// Parses an included file: sources, dispatchers and tests only.
fn parse_included(path: &Path, text: &str) -> Result<IncludedFile, Diagnostics> {
    parse_as(path, text).map_err(|mut diags| {
        for d in &mut diags.list {
            for key in ["kafka", "ingress", "include"] {
                if d.message.starts_with(&format!("unknown field '{key}'")) {
                    d.message = format!(
                        "'{key}' is set in the main config only: an included file holds sources, dispatch and tests"
                    );
                }
            }
        }
        diags
    })
}
