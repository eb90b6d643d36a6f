//! Startup and shutdown: binds the ingest socket and the HTTP listener, runs the ingest,
//! the once-a-second tick and the HTTP server until the shutdown future resolves, then
//! broadcasts shutdown and waits for the tasks (mini-redis style).

use crate::clock::wall_ns;
use crate::config::Config;
use crate::host::Sampler;
use crate::state::AppState;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tracing::{info, warn};

/// Startup errors.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The ingest socket.
    #[error("ingest socket: {0}")]
    Socket(#[from] crate::ingest::BindError),
    /// The TLS certificate or key (issue 7).
    #[error(transparent)]
    Tls(#[from] crate::security::tls::TlsError),
    /// The HTTP listener.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// Runs the server until `shutdown` resolves.
///
/// # Errors
/// When the socket or the listener cannot be bound.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    let socket_path = config.socket.clone();
    let unix = crate::ingest::bind(&config.socket, config.socket_mode)?;
    let tcp = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = tcp.local_addr().map_err(|source| ServerError::Listen {
        addr: config.listen,
        source,
    })?;
    // Issue 7: HTTPS when a certificate and key are configured (checked before serving).
    let tls = match &config.security.tls {
        Some(files) => Some(crate::security::tls::acceptor(files)?),
        None => None,
    };
    let state = AppState::new(config);

    let ingest = tokio::spawn(crate::ingest::run(unix, state.clone()));
    let ticker = tokio::spawn(tick(state.clone()));
    let mut rx = state.shutdown.subscribe();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let http = match tls {
        Some(acceptor) => tokio::spawn(crate::security::tls::serve(
            tcp,
            acceptor,
            crate::http::app(state.clone()),
            rx,
        )),
        None => {
            let http = warp::serve(crate::http::app(state.clone()))
                .incoming(tcp)
                .graceful(async move {
                    let _ = rx.recv().await;
                });
            tokio::spawn(http.run())
        }
    };
    info!(
        "listening on {scheme}://{addr} ; ingest socket {}",
        socket_path.display()
    );

    shutdown.await;
    info!("shutting down");
    let _ = state.shutdown.send(());
    for (name, task) in [("ingest", ingest), ("tick", ticker), ("http", http)] {
        if tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .is_err()
        {
            warn!("{name} task did not stop within 5 s");
        }
    }
    if let Err(e) = std::fs::remove_file(&socket_path) {
        warn!("cannot remove {}: {e}", socket_path.display());
    }
    info!("stopped");
    Ok(())
}

/// Once a second: host sample, store clock, retention.
async fn tick(state: AppState) {
    let mut shutdown = crate::shutdown::Shutdown::new(state.shutdown.subscribe());
    let mut sampler = Sampler::new();
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = shutdown.recv() => return,
        }
        let s = sampler.sample();
        if let Ok(mut h) = state.host.lock() {
            *h = s;
        }
        state.write().tick(wall_ns(), s.cpu_percent, s.rss_bytes);
    }
}
