//! The running process: which roles run, on what, and how they stop together.
//!
//! `serve` and `dev` both end up here; tests start it in-process too.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::ingress::tls::{Tls, TlsFiles};
use crate::ingress::{self, State};
use crate::kafka::producer;
use crate::reload::Reload;
use crate::routes::{EnvMode, Routes};
use crate::shutdown::Shutdown;

/// Which halves of Switchyard this process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Ingress,
    Dispatch,
    All,
}

impl Role {
    pub fn ingress(self) -> bool {
        matches!(self, Role::Ingress | Role::All)
    }
    pub fn dispatch(self) -> bool {
        matches!(self, Role::Dispatch | Role::All)
    }

    /// How a process of this role reads unset variables: strictly in the parts it runs only.
    pub fn env_mode(self) -> EnvMode {
        EnvMode::Strict { sources: self.ingress(), dispatch: self.dispatch() }
    }
}

/// Everything `start` needs.
pub struct AppConfig {
    pub routes: Arc<Routes>,
    pub role: Role,
    pub listen: SocketAddr,
    /// How long open work may take to finish once shutdown begins.
    pub grace: Duration,
    /// Hot reload (`serve`, `dev`); `None` keeps the routes fixed.
    pub reload: Option<Reload>,
    /// HTTPS with this certificate and key (reloaded when they change); plain HTTP without.
    pub tls: Option<TlsFiles>,
    /// With `tls`: client certificates issued by the CAs in this PEM file are checked (mutual
    /// TLS), for sources with `require_client_certificate`.
    pub tls_client_ca: Option<PathBuf>,
}

/// A started process.
pub struct Running {
    /// The bound HTTP address (webhooks in the ingress role; health and metrics in every role).
    pub addr: SocketAddr,
    pub state: Arc<State>,
    /// Ends with the first failure of a role, if one failed.
    supervisor: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Waits until every role has stopped and the producer is flushed; an error when a role
    /// failed (which stopped the others), so the process can exit non-zero and be restarted.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.supervisor.await.unwrap_or_else(|e| Err(anyhow::anyhow!("the supervisor failed: {e}")))
    }
}

/// Why `routes` cannot be served by a listener that checks client certificates or not
/// (`checks`): a source requires them and it checks none.
fn uncheckable_certificates(routes: &Routes, checks: bool) -> Option<String> {
    let source = routes.sources.iter().find(|s| s.require_client_certificate && !checks)?;
    Some(format!(
        "source '{}' requires client certificates (require_client_certificate), but the listener checks none: serve HTTPS with --tls-client-ca, --tls-cert and --tls-key",
        source.name
    ))
}

