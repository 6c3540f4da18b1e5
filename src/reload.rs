//! Hot reload: on SIGHUP or a change under the config's folder (debounced), compile the
//! config again; if it is valid, swap it in atomically (requests in flight keep the routes
//! they started with) and name any change that only a restart applies; otherwise log every
//! diagnostic and keep serving the old routes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify_debouncer_full::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

use crate::app::Role;
use crate::config::Diagnostics;
use crate::routes::{EnvMode, Routes};
use crate::shutdown::Shutdown;

/// The environment a config is compiled with (the process's, or `dev`'s with its secret).
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Compiles the config again (with the same environment as at startup).
pub type Compile = Arc<dyn Fn() -> Result<Routes, Diagnostics> + Send + Sync>;

/// What to watch and how to rebuild.
#[derive(Clone)]
pub struct Reload {
    /// Paths whose changes trigger a reload, and whether to watch below them: the config's
    /// folder (not recursively: it may be a whole repository) and the schemas' folders.
    pub watch: Vec<(PathBuf, bool)>,
    pub compile: Compile,
    /// The config file, for diagnostics of the whole config.
    pub config: PathBuf,
    /// Sees each version swapped in (`dev` prints what it added).
    pub swapped: Option<Swapped>,
}

/// Called with the routes a reload swapped in.
pub type Swapped = Arc<dyn Fn(&Routes) + Send + Sync>;

/// Outcome of one reload, for logs, metrics and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reloaded {
    Ok,
    Failed,
}

/// Reloads until `shutdown`. `on_reload` sees every outcome. The files are watched from the
/// call, not from the future's first poll, so a change made once the process is ready (the
/// next line after `dev`'s banner) is seen.
pub fn run(
    reload: Reload,
    live: Arc<ArcSwap<Routes>>,
    role: Role,
    shutdown: Shutdown,
    on_reload: impl Fn(Reloaded) + Send,
) -> impl Future<Output = ()> + Send {
    // A config or schema file; or a `..`-named entry, such as the `..data` symlink a
    // Kubernetes ConfigMap volume swaps to update its files at once (they change no file of
    // their own name: `routes.yaml` is a symlink through `..data`).
    let relevant = |p: &Path| {
        matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
            || p.file_name().is_some_and(|n| n.as_encoded_bytes().starts_with(b".."))
    };
    let mut triggers = Triggers::new(&reload.watch, relevant, "config changes");
    async move {
        let watched = |routes: &Routes| watch_list(&reload.config, routes);
        // What the process was built with: the producer, listener and consumers keep these settings.
        let started = live.load_full();
        loop {
            let why = tokio::select! {
                why = triggers.next() => match why { Some(w) => w, None => return },
                _ = shutdown.wait() => return,
            };
            // Coalesce a burst (an editor writing several files) into one reload.
            tokio::time::sleep(Duration::from_millis(50)).await;
            triggers.drain();
            let compile = reload.compile.clone();
            match tokio::task::spawn_blocking(move || compile()).await {
                Ok(Ok(routes)) => {
                    // A folder the new config includes, or a schema's new folder, is watched from now.
                    triggers.watch_more(&watched(&routes), "config changes");
                    let pending = needs_restart(&started, &routes, role);
                    let routes = Arc::new(routes);
                    live.store(routes.clone());
                    if let Some(swapped) = &reload.swapped {
                        swapped(&routes);
                    }
                    tracing::info!(trigger = why, "config reloaded");
                    if !pending.is_empty() {
                        let changes = pending.join("; ");
                        tracing::warn!(%changes, "some changes apply only after a restart; until then the process keeps its startup settings");
                    }
                    on_reload(Reloaded::Ok);
                }
                Ok(Err(diags)) => {
                    for d in diags.errors() {
                        tracing::error!("{d}");
                    }
                    tracing::error!(trigger = why, "config reload refused: still serving the previous routes");
                    on_reload(Reloaded::Failed);
                }
                Err(e) => {
                    tracing::error!(error = %e, "config reload failed");
                    on_reload(Reloaded::Failed);
                }
            }
        }
    }
}

