//! The ingress: a hyper server that turns webhooks into acknowledged Kafka events, and
//! answers the operational endpoints (`/healthz`, `/readyz`, `/metrics`) in every role.
//!
//! Thin by design: [`handler`] reads the request and calls the pure [`crate::pipeline`];
//! the only IO is the socket and the producer.

pub mod body;
pub mod handler;
pub mod ready;
pub mod response;
pub mod tls;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

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
    let graceful = GracefulShutdown::new();
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
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let service = service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(handler::handle(state, req).await) }
        });
        let Some(tls) = &tls else {
            let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned());
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                drop(permit);
            });
            continue;
        };
        // The handshake runs on the connection's task, within the time a request head gets.
        let (tls, builder, watcher) = (tls.clone(), builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            match tokio::time::timeout(read_timeout, handshake(&tls, stream)).await {
                Ok(Ok(stream)) => {
                    let conn = watcher.watch(builder.serve_connection(TokioIo::new(stream), service));
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                Ok(Err(e)) => {
                    crate::metrics::tls_handshake_failed(e.reason);
                    tracing::debug!(%peer, error = %e.error, "TLS handshake failed");
                }
                Err(_) => crate::metrics::tls_handshake_failed("timeout"),
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("ingress stopped accepting; finishing open requests");
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("open requests did not finish within {grace:?}");
    }
}

/// Why a connection never got to HTTP over TLS.
struct HandshakeFailed {
    /// For the metric: `plain_http` or `handshake`.
    reason: &'static str,
    error: std::io::Error,
}

/// A TLS handshake; a client that speaks plain HTTP instead is told so, in plain HTTP.
async fn handshake(
    tls: &Tls,
    mut stream: TcpStream,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, HandshakeFailed> {
    let failed = |reason| move |error| HandshakeFailed { reason, error };
    let mut first = [0u8; 1];
    stream.peek(&mut first).await.map_err(failed("handshake"))?;
    // Every TLS connection opens with a handshake record (content type 22).
    if first[0] != 0x16 {
        let body = br#"{"status":"rejected","reason":"plain_http","message":"this port speaks HTTPS: use https://"}"#;
        let head = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        // Read what the client sent first: closing on unread bytes would reset the connection
        // before the client reads the answer.
        let mut sink = vec![0u8; 16 * 1024];
        let _ = stream.try_read(&mut sink);
        let _ = stream.write_all(&[head.as_bytes(), body].concat()).await;
        let _ = stream.shutdown().await;
        let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
        return Err(failed("plain_http")(std::io::Error::other("plain HTTP on the HTTPS port")));
    }
    tls.acceptor.accept(stream).await.map_err(failed("handshake"))
}
