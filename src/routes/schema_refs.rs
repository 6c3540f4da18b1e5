//! Where a schema's `$ref`s lead: to files, never over the network. A `$ref` relative to the
//! schema's file (`money.json`, `../common/money.json`) is that file. A schema published under
//! a URL (`$id: https://example.com/schemas/payment.json`) is kept in a folder laid out as its
//! URLs are: a `$ref` under its `$id`'s folder (`https://example.com/schemas/common/money.json`,
//! or `common/money.json` resolved against the `$id`) is the file at the same place beside it
//! (`common/money.json`). The validator ([`Files`]), the static contract check
//! (`contract::walk::follow_ref`) and the projection (`projection`) follow `$ref`s the same way.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, percent_encode};
use serde_json::Value as Json;

/// What a path keeps out of a `file://` URI by percent-encoding it (RFC 3986: what is not
/// allowed in a path, and `%` itself); bytes past ASCII are always encoded.
const NOT_IN_PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The `file://` URI of the absolute path `path` (a folder named `My Schemas` is `My%20Schemas`).
pub fn file_uri(path: &Path) -> String {
    format!("file://{}", percent_encode(path.as_os_str().as_bytes(), NOT_IN_PATH))
}

/// The path a URI's percent-encoded path part names.
fn decoded(part: &str) -> PathBuf {
    PathBuf::from(OsString::from_vec(percent_decode_str(part).collect()))
}