/// The differences between the routes a process started with and a reloaded version that a
/// reload cannot apply, because the producer and the listener's limits are made once at
/// startup: one phrase each, empty when the reload applies in full. Only what the process's
/// `role` runs counts (the producer serves both). Dispatchers follow reloads
/// (`dispatch::fleet`), Kafka settings aside.
pub fn needs_restart(old: &Routes, new: &Routes, role: Role) -> Vec<String> {
    let mut out = Vec::new();
    let mut changed = |what: &str, differs: bool| {
        if differs {
            out.push(format!("{what} changed"));
        }
    };
    let (ok, nk) = (&old.kafka, &new.kafka);
    changed("kafka.brokers", ok.brokers != nk.brokers);
    changed("kafka.properties", ok.properties != nk.properties);
    changed("kafka.publish_timeout_ms (the producer's message.timeout.ms)", ok.publish_timeout != nk.publish_timeout);
    let (oi, ni) = (&old.ingress, &new.ingress);
    let ingress = role.ingress();
    changed("ingress.max_in_flight", ingress && oi.max_in_flight != ni.max_in_flight);
    changed("ingress.max_connections", ingress && oi.max_connections != ni.max_connections);
    changed("ingress.max_buffered_bytes", ingress && oi.max_buffered_bytes != ni.max_buffered_bytes);
    changed(
        "ingress.read_timeout_ms (for request heads, TLS handshakes and idle connections)",
        ingress && oi.read_timeout != ni.read_timeout,
    );
    out
}

/// What sets off a reload: SIGHUP, or a change (debounced) to a path under the watched folders
/// that `relevant` accepts. Each comes as a word for the log: `SIGHUP` or `file change`.
pub(crate) struct Triggers {
    rx: mpsc::UnboundedReceiver<&'static str>,
    /// Watches while it lives.
    files: Option<Debouncer<RecommendedWatcher, RecommendedCache>>,
    /// What it watches (or tried to).
    watched: Vec<(PathBuf, bool)>,
}

impl Triggers {
    /// Watches `watch` (paths, and whether to watch below them); `what` names the files in
    /// the warning when they cannot be watched (SIGHUP still works then).
    pub(crate) fn new(
        watch: &[(PathBuf, bool)],
        relevant: impl Fn(&Path) -> bool + Send + 'static,
        what: &str,
    ) -> Triggers {
        let (tx, rx) = mpsc::unbounded_channel::<&'static str>();
        let file_tx = tx.clone();
        let debouncer = new_debouncer(Duration::from_millis(300), None, move |result: DebounceEventResult| {
            if let Ok(events) = result
                && events.iter().any(|e| !e.kind.is_access() && e.paths.iter().any(|p| relevant(p)))
            {
                let _ = file_tx.send("file change");
            }
        });
        let files = match debouncer {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(error = %e, "file watching unavailable for {what}; SIGHUP still reloads");
                None
            }
        };
        spawn_sighup(tx);
        let mut triggers = Triggers { rx, files, watched: Vec::new() };
        triggers.watch_more(watch, what);
        triggers
    }

    /// Also watches those of `watch` it does not watch yet.
    pub(crate) fn watch_more(&mut self, watch: &[(PathBuf, bool)], what: &str) {
        let Some(d) = &mut self.files else { return };
        for entry in watch {
            if self.watched.contains(entry) {
                continue;
            }
            let (path, recursive) = entry;
            let mode = if *recursive { RecursiveMode::Recursive } else { RecursiveMode::NonRecursive };
            match d.watch(path, mode) {
                Ok(()) => tracing::debug!(path = %path.display(), "watching for {what}"),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot watch for {what}; SIGHUP still reloads")
                }
            }
            self.watched.push(entry.clone());
        }
    }

    /// Watches `files` alone: a change to one of them, or to a `..`-named entry beside them
    /// (the `..data` symlink a Kubernetes secret volume swaps to update its files at once).
    pub(crate) fn for_files(files: &[&Path], what: &str) -> Triggers {
        let names: Vec<std::ffi::OsString> = files.iter().filter_map(|f| f.file_name().map(|n| n.to_owned())).collect();
        let ours = move |path: &Path| {
            path.file_name().is_some_and(|n| names.iter().any(|m| m == n) || n.as_encoded_bytes().starts_with(b".."))
        };
        let mut folders: Vec<(PathBuf, bool)> =
            files.iter().map(|f| (crate::pem::folder(f).to_path_buf(), false)).collect();
        folders.sort();
        folders.dedup();
        Triggers::new(&folders, ours, what)
    }

    pub(crate) async fn next(&mut self) -> Option<&'static str> {
        self.rx.recv().await
    }

    /// After a trigger `why`, waits until the files have been quiet for a second (a SIGHUP,
    /// also one that comes meanwhile, waits no more): a renewal may write a certificate and its
    /// key one after the other. Returns what set it off, `SIGHUP` when one did.
    pub(crate) async fn settle(&mut self, mut why: &'static str) -> &'static str {
        loop {
            let quiet = if why == "SIGHUP" { Duration::from_millis(50) } else { Duration::from_secs(1) };
            tokio::time::sleep(quiet).await;
            let (more, sighup) = self.drain();
            if sighup {
                why = "SIGHUP";
            }
            if !more || sighup {
                return why;
            }
        }
    }

    /// The triggers that came meanwhile, without waiting: whether any did, and whether one
    /// was a SIGHUP.
    pub(crate) fn drain(&mut self) -> (bool, bool) {
        let (mut any, mut sighup) = (false, false);
        while let Ok(why) = self.rx.try_recv() {
            any = true;
            sighup |= why == "SIGHUP";
        }
        (any, sighup)
    }
}

