//! One client connection, from accept to close: the TLS handshake when the listener speaks
//! HTTPS, then HTTP/1.1 or HTTP/2 over it, closed gracefully at shutdown or once it has been
//! idle (no request open) for the read timeout, whichever protocol it speaks.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_util::task::AbortOnDropHandle;

use super::client::Peer;
use super::tls::Tls;
use super::{State, handler};
use crate::shutdown::Shutdown;

/// What every connection of a listener shares.
pub struct Settings {
    pub builder: auto::Builder<TokioExecutor>,
    /// For the TLS handshake, and how long a connection may sit with no request open.
    pub read_timeout: Duration,
    pub tls: Option<Arc<Tls>>,
}

/// Serves the connection `stream` until it closes.
pub async fn run(settings: Arc<Settings>, stream: TcpStream, peer: SocketAddr, state: Arc<State>, shutdown: Shutdown) {
    let _ = stream.set_nodelay(true);
    let Some(tls) = &settings.tls else {
        let peer = Peer { ip: peer.ip(), certified: false };
        return serve(&settings, stream, peer, state, shutdown).await;
    };
    match tokio::time::timeout(settings.read_timeout, handshake(tls, stream)).await {
        Ok(Ok(stream)) => {
            // rustls keeps a client's certificates only when they verified.
            let certified = stream.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
            serve(&settings, stream, Peer { ip: peer.ip(), certified }, state, shutdown).await
        }
        Ok(Err(e)) => {
            crate::metrics::tls_handshake_failed(e.reason);
            tracing::debug!(%peer, error = %e.error, "TLS handshake failed");
        }
        Err(_) => crate::metrics::tls_handshake_failed("timeout"),
    }
}

/// HTTP on `io` until the client closes, shutdown begins or the connection sits idle.
async fn serve<I>(settings: &Settings, io: I, peer: Peer, state: Arc<State>, shutdown: Shutdown)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let open = activity.clone();
    let service = service_fn(move |req| {
        let (state, open) = (state.clone(), open.clone());
        async move {
            let _open = open.begin();
            Ok::<_, Infallible>(handler::handle(state, req, peer).await)
        }
    });
    // A watchdog task says when to close: the connection's own task then polls only the
    // connection and a oneshot (an atomic load), not the shutdown token every connection
    // shares, whose lock two workers would fight over on every poll.
    let (close, closing) = oneshot::channel::<()>();
    let idle = settings.read_timeout;
    let _watchdog = AbortOnDropHandle::new(tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.wait() => {}
            _ = activity.idle_for(idle) => {}
        }
        let _ = close.send(());
    }));
    let conn = settings.builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let ended = tokio::select! {
        biased;
        ended = conn.as_mut() => Some(ended),
        _ = closing => None,
    };
    // Requests under way finish; an HTTP/2 client is told (GOAWAY) to open no more.
    let ended = match ended {
        Some(ended) => ended,
        None => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(peer = %peer.ip, error = %e, "connection ended with an error");
    }
}

/// Requests open on a connection, and when the last one ended.
struct Activity {
    born: Instant,
    open: AtomicUsize,
    /// Milliseconds from `born` to the end of the last request.
    last_end_ms: AtomicU64,
}

/// One open request; its drop marks the end.
struct Open<'a>(&'a Activity);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        let now = self.0.born.elapsed().as_millis() as u64;
        self.0.last_end_ms.store(now, Ordering::Relaxed);
        self.0.open.fetch_sub(1, Ordering::Release);
    }
}

impl Activity {
    fn new() -> Activity {
        Activity { born: Instant::now(), open: AtomicUsize::new(0), last_end_ms: AtomicU64::new(0) }
    }

    fn begin(&self) -> Open<'_> {
        self.open.fetch_add(1, Ordering::Acquire);
        Open(self)
    }

    /// Completes once no request has been open for `idle`.
    async fn idle_for(&self, idle: Duration) {
        let mut check = tokio::time::Instant::now() + idle;
        loop {
            tokio::time::sleep_until(check).await;
            if self.open.load(Ordering::Acquire) == 0 {
                let since = Duration::from_millis(self.last_end_ms.load(Ordering::Relaxed));
                let quiet = self.born.elapsed().saturating_sub(since);
                if quiet >= idle {
                    return;
                }
                check += idle - quiet;
            } else {
                check += idle;
            }
        }
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
    tls.acceptor().accept(stream).await.map_err(failed("handshake"))
}
