//! Graceful shutdown (mini-redis style): one future that resolves on SIGTERM or SIGINT, and
//! a broadcast channel in [`crate::state::AppState`] that tells every task to stop.

use tokio::sync::broadcast;

/// Resolves when the process receives SIGTERM or SIGINT (Ctrl-C).
pub async fn signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM received"),
        r = tokio::signal::ctrl_c() => match r {
            Ok(()) => tracing::info!("SIGINT received"),
            Err(e) => tracing::warn!("cannot listen for SIGINT: {e}"),
        },
    }
}

/// Listens for the shutdown broadcast and remembers that it arrived.
#[derive(Debug)]
pub struct Shutdown {
    done: bool,
    rx: broadcast::Receiver<()>,
}

impl Shutdown {
    /// Wraps a receiver of the shutdown broadcast.
    #[must_use]
    pub fn new(rx: broadcast::Receiver<()>) -> Shutdown {
        Shutdown { done: false, rx }
    }

    /// True once the signal was received.
    #[must_use]
    pub fn is_shutdown(&self) -> bool {
        self.done
    }

    /// Waits for the signal (returns at once if it already arrived).
    pub async fn recv(&mut self) {
        if self.done {
            return;
        }
        // Closed or lagged both mean "stop".
        let _ = self.rx.recv().await;
        self.done = true;
    }
}