/// Starts the roles of `cfg`; they run until `shutdown` trips.
pub async fn start(cfg: AppConfig, shutdown: Shutdown) -> anyhow::Result<Running> {
    // First: certificates read from here on record their expiry.
    if crate::metrics::install().is_some() {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = crate::metrics::upkeep() => {}
                _ = shutdown.wait() => {}
            }
        });
    }
    let tls = match cfg.tls {
        Some(files) => Some(Arc::new(Tls::load(files, cfg.tls_client_ca.clone()).context("cannot serve HTTPS")?)),
        None if cfg.tls_client_ca.is_some() => {
            anyhow::bail!("a client CA (--tls-client-ca) needs HTTPS: give --tls-cert and --tls-key")
        }
        None => None,
    };
    let checks_certificates = tls.as_ref().is_some_and(|t| t.checks_client_certificates());
    if cfg.role.ingress()
        && let Some(why) = uncheckable_certificates(&cfg.routes, checks_certificates)
    {
        anyhow::bail!("{why}");
    }
    let producer = producer::producer(&cfg.routes.kafka).context("cannot create the Kafka producer")?;
    let live = Arc::new(ArcSwap::new(cfg.routes.clone()));
    // Each role ends with Ok on shutdown, or with the error that stopped it.
    let mut roles: JoinSet<anyhow::Result<()>> = JoinSet::new();
    // Every role listens: a dispatcher-only process still answers health checks and scrapes.
    let listener = TcpListener::bind(cfg.listen).await.map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => " (something else listens there: --listen or SWITCHYARD_LISTEN picks another address, e.g. 127.0.0.1:8090)",
            _ => "",
        };
        anyhow::anyhow!("cannot listen on {}: {e}{hint}", cfg.listen)
    })?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    if cfg.role.ingress() {
        let workers = tokio::runtime::Handle::current().metrics().num_workers();
        tracing::info!(%addr, scheme, sources = cfg.routes.sources.len(), workers, "ingress listening");
        for source in &cfg.routes.sources {
            let mut topics: Vec<&str> = source.topics().collect();
            topics.sort_unstable();
            topics.dedup();
            let (rules, replies, topics) = (source.rules.len(), source.replies.len(), topics.join(","));
            tracing::info!(source = %source.name, path = %source.path, rules, replies, %topics, "serving webhooks");
        }
    } else {
        tracing::info!(%addr, scheme, "dispatcher only: serving /healthz, /readyz and /metrics");
    }
    let state = Arc::new(State::new(live.clone(), producer.clone(), cfg.role.ingress()));
    {
        let (state, tls, shutdown, grace) = (state.clone(), tls.clone(), shutdown.clone(), cfg.grace);
        roles.spawn(async move {
            ingress::serve(listener, state, tls, shutdown, grace).await;
            Ok(())
        });
    }
    if let Some(tls) = tls {
        let shutdown = shutdown.clone();
        roles.spawn(async move {
            ingress::tls::watch(tls, shutdown).await;
            Ok(())
        });
    }
    // Told of each reload, so the dispatchers follow it.
    let reloaded = Arc::new(tokio::sync::Notify::new());
    if cfg.role.dispatch() {
        let fleet = crate::dispatch::fleet::Fleet {
            started: cfg.routes.clone(),
            live: live.clone(),
            reloaded: reloaded.clone(),
            producer: producer.clone(),
            shutdown: shutdown.clone(),
            grace: cfg.grace,
        };
        roles.spawn(crate::dispatch::fleet::run(fleet));
    }
    {
        // The producer serves every role (webhooks, dead letters): a fatal error stops them all.
        let (producer, shutdown) = (producer.clone(), shutdown.clone());
        roles.spawn(async move {
            tokio::select! {
                why = producer::fatal(&producer) => Err(anyhow::anyhow!("the Kafka producer failed for good: {why}")),
                _ = shutdown.wait() => Ok(()),
            }
        });
    }
    if let Some(mut reload) = cfg.reload {
        // A reload cannot give the listener a client CA: one that asks for client
        // certificates of a listener that checks none is refused, as startup would be.
        if cfg.role.ingress() {
            let (compile, config) = (reload.compile.clone(), reload.config.clone());
            reload.compile = Arc::new(move || {
                let routes = compile()?;
                match uncheckable_certificates(&routes, checks_certificates) {
                    None => Ok(routes),
                    Some(why) => {
                        let mut diags = crate::config::Diagnostics::default();
                        diags.error(&config, serde_saphyr::Location::UNKNOWN, why);
                        Err(diags)
                    }
                }
            });
        }
        let (live, shutdown) = (live.clone(), shutdown.clone());
        let count = move |r| {
            crate::metrics::reload(r == crate::reload::Reloaded::Ok);
            if r == crate::reload::Reloaded::Ok {
                reloaded.notify_one();
            }
        };
        let role = cfg.role;
        // Watching from here on, before the process says it is ready.
        let reloading = crate::reload::run(reload, live, role, shutdown, count);
        roles.spawn(async move {
            reloading.await;
            Ok(())
        });
    }
    let grace = cfg.grace;
    let supervisor = tokio::spawn(async move {
        // One deadline for every phase: the roles stop within `grace` of the signal (they
        // run side by side), and the final flush gets what is left of it (at least 1 s).
        let began = async {
            shutdown.wait().await;
            std::time::Instant::now()
        };
        // A role that fails stops the others: the process ends and reports it.
        let stopped = async {
            let mut failure = None;
            while let Some(joined) = roles.join_next().await {
                let error = match joined {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => e,
                    Err(e) => anyhow::anyhow!("a task of the process failed: {e}"),
                };
                tracing::error!(error = crate::text::error_chain(error.as_ref()), "failed; stopping");
                shutdown.trigger();
                failure.get_or_insert(error);
            }
            failure
        };
        let (began, failure) = tokio::join!(began, stopped);
        // Whatever the producer still holds (dead letters, late publishes) is delivered now.
        let left = grace.saturating_sub(began.elapsed()).max(Duration::from_secs(1));
        producer::flush(producer, left).await;
        failure.map_or(Ok(()), Err)
    });
    Ok(Running { addr, state, supervisor })
}
