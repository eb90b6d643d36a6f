//! Optional HTTPS (D-12): rustls (ring provider, TLS 1.2 and 1.3) in front of the same warp
//! filter, for `--tls-cert` / `--tls-key` (PEM).
//!
//! warp 0.4 has no TLS of its own, so this module runs the accept loop: TCP accept, TLS
//! handshake (bounded by [`HANDSHAKE_TIMEOUT`]), then hyper-util's HTTP/1.1 connection with
//! upgrades (the WebSocket works over TLS too). warp only records the peer address for the
//! connections it accepts itself, so each request here carries a [`ClientAddr`] extension,
//! which [`super::protect`] reads for the rate limiter.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::TlsFiles;

/// Longest a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The peer address of a request served by [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// Why the certificate or key cannot be used.
#[derive(Debug, Error)]
pub enum TlsError {
    /// The certificate file is unreadable or not PEM.
    #[error("TLS certificate {path}: {message}")]
    Cert {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The key file is unreadable, not PEM, or holds no private key.
    #[error("TLS key {path}: {message}")]
    Key {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Loads the PEM certificate chain and key into a rustls acceptor (HTTP/1.1 via ALPN).
///
/// # Errors
/// A [`TlsError`] naming the file and the problem.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let cert_err = |message: String| TlsError::Cert {
        path: files.cert.clone(),
        message,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(cert_err("no CERTIFICATE block in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Key {
        path: files.key.clone(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// Serves `filter` over TLS on `listener` until `shutdown` fires. Failed handshakes and
/// broken connections are logged at debug level and never stop the loop.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    filter: BoxedFilter<(Response,)>,
    mut shutdown: broadcast::Receiver<()>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.recv() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!("https accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let svc = warp::service(filter.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let handler = warp::hyper::service::service_fn(
                move |mut req: warp::http::Request<warp::hyper::body::Incoming>| {
                    req.extensions_mut().insert(ClientAddr(peer));
                    let mut svc = svc.clone();
                    async move {
                        let resp: Result<Response, Infallible> =
                            tower_service::Service::call(&mut svc, req).await;
                        resp
                    }
                },
            );
            let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .http1_only()
                .serve_connection_with_upgrades(TokioIo::new(stream), handler)
                .await;
            if let Err(e) = conn {
                tracing::debug!(%peer, "https connection: {e}");
            }
        });
    }
}
