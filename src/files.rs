//! Reading the files a config names (the config, what it includes, schemas, certificates) with
//! a bound on their size, so a name like `/dev/zero` gets an error instead of hanging
//! `validate` or a start. What the operator names (`-c`, `--tls-cert`) may be a pipe
//! (`-c <(envsubst < routes.yaml)`); what a config names must be a regular file.

use std::io::{Error, ErrorKind, Read};
use std::path::Path;

/// The largest file read: far above any real config, schema or certificate chain.
pub const MAX_BYTES: u64 = 16 << 20;

/// The bytes of the file at `path`, at most [`MAX_BYTES`] of them.
pub fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    bounded(std::fs::File::open(path)?)
}

/// [`read`] of a regular file only: what a config names (an included file, a schema, a
/// `$ref`'s target), never a device, a pipe or a folder.
pub fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a file"));
    }
    bounded(file)
}

/// [`read`], as UTF-8 text.
pub fn read_to_string(path: &Path) -> std::io::Result<String> {
    utf8(read(path)?)
}

/// [`read_regular`], as UTF-8 text.
pub fn read_regular_to_string(path: &Path) -> std::io::Result<String> {
    utf8(read_regular(path)?)
}

fn bounded(file: std::fs::File) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(Error::new(ErrorKind::InvalidInput, format!("larger than {} MiB", MAX_BYTES >> 20)));
    }
    Ok(bytes)
}

fn utf8(bytes: Vec<u8>) -> std::io::Result<String> {
    String::from_utf8(bytes).map_err(|_| Error::new(ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_up_to_a_bound_and_named_ones_only_when_regular() {
        let dir = tempfile::tempdir().unwrap();
        let err = |r: std::io::Result<Vec<u8>>| r.unwrap_err().to_string();
        assert_eq!(err(read(Path::new("/dev/zero"))), "larger than 16 MiB");
        assert_eq!(err(read_regular(Path::new("/dev/zero"))), "not a file");
        assert_eq!(err(read_regular(dir.path())), "not a file");
        assert!(err(read(&dir.path().join("none"))).contains("No such file"));
        std::fs::write(dir.path().join("big"), vec![b' '; (MAX_BYTES + 1) as usize]).unwrap();
        assert_eq!(err(read_regular(&dir.path().join("big"))), "larger than 16 MiB");
        std::fs::write(dir.path().join("ok"), "a: 1").unwrap();
        assert_eq!(read_regular_to_string(&dir.path().join("ok")).unwrap(), "a: 1");
        std::fs::write(dir.path().join("latin1"), b"\xe9").unwrap();
        assert!(read_to_string(&dir.path().join("latin1")).is_err());
    }
}
