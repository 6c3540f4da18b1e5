//! A dispatcher's HTTP client: redirects not followed, connections pooled, and the
//! dispatcher's `tls:` (the CA its calls trust, its client certificate), built again when
//! those files change, so a renewed client certificate needs no restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;

use crate::pem;
use crate::routes::dispatch::ClientTls;
use crate::shutdown::Shutdown;

/// The client for calls of `dispatcher` with `tls`; an error names the file at fault.
pub fn build(dispatcher: &str, tls: &ClientTls) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(60));
    if let Some(ca) = &tls.ca_file {
        let certs = pem::certificates(ca)?;
        pem::record_expiry(&format!("dispatcher {dispatcher} ca"), ca, &certs);
        let roots = certs.iter().map(|c| reqwest::Certificate::from_der(c)).collect::<Result<Vec<_>, _>>();
        builder =
            builder.tls_certs_only(roots.with_context(|| format!("{}: not a usable CA certificate", ca.display()))?);
    }
    if let Some(files) = &tls.identity {
        // Checked with rustls first: its errors say which file is at fault.
        let key = pem::certified_key(files, &rustls::crypto::aws_lc_rs::default_provider())?;
        pem::record_expiry(&format!("dispatcher {dispatcher}"), &files.cert, &key.cert);
        let mut both = std::fs::read(&files.cert).with_context(|| format!("cannot read {}", files.cert.display()))?;
        both.push(b'\n');
        both.extend(std::fs::read(&files.key).with_context(|| format!("cannot read {}", files.key.display()))?);
        let identity = reqwest::Identity::from_pem(&both).with_context(|| {
            format!("{} and {}: not a usable client certificate", files.cert.display(), files.key.display())
        })?;
        builder = builder.identity(identity);
    }
    builder.build().context("cannot create the HTTP client")
}

/// Builds `client` again from `tls` when its files change (or on SIGHUP), until `shutdown`;
/// calls under way finish on the client they started with. Returns at once without files.
pub async fn watch(dispatcher: String, tls: ClientTls, client: Arc<ArcSwap<reqwest::Client>>, shutdown: Shutdown) {
    let files: Vec<PathBuf> = tls.files().into_iter().map(Path::to_path_buf).collect();
    if files.is_empty() {
        return;
    }
    // What the current client was built from: the same bytes again change nothing.
    let read = |files: &[PathBuf]| files.iter().map(std::fs::read).collect::<std::io::Result<Vec<_>>>().ok();
    let built_from = Mutex::new(read(&files));
    let reload_files = files.clone();
    let name = dispatcher.clone();
    let reload = Arc::new(move || {
        let now = read(&reload_files);
        let mut last = built_from.lock().unwrap_or_else(|e| e.into_inner());
        if now.is_some() && *last == now {
            return Ok(false);
        }
        client.store(Arc::new(build(&name, &tls)?));
        *last = now;
        Ok(true)
    });
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let what = format!("dispatcher {dispatcher}'s TLS files");
    crate::reload::follow_files(&paths, &what, reload, shutdown).await
}