/// The schema document in `file` (a regular file: [`crate::files::read_regular`]), holding JSON.
pub fn read(file: &Path) -> Result<Json, String> {
    let shown = file.display();
    let bytes = crate::files::read_regular(file).map_err(|e| format!("cannot read schema '{shown}': {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("schema '{shown}' is not valid JSON: {e}"))
}

/// The folder URL of a schema's `$id`, up to and with its last `/`
/// (`https://example.com/schemas/`); `None` without an `$id`, with a relative or `file:` one
/// (those resolve against the file itself), or with one whose URL has no path.
pub fn id_folder(document: &Json) -> Option<&str> {
    let id = document.get("$id")?.as_str()?.split('#').next()?;
    let after_scheme = id.find("://")? + 3;
    if id.starts_with("file:") {
        return None;
    }
    let cut = id.rfind('/').filter(|&cut| cut >= after_scheme)?;
    // `https://example.com/x.json`: the first `/` after the authority begins the path.
    id[after_scheme..cut + 1].contains('/').then(|| &id[..=cut])
}

/// Whether a schema file's root `$id` leaves its `$ref`s leading where they lead from the
/// file itself: a URL with a folder ([`id_folder`]: its files are laid out as its URLs), or a
/// bare name (the same folder). A relative one with a folder, or a `file:` one, moves them.
pub fn id_keeps_refs(document: &Json) -> bool {
    let Some(id) = document.get("$id").and_then(Json::as_str) else { return true };
    let id = id.split('#').next().unwrap_or_default();
    id_folder(document).is_some() || !id.contains(['/', ':'])
}

/// The file that `uri` (absolute, without a fragment) stands for under a schema whose `$id`
/// folder is `id_folder` and whose file is in `folder`; `None` when it is not under it, or its
/// rest is not a plain relative path.
fn under_id(uri: &str, id_folder: &str, folder: &Path) -> Option<PathBuf> {
    let rest = uri.strip_prefix(id_folder)?;
    if rest.is_empty() || rest.contains(['?', '\\']) || rest.split('/').any(str::is_empty) {
        return None;
    }
    let rest = decoded(rest);
    rest.components().all(|c| matches!(c, Component::Normal(_))).then(|| folder.join(rest))
}

/// The file a `$ref`'s file part (before `#`, not empty) names, for a `$ref` in `document`
/// read from `file`: relative to the file, a `file://` path, or under the document's `$id`
/// folder. `None` for anything else (a URL elsewhere, a URN, a path from the host's root, any
/// `$ref` of a document whose `$id` moves its folder): the contract check leaves such a `$ref`
/// unfollowed and gives it the benefit of the doubt, the projection keeps the value whole.
pub fn ref_file(file_part: &str, document: &Json, file: &Path) -> Option<PathBuf> {
    let folder = file.parent().unwrap_or(Path::new("."));
    if let Some(path) = file_part.strip_prefix("file://") {
        return Some(decoded(path));
    }
    if !id_keeps_refs(document) {
        return None;
    }
    if file_part.contains(':') {
        return under_id(file_part, id_folder(document)?, folder);
    }
    (!file_part.starts_with('/')).then(|| folder.join(decoded(file_part)))
}

/// The validator's retriever: the resources a schema's `$ref`s name (resolved against their
/// base, a file or an `$id`, before it asks), read from files: a `file://` path, or the file
/// beside a schema whose `$id` folder the URL is under (the entry schema, or one it led to).
/// The `$id` folders met must agree with where their files are (`https://example.com/s/` in
/// `schemas/`, so `https://example.com/s/common/` in `schemas/common/`): then a URL stands for
/// one file whichever schema names it, as the contract check and the projection read it.
pub struct Files {
    known: Mutex<Known>,
}

#[derive(Default)]
struct Known {
    /// Each `$id` folder ([`id_folder`]) met so far, with the folder of its schema's file.
    folders: Vec<(String, PathBuf)>,
    /// The first `$id` folder met that disagrees with another about where files are.
    disagreement: Option<String>,
}

impl Files {
    /// The retriever of the schema `document`, read from `file` (an absolute path).
    pub fn new(document: &Json, file: &Path) -> Files {
        let files = Files { known: Mutex::new(Known::default()) };
        files.learn(document, file);
        files
    }

    fn learn(&self, document: &Json, file: &Path) {
        let Some(id) = id_folder(document) else { return };
        let folder = file.parent().unwrap_or(Path::new("/")).to_path_buf();
        let mut guard = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let known = &mut *guard;
        for (other, other_folder) in &known.folders {
            let agrees = match (id.strip_prefix(other.as_str()), other.strip_prefix(id)) {
                (Some(below), _) => other_folder.join(below) == folder,
                (_, Some(below)) => folder.join(below) == *other_folder,
                _ => true,
            };
            if !agrees && known.disagreement.is_none() {
                known.disagreement = Some(format!(
                    "the schemas' $ids disagree with where their files are: '{}' ($id folder '{id}') is in '{}', but $id folder '{other}' is '{}'; lay the files out as their $ids are",
                    file.display(),
                    folder.display(),
                    other_folder.display()
                ));
            }
        }
        known.folders.push((id.to_owned(), folder));
    }

    /// The file for `uri` under an `$id` folder met (they agree: the longest is taken).
    fn file_for(&self, uri: &str) -> Result<PathBuf, String> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(disagreement) = &known.disagreement {
            return Err(disagreement.clone());
        }
        let folders = &known.folders;
        let under = folders.iter().filter(|(id, _)| uri.starts_with(id.as_str())).max_by_key(|(id, _)| id.len());
        if let Some(file) = under.and_then(|(id, folder)| under_id(uri, id, folder)) {
            return Ok(file);
        }
        let never = "Switchyard reads schemas from files, never over the network";
        if folders.is_empty() {
            return Err(format!(
                "{never}: refer to the file by its path, or give the schema an $id whose folder holds it"
            ));
        }
        let ids: Vec<&str> = folders.iter().map(|(id, _)| id.as_str()).collect();
        Err(format!(
            "no file stands for it: it is not under the $id folder of a schema read here ({}); {never}",
            ids.join(", ")
        ))
    }
}

impl jsonschema::Retrieve for Files {
    fn retrieve(&self, uri: &jsonschema::Uri<String>) -> Result<Json, Box<dyn std::error::Error + Send + Sync>> {
        let uri = uri.as_str().split('#').next().unwrap_or_default();
        let file = match uri.strip_prefix("file://") {
            Some(path) => decoded(path),
            None => self.file_for(uri)?,
        };
        let document = read(&file)?;
        self.learn(&document, &file);
        Ok(document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_id_folder_is_the_url_up_to_its_last_slash() {
        let folder = |id: &str| id_folder(&json!({ "$id": id })).map(str::to_owned);
        assert_eq!(folder("https://example.com/schemas/payment.json").as_deref(), Some("https://example.com/schemas/"));
        assert_eq!(folder("https://example.com/payment.json#").as_deref(), Some("https://example.com/"));
        assert_eq!(folder("https://example.com"), None);
        assert_eq!(folder("payment.json"), None);
        assert_eq!(folder("file:///etc/schemas/payment.json"), None);
        assert_eq!(folder("urn:example:payment"), None);
        assert_eq!(id_folder(&json!({"type": "object"})), None);
    }

    #[test]
    fn an_id_keeps_refs_where_the_file_puts_them_unless_it_moves_the_folder() {
        let keeps = |id: &str| id_keeps_refs(&json!({ "$id": id }));
        assert!(keeps("https://example.com/schemas/payment.json") && keeps("payment.json") && keeps("#top"));
        assert!(!keeps("other/payment.json") && !keeps("file:///elsewhere/payment.json") && !keeps("urn:x:payment"));
        assert!(id_keeps_refs(&json!({"type": "object"})));
    }

    #[test]
    fn id_folders_map_urls_to_files_only_while_they_agree_with_where_files_are() {
        let entry = json!({"$id": "https://x.test/s/entry.json"});
        let common = json!({"$id": "https://x.test/s/common/b.json"});
        let files = Files::new(&entry, Path::new("/cfg/s/entry.json"));
        files.learn(&common, Path::new("/cfg/s/common/b.json"));
        assert_eq!(files.file_for("https://x.test/s/common/c.json"), Ok(PathBuf::from("/cfg/s/common/c.json")));
        assert_eq!(files.file_for("https://x.test/s/d.json"), Ok(PathBuf::from("/cfg/s/d.json")));
        let err = files.file_for("https://x.test/other/d.json").unwrap_err();
        assert!(err.contains("(https://x.test/s/, https://x.test/s/common/)"), "{err}");

        let files = Files::new(&entry, Path::new("/cfg/s/entry.json"));
        files.learn(&common, Path::new("/cfg/elsewhere/b.json"));
        let err = files.file_for("https://x.test/s/d.json").unwrap_err();
        assert!(err.contains("disagree") && err.contains("/cfg/elsewhere"), "{err}");
    }

    #[test]
    fn a_file_uri_encodes_what_a_uri_path_cannot_hold_and_decodes_back() {
        let path = Path::new("/cfg/My Schemas/#1/é%.json");
        let uri = file_uri(path);
        assert_eq!(uri, "file:///cfg/My%20Schemas/%231/%C3%A9%25.json");
        assert_eq!(decoded(uri.strip_prefix("file://").unwrap()), path);
    }

    #[test]
    fn a_ref_names_a_file_beside_the_schema_or_nothing() {
        let doc = json!({"$id": "https://example.com/schemas/payment.json"});
        let file = Path::new("/cfg/schemas/payment.json");
        let at = |r: &str| ref_file(r, &doc, file);
        assert_eq!(at("money.json"), Some(PathBuf::from("/cfg/schemas/money.json")));
        assert_eq!(
            at("https://example.com/schemas/common/money.json"),
            Some(PathBuf::from("/cfg/schemas/common/money.json"))
        );
        assert_eq!(at("file:///elsewhere/money.json"), Some(PathBuf::from("/elsewhere/money.json")));
        assert_eq!(at("https://example.com/other/money.json"), None);
        assert_eq!(at("https://example.com/schemas/../secret.json"), None);
        assert_eq!(at("https://example.com/schemas/%2e%2e/secret.json"), None);
        assert_eq!(at("https://example.com/schemas/a%2F..%2F..%2Fsecret.json"), None);
        assert_eq!(
            at("https://example.com/schemas/my%20money.json"),
            Some(PathBuf::from("/cfg/schemas/my money.json"))
        );
        assert_eq!(at("my%20money.json"), Some(PathBuf::from("/cfg/schemas/my money.json")));
        assert_eq!(at("file:///my%20schemas/m.json"), Some(PathBuf::from("/my schemas/m.json")));
        assert_eq!(at("https://example.org/schemas/money.json"), None);
        assert_eq!(at("urn:example:money"), None);
        assert_eq!(at("/schemas/money.json"), None);
        assert_eq!(ref_file("https://example.com/schemas/money.json", &json!({}), file), None);
        assert_eq!(ref_file("money.json", &json!({"$id": "sub/payment.json"}), file), None);
    }
}