/// Runs `reload` on SIGHUP and when `files` change (once they are quiet), until `shutdown`.
/// `reload` reads them and swaps in what they hold, saying whether it changed anything; on an
/// error the previous contents stay. Logged as `{what} reloaded`, or as a refusal, once for
/// each new reason (every time on SIGHUP).
pub(crate) async fn follow_files(
    files: &[&Path],
    what: &str,
    reload: Arc<dyn Fn() -> anyhow::Result<bool> + Send + Sync>,
    shutdown: Shutdown,
) {
    let mut triggers = Triggers::for_files(files, "TLS file changes");
    let mut refused: Option<String> = None;
    loop {
        let why = tokio::select! {
            why = triggers.next() => match why { Some(w) => w, None => return },
            _ = shutdown.wait() => return,
        };
        let why = triggers.settle(why).await;
        let reloading = reload.clone();
        match tokio::task::spawn_blocking(move || reloading()).await {
            Ok(Ok(changed)) => {
                refused = None;
                if changed {
                    tracing::info!(trigger = why, "{what} reloaded");
                } else {
                    tracing::debug!(trigger = why, "{what} unchanged");
                }
            }
            Ok(Err(e)) => {
                let error = crate::text::error_chain(e.as_ref());
                if why == "SIGHUP" || refused.as_ref() != Some(&error) {
                    tracing::error!(trigger = why, error, "{what} reload refused: still using the previous one");
                    refused = Some(error);
                }
            }
            Err(e) => tracing::error!(error = %e, "{what} reload failed"),
        }
    }
}

#[cfg(unix)]
fn spawn_sighup(tx: mpsc::UnboundedSender<&'static str>) {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    if tx.send("SIGHUP").is_err() {
                        return;
                    }
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP"),
    }
}

#[cfg(not(unix))]
fn spawn_sighup(_tx: mpsc::UnboundedSender<&'static str>) {}

/// A reload of the config at `path`, compiled with `env`, watching what [`watch_list`] names.
pub fn for_config(path: PathBuf, routes: &Routes, env: Env, mode: EnvMode) -> Reload {
    let watch = watch_list(&path, routes);
    let config = path.clone();
    let compile: Compile = Arc::new(move || {
        let loaded = crate::config::load(&path)?;
        let (routes, warnings) = crate::routes::compile(&loaded, &*env, mode)?;
        for w in &warnings.list {
            tracing::warn!("{w}");
        }
        Ok(routes)
    });
    Reload { watch, compile, config, swapped: None }
}

/// What a reload of the config at `path` watches: its folder, the files and folders it
/// includes (read from the file as it is now), and the folders of the schemas `routes` load;
/// after each reload, what the new config names too.
pub fn watch_list(path: &Path, routes: &Routes) -> Vec<(PathBuf, bool)> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new(".")).to_path_buf();
    let mut watch = vec![(dir, false)];
    let mut add = |entry: (PathBuf, bool)| {
        if !watch.contains(&entry) {
            watch.push(entry);
        }
    };
    if let Ok(loaded) = crate::config::load(path) {
        // An included folder itself, so a file added to it is seen; an included file's folder.
        let base = path.parent().unwrap_or(std::path::Path::new(""));
        for entry in &loaded.file.include {
            let target = base.join(&entry.value);
            let folder = if target.is_dir() { Some(target.as_path()) } else { target.parent() };
            if let Some(folder) = folder.filter(|f| !f.as_os_str().is_empty()) {
                add((folder.to_path_buf(), false));
            }
        }
    }
    for file in routes.schema_files() {
        if let Some(parent) = file.parent() {
            add((parent.to_path_buf(), true));
        }
    }
    watch
}
