//! The ingress: a hyper server that turns webhooks into acknowledged Kafka events, and
//! answers the operational endpoints (`/healthz`, `/readyz`, `/metrics`) in every role.
//!
//! Thin by design: [`handler`] reads the request and calls the pure [`crate::pipeline`];
//! the only IO is the socket and the producer. A source's refused webhooks go to its
//! dead-letter topic ([`dead_letter`]), and [`redrive`] runs them through the routes again.

pub mod body;
pub mod client;
pub mod connection;
pub mod dead_letter;
pub mod handler;
pub mod ready;
pub mod redrive;
pub mod response;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::kafka::producer::EventProducer;
use crate::routes::Routes;
use crate::shutdown::Shutdown;
use tls::Tls;

/// What every request handler shares.
pub struct State {
    /// Swapped whole on reload; a request keeps the routes it started with.
    pub routes: Arc<ArcSwap<Routes>>,
    pub producer: EventProducer,
    /// Webhooks waiting on the broker.
    pub in_flight: Semaphore,
    /// Body bytes buffered at once, over all requests (one permit per byte).
    pub buffered: Semaphore,
    /// Unix seconds now (a function so tests can pin the clock).
    pub clock: fn() -> i64,
    /// False in a dispatcher-only process (`--role dispatch`): only the operational endpoints.
    pub webhooks: bool,
}

impl State {
    pub fn new(routes: Arc<ArcSwap<Routes>>, producer: EventProducer, webhooks: bool) -> State {
        let settings = &routes.load().ingress;
        let in_flight = Semaphore::new(settings.max_in_flight);
        let buffered = Semaphore::new(settings.max_buffered_bytes.min(Semaphore::MAX_PERMITS));
        State { routes, producer, in_flight, buffered, clock: unix_now, webhooks }
    }
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Serves until `shutdown`, then stops accepting and lets open requests finish (up to `grace`).
/// With `tls`, every connection speaks HTTPS (HTTP/2 or HTTP/1.1, by ALPN).
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    tls: Option<Arc<Tls>>,
    shutdown: Shutdown,
    grace: Duration,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let read_timeout = state.routes.load().ingress.read_timeout;
    // Headers must fit in 64 KiB (more is a 431); it also bounds each connection's read buffer.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(read_timeout).max_buf_size(64 * 1024);
    let settings = Arc::new(connection::Settings { builder, read_timeout, tls });
    let open = TaskTracker::new();
    let connections = Arc::new(Semaphore::new(state.routes.load().ingress.max_connections));
    loop {
        // At the connection limit, stop accepting: new clients wait in the kernel's backlog.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.wait() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let (settings, state, shutdown) = (settings.clone(), state.clone(), shutdown.clone());
        open.spawn(async move {
            connection::run(settings, stream, peer, state, shutdown).await;
            drop(permit);
        });
    }
    drop(listener);
    match state.webhooks {
        true => tracing::info!("ingress stopped accepting; finishing open requests"),
        false => tracing::info!("operational endpoints stopped accepting; finishing open requests"),
    }
    open.close();
    if tokio::time::timeout(grace, open.wait()).await.is_err() {
        tracing::warn!("open requests did not finish within {grace:?}");
    }
}
