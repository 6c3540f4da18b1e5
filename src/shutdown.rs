//! Graceful shutdown in one small type: a token every task watches, tripped by SIGTERM or
//! SIGINT (or by a test); a second signal ends the process at once.

use tokio_util::sync::CancellationToken;

/// Cheap to clone; every clone sees the same trip.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// A shutdown that trips on SIGTERM or SIGINT. A second signal ends the process at once
    /// (exit 128 + its number), as an impatient Ctrl-C expects: what it abandons is safe, as
    /// nothing unacknowledged was answered 2xx and unfinished events are redelivered.
    pub fn on_signals() -> Shutdown {
        let shutdown = Shutdown::new();
        let trip = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received (another one stops at once)");
            trip.trigger();
            let signal = wait_for_signal().await;
            tracing::warn!("second shutdown signal: stopping at once, abandoning open work");
            crate::logging::flush();
            std::process::exit(128 + signal);
        });
        shutdown
    }

    /// A shutdown of its own that this one's trips too: one part stopped alone (a dispatcher
    /// a reload removes), or with everything.
    pub fn child(&self) -> Shutdown {
        Shutdown { token: self.token.child_token() }
    }

    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes once shutdown has begun.
    pub async fn wait(&self) {
        self.token.cancelled().await
    }
}

/// Waits for SIGTERM or SIGINT; returns its number.
async fn wait_for_signal() -> i32 {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => 15,
            _ = int.recv() => 2,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        2
    }
}
