//! Exposure control for the HTTP side (SEC-01..10, D-12, D-13, D-16, D-23): who may listen
//! where, who may ask, how often, from which page, and the headers every answer carries.
//!
//! Policy (docs/SECURITY.md, "HTTP exposure"):
//! - The server listens on 127.0.0.1:8080 by default; any non-loopback address needs a token,
//!   otherwise it refuses to start ([`check_listen`]).
//! - With a token configured, every request under `/api/`, `/metrics` and `/ws` needs it,
//!   loopback included (no "localhost skips auth" rule: a local proxy or another local user
//!   would be let in). The dashboard's static files are public: they hold no data, and the
//!   page asks for the token and keeps it in memory only.
//! - Without a token the server is loopback-only, and the `Host` header must name loopback (or
//!   a configured host): a DNS-rebinding page cannot read the API through the browser.
//! - Per-client fixed one-minute windows (100 requests, 1000 for loopback): 429 with
//!   `Retry-After` ([`ratelimit`]).
//! - A WebSocket upgrade, and any `/api` request carrying an `Origin`, must come from the
//!   server's own origin or a configured one ([`origin`]); CORS answers only configured origins.
//! - Security headers on every response, errors and 404 included ([`headers`]).
//! - Optional HTTPS with rustls ([`tls`]).
//!
//! [`protect`] wraps the router with all of this; [`Security::admit`] is the decision itself,
//! deterministic and tested without a server.

pub mod auth;
pub mod headers;
pub mod origin;
pub mod ratelimit;
pub mod tls;

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use thiserror::Error;
use warp::filters::BoxedFilter;
use warp::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use warp::http::{Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::api::error::{ApiError, RequestId, REQUEST_ID_HEADER};
use crate::metrics::Metrics;
pub use auth::{Token, TokenError, TokenSet};
pub use origin::OriginPolicy;
pub use ratelimit::{Decision, RateLimiter, RateLimits};

/// Why the security settings cannot be used; the server must not start.
#[derive(Debug, Error)]
pub enum SecurityError {
    /// A non-loopback listen address without a token.
    #[error(
        "refusing to listen on {0} without a token: anyone who can reach that address would \
see this host's traffic. Listen on 127.0.0.1 (the default), or configure a bearer token with \
--token-file PATH (or NETWATCH_TOKEN_FILE, or NETWATCH_TOKEN); see docs/OPERATIONS.md"
    )]
    ExposedWithoutToken(SocketAddr),
    /// `NETWATCH_AUTH_ENABLED=true` (the seeds' switch) without a token.
    #[error(
        "NETWATCH_AUTH_ENABLED is true but no token is configured (--token-file or NETWATCH_TOKEN)"
    )]
    AuthEnabledWithoutToken,
    /// The token could not be loaded.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Only one of the TLS certificate and key was given.
    #[error("TLS needs both --tls-cert and --tls-key")]
    TlsHalfConfigured,
}

/// Command-line flags and environment variables of the security layer (flattened into the
/// server's command line; the `[security]` table of the config file has the same keys).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SecurityArgs {
    /// File with the bearer token(s), one per line (several allow rotation); must not be
    /// readable by other users. Required to listen on a non-loopback address. The token may
    /// also come from the NETWATCH_TOKEN variable (never a flag: flags show in `ps`).
    #[arg(long, env = "NETWATCH_TOKEN_FILE", value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Extra origin allowed to open the WebSocket and to read the API through CORS
    /// (e.g. https://grafana.example:3000); repeat or separate with commas.
    #[arg(
        long = "allow-origin",
        env = "NETWATCH_ALLOW_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub allow_origins: Option<Vec<String>>,
    /// Extra host name (Host header) a server without a token answers to, besides loopback.
    #[arg(
        long = "allow-host",
        env = "NETWATCH_ALLOW_HOSTS",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub allow_hosts: Option<Vec<String>>,
    /// Requests per minute per non-loopback client, 0 for no limit [default: 100].
    #[arg(long, env = "NETWATCH_RATE_LIMIT", value_name = "N")]
    pub rate_limit: Option<u32>,
    /// Requests per minute per loopback client, 0 for no limit [default: 1000].
    #[arg(long, env = "NETWATCH_RATE_LIMIT_LOOPBACK", value_name = "N")]
    pub rate_limit_loopback: Option<u32>,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, env = "NETWATCH_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "NETWATCH_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
}

/// The `[security]` table of the config file (same keys as [`SecurityArgs`]).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityFile {
    /// See [`SecurityArgs::token_file`].
    pub token_file: Option<PathBuf>,
    /// See [`SecurityArgs::allow_origins`].
    pub allow_origins: Option<Vec<String>>,
    /// See [`SecurityArgs::allow_hosts`].
    pub allow_hosts: Option<Vec<String>>,
    /// See [`SecurityArgs::rate_limit`].
    pub rate_limit: Option<u32>,
    /// See [`SecurityArgs::rate_limit_loopback`].
    pub rate_limit_loopback: Option<u32>,
    /// See [`SecurityArgs::tls_cert`].
    pub tls_cert: Option<PathBuf>,
    /// See [`SecurityArgs::tls_key`].
    pub tls_key: Option<PathBuf>,
}

impl SecurityArgs {
    /// Flags (and their variables) over the file's `[security]` table.
    #[must_use]
    pub fn over(self, file: Option<SecurityFile>) -> SecurityArgs {
        let f = file.unwrap_or_default();
        SecurityArgs {
            token_file: self.token_file.or(f.token_file),
            allow_origins: self.allow_origins.or(f.allow_origins),
            allow_hosts: self.allow_hosts.or(f.allow_hosts),
            rate_limit: self.rate_limit.or(f.rate_limit),
            rate_limit_loopback: self.rate_limit_loopback.or(f.rate_limit_loopback),
            tls_cert: self.tls_cert.or(f.tls_cert),
            tls_key: self.tls_key.or(f.tls_key),
        }
    }
}

/// TLS certificate and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Validated security settings.
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    /// Bearer tokens (empty: authentication off, loopback only).
    pub tokens: TokenSet,
    /// Rate limits.
    pub rate: RateLimits,
    /// Extra allowed origins (WebSocket and CORS).
    pub allowed_origins: Vec<String>,
    /// Extra host names answered without a token.
    pub allowed_hosts: Vec<String>,
    /// TLS files, when HTTPS is served.
    pub tls: Option<TlsFiles>,
}

impl SecurityArgs {
    /// Loads the token(s) and checks the listen address against them. `env` looks up
    /// `NETWATCH_TOKEN` (or the seeds' `NETWATCH_AUTH_TOKEN`) and `NETWATCH_AUTH_ENABLED`.
    ///
    /// # Errors
    /// Any [`SecurityError`]; the server must then exit non-zero with its message.
    pub fn build(
        &self,
        listen: SocketAddr,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<SecurityConfig, SecurityError> {
        let env_token = ["NETWATCH_TOKEN", "NETWATCH_AUTH_TOKEN"]
            .into_iter()
            .find_map(|name| {
                env(name)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (name, v))
            });
        let tokens = TokenSet::load(
            self.token_file.as_deref(),
            env_token.as_ref().map(|(n, v)| (*n, v.as_str())),
        )?;
        let auth_on = env("NETWATCH_AUTH_ENABLED").is_some_and(|v| {
            matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes")
        });
        if auth_on && tokens.is_empty() {
            return Err(SecurityError::AuthEnabledWithoutToken);
        }
        check_listen(listen, &tokens)?;
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None) => None,
            _ => return Err(SecurityError::TlsHalfConfigured),
        };
        let d = RateLimits::default();
        Ok(SecurityConfig {
            tokens,
            rate: RateLimits {
                remote: self.rate_limit.unwrap_or(d.remote),
                loopback: self.rate_limit_loopback.unwrap_or(d.loopback),
                ..d
            },
            allowed_origins: self.allow_origins.clone().unwrap_or_default(),
            allowed_hosts: self.allow_hosts.clone().unwrap_or_default(),
            tls,
        })
    }
}

/// Refuses a non-loopback listen address (0.0.0.0 and :: included) without a token.
///
/// # Errors
/// [`SecurityError::ExposedWithoutToken`].
pub fn check_listen(listen: SocketAddr, tokens: &TokenSet) -> Result<(), SecurityError> {
    if !listen.ip().is_loopback() && tokens.is_empty() {
        return Err(SecurityError::ExposedWithoutToken(listen));
    }
    Ok(())
}

/// What a request needs once admitted (response decorations).
#[derive(Debug, Clone, Default)]
pub struct Admission {
    cors_origin: Option<HeaderValue>,
    select_ws_protocol: bool,
}

/// An answer given by the security layer itself (refusal or CORS preflight).
#[derive(Debug)]
pub struct Verdict {
    status: StatusCode,
    /// Error code of the seeds' error body; `None` for a successful preflight.
    code: Option<&'static str>,
    message: &'static str,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Label of `netwatch_http_refused_total`.
    reason: &'static str,
}

impl warp::reject::Reject for Verdict {}

impl Verdict {
    fn refuse(
        status: StatusCode,
        code: &'static str,
        message: &'static str,
        reason: &'static str,
    ) -> Self {
        Self {
            status,
            code: Some(code),
            message,
            headers: Vec::new(),
            reason,
        }
    }

    /// The HTTP status of this answer.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    fn into_response(self, request_id: &RequestId) -> Response {
        let mut resp = match self.code {
            Some(code) => error_response(self.status, code, self.message, request_id),
            None => {
                let mut r = Response::new(warp::hyper::body::Bytes::new().into());
                *r.status_mut() = self.status;
                request_id.tag(&mut r);
                r
            }
        };
        for (k, v) in self.headers {
            resp.headers_mut().append(k, v);
        }
        resp
    }
}

/// The request facts the decision needs.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// Peer address (None when unknown: treated as one shared non-loopback client).
    pub remote: Option<IpAddr>,
    /// Method.
    pub method: &'a Method,
    /// Path.
    pub path: &'a str,
    /// Headers.
    pub headers: &'a HeaderMap,
}

/// The security layer's state: tokens, policies and the rate limiter.
#[derive(Debug)]
pub struct Security {
    tokens: TokenSet,
    origins: OriginPolicy,
    limiter: Mutex<RateLimiter>,
    tls: bool,
    epoch: Instant,
    metrics: Option<Arc<Metrics>>,
}

/// Paths that hold data and need the token (when one is configured).
#[must_use]
pub fn is_protected(path: &str) -> bool {
    path == "/api"
        || path.starts_with("/api/")
        || path == "/metrics"
        || path == "/ws"
        || path.starts_with("/ws/")
}

fn is_ws_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::UPGRADE)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

impl Security {
    /// Builds the layer from validated settings; `metrics` counts refusals and requests.
    #[must_use]
    pub fn new(cfg: &SecurityConfig, metrics: Option<Arc<Metrics>>) -> Self {
        let tls = cfg.tls.is_some();
        Self {
            tokens: cfg.tokens.clone(),
            origins: OriginPolicy::new(&cfg.allowed_origins, &cfg.allowed_hosts, tls),
            limiter: Mutex::new(RateLimiter::new(cfg.rate)),
            tls,
            epoch: Instant::now(),
            metrics,
        }
    }

    /// True when a token is required.
    #[must_use]
    pub fn auth_enabled(&self) -> bool {
        self.tokens.enabled()
    }

    /// Decides about one request at `now` (time since any fixed origin): admit it (with the
    /// decorations its response needs) or answer it here.
    ///
    /// Order: rate limit (first, so guessing tokens is limited too), Host (no token only),
    /// CORS preflight, Origin, token.
    ///
    /// # Errors
    /// The [`Verdict`] to answer with instead of routing the request.
    pub fn admit(&self, req: RequestFacts<'_>, now: Duration) -> Result<Admission, Verdict> {
        let ip = req.remote.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let decision = self
            .limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check(ip, now);
        if let Decision::Deny {
            retry_after_secs, ..
        } = decision
        {
            let mut v = Verdict::refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                "Too many requests from this client; retry after the number of seconds in Retry-After",
                "rate_limited",
            );
            v.headers
                .push((header::RETRY_AFTER, HeaderValue::from(retry_after_secs)));
            return Err(v);
        }
        let host = req.headers.get(header::HOST).and_then(|h| h.to_str().ok());
        if !self.tokens.enabled() {
            if let Some(h) = host {
                if !self.origins.local_host(h) {
                    return Err(Verdict::refuse(
                        StatusCode::FORBIDDEN,
                        "FORBIDDEN_HOST",
                        "This server answers only to loopback host names unless a token is configured",
                        "host",
                    ));
                }
            }
        }
        let origin = req
            .headers
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok());
        let ws = is_ws_upgrade(req.headers);
        let mut adm = Admission::default();
        if let Some(o) = origin {
            if self.origins.configured(o) {
                adm.cors_origin = HeaderValue::from_str(o).ok();
            }
            let preflight = req.method == Method::OPTIONS
                && req
                    .headers
                    .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
            if preflight {
                return Err(self.preflight(o, host));
            }
            if (ws || is_protected(req.path)) && !self.origins.allows(o, host) {
                return Err(Verdict::refuse(
                    StatusCode::FORBIDDEN,
                    "ORIGIN_FORBIDDEN",
                    "Requests from this origin are not allowed (same-origin only unless configured)",
                    "origin",
                ));
            }
        }
        if self.tokens.enabled() && (is_protected(req.path) || ws) {
            let presented = auth::presented_token(req.headers, ws);
            let ok = presented.bytes().is_some_and(|t| self.tokens.verify(t));
            if !ok {
                let mut v = Verdict::refuse(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED",
                    "A valid bearer token is required (Authorization: Bearer <token>)",
                    "unauthorized",
                );
                let challenge = if presented.bytes().is_some() {
                    "Bearer realm=\"netwatch\", error=\"invalid_token\""
                } else {
                    "Bearer realm=\"netwatch\""
                };
                v.headers.push((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                ));
                return Err(v);
            }
        }
        adm.select_ws_protocol = ws && auth::offers_ws_protocol(req.headers);
        Ok(adm)
    }

    fn preflight(&self, origin: &str, host: Option<&str>) -> Verdict {
        if self.origins.configured(origin) || self.origins.same_origin(origin, host) {
            let mut v = Verdict {
                status: StatusCode::NO_CONTENT,
                code: None,
                message: "",
                headers: Vec::new(),
                reason: "",
            };
            if let Ok(o) = HeaderValue::from_str(origin) {
                v.headers.push((header::ACCESS_CONTROL_ALLOW_ORIGIN, o));
            }
            v.headers.push((
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, HEAD, OPTIONS"),
            ));
            v.headers.push((
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("authorization, content-type"),
            ));
            v.headers.push((
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            ));
            v.headers
                .push((header::VARY, HeaderValue::from_static("origin")));
            return v;
        }
        Verdict::refuse(
            StatusCode::FORBIDDEN,
            "ORIGIN_FORBIDDEN",
            "Cross-origin requests from this origin are not allowed",
            "cors",
        )
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Adds the response decorations of an admitted request and the security headers.
    fn finish(&self, adm: &Admission, resp: &mut Response) {
        if let Some(o) = &adm.cors_origin {
            let h = resp.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("retry-after"),
            );
            h.append(header::VARY, HeaderValue::from_static("origin"));
        }
        if adm.select_ws_protocol
            && resp.status() == StatusCode::SWITCHING_PROTOCOLS
            && !resp.headers().contains_key(header::SEC_WEBSOCKET_PROTOCOL)
        {
            resp.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(auth::WS_PROTOCOL),
            );
        }
    }
}

/// A request id for the security layer's own answers (`requestId`, API-30/32), honouring
/// an acceptable client `X-Request-Id` like the router does.
#[must_use]
pub fn request_id(headers: Option<&HeaderMap>) -> RequestId {
    RequestId::new(
        headers
            .and_then(|h| h.get(REQUEST_ID_HEADER))
            .and_then(|v| v.to_str().ok()),
    )
}

/// The seeds' error body (API-30) with `status`, through the API's own error type.
#[must_use]
pub fn error_response(
    status: StatusCode,
    code: &'static str,
    message: &str,
    rid: &RequestId,
) -> Response {
    ApiError {
        status,
        code,
        message: message.to_owned(),
        details: None,
    }
    .into_response(rid)
}

/// Turns a rejection that reached the top into the seeds' error body.
fn rejection_response(rej: &Rejection) -> Response {
    let id = request_id(None);
    if rej.is_not_found() {
        return error_response(StatusCode::NOT_FOUND, "NOT_FOUND", "No such resource", &id);
    }
    if rej.find::<warp::reject::MethodNotAllowed>().is_some() {
        return error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "Method not allowed",
            &id,
        );
    }
    if rej.find::<warp::reject::InvalidQuery>().is_some()
        || rej.find::<warp::reject::InvalidHeader>().is_some()
        || rej.find::<warp::reject::MissingHeader>().is_some()
    {
        return error_response(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "Invalid request",
            &id,
        );
    }
    tracing::warn!(rejection = ?rej, "unhandled rejection");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "System temporarily unavailable",
        &id,
    )
}

/// Wraps the whole router: admission ([`Security::admit`]), CORS and WebSocket decorations,
/// the seeds' error body for anything the router rejects, security headers on every response,
/// and the HTTP metrics (when `metrics` is given to [`Security::new`]).
pub fn protect(
    sec: Arc<Security>,
    routes: BoxedFilter<(Response,)>,
) -> impl Filter<Extract = (impl warp::Reply,), Error = Infallible> + Clone + Send + Sync + 'static
{
    let s_admit = sec.clone();
    // warp records the peer for the connections it accepts; the TLS server adds ClientAddr.
    let peer = warp::addr::remote()
        .and(warp::ext::optional::<tls::ClientAddr>())
        .map(|a: Option<SocketAddr>, c: Option<tls::ClientAddr>| a.or(c.map(|c| c.0)));
    let admit = peer
        .and(warp::method())
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and_then(
            move |remote: Option<SocketAddr>,
                  method: Method,
                  path: warp::path::FullPath,
                  headers: HeaderMap| {
                let s = s_admit.clone();
                async move {
                    let facts = RequestFacts {
                        remote: remote.map(|a| a.ip()),
                        method: &method,
                        path: path.as_str(),
                        headers: &headers,
                    };
                    s.admit(facts, s.now()).map_err(|v| {
                        if let Some(m) = &s.metrics {
                            if !v.reason.is_empty() {
                                m.observe_refused(v.reason);
                            }
                        }
                        warp::reject::custom(v)
                    })
                }
            },
        );
    let s_finish = sec.clone();
    let s_tls = sec.tls;
    let metrics = sec.metrics.clone();
    admit
        .and(routes)
        .map(move |adm: Admission, mut resp: Response| {
            s_finish.finish(&adm, &mut resp);
            resp
        })
        .recover(|rej: Rejection| async move {
            let resp = match rej.find::<Verdict>() {
                Some(v) => Verdict {
                    status: v.status,
                    code: v.code,
                    message: v.message,
                    headers: v.headers.clone(),
                    reason: v.reason,
                }
                .into_response(&request_id(None)),
                None => rejection_response(&rej),
            };
            Ok::<Response, Infallible>(resp)
        })
        .unify()
        .map(move |mut resp: Response| {
            headers::apply(resp.headers_mut(), s_tls);
            resp
        })
        .with(warp::log::custom(move |info| {
            if let Some(m) = &metrics {
                m.observe_http(info.path(), info.status().as_u16(), info.elapsed());
            }
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn sec(token: bool, rate: RateLimits) -> Security {
        let tokens = if token {
            TokenSet::new(vec![Token::parse(TOKEN, "test").expect("token")])
        } else {
            TokenSet::default()
        };
        Security::new(
            &SecurityConfig {
                tokens,
                rate,
                allowed_origins: vec!["https://grafana.example".into()],
                ..SecurityConfig::default()
            },
            None,
        )
    }

    fn facts<'a>(
        ip: &str,
        path: &'a str,
        headers: &'a HeaderMap,
        method: &'a Method,
    ) -> RequestFacts<'a> {
        RequestFacts {
            remote: Some(ip.parse().expect("ip")),
            method,
            path,
            headers,
        }
    }

    fn hdrs(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn token_required_everywhere_with_data_when_configured() {
        let s = sec(true, RateLimits::default());
        let get = Method::GET;
        let none = hdrs(&[("host", "127.0.0.1:8080")]);
        let err = s.admit(
            facts("127.0.0.1", "/api/v1/flows", &none, &get),
            Duration::ZERO,
        );
        assert_eq!(err.expect_err("401").status(), StatusCode::UNAUTHORIZED);
        let err = s.admit(facts("127.0.0.1", "/metrics", &none, &get), Duration::ZERO);
        assert_eq!(err.expect_err("401").status(), StatusCode::UNAUTHORIZED);
        assert!(s
            .admit(facts("127.0.0.1", "/app.js", &none, &get), Duration::ZERO)
            .is_ok());
        let good = hdrs(&[("authorization", &format!("Bearer {TOKEN}"))]);
        assert!(s
            .admit(
                facts("192.0.2.1", "/api/v1/flows", &good, &get),
                Duration::ZERO
            )
            .is_ok());
        let short = hdrs(&[("authorization", &format!("Bearer {}", &TOKEN[..20]))]);
        assert_eq!(
            s.admit(
                facts("192.0.2.1", "/api/v1/flows", &short, &get),
                Duration::ZERO
            )
            .expect_err("401")
            .status(),
            StatusCode::UNAUTHORIZED
        );
        // A WebSocket carries the token as a subprotocol, and gets netwatch.v1 selected.
        let ws = hdrs(&[
            ("upgrade", "websocket"),
            (
                "sec-websocket-protocol",
                &format!("netwatch.v1, bearer.{TOKEN}"),
            ),
        ]);
        let adm = s
            .admit(facts("192.0.2.1", "/api/v1/ws", &ws, &get), Duration::ZERO)
            .expect("ok");
        assert!(adm.select_ws_protocol);
        let ws_bad = hdrs(&[
            ("upgrade", "websocket"),
            ("sec-websocket-protocol", "netwatch.v1"),
        ]);
        assert_eq!(
            s.admit(
                facts("192.0.2.1", "/api/v1/ws", &ws_bad, &get),
                Duration::ZERO
            )
            .expect_err("401")
            .status(),
            StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn without_token_only_loopback_host_names() {
        let s = sec(false, RateLimits::default());
        let get = Method::GET;
        let ok = hdrs(&[("host", "localhost:8080")]);
        assert!(s
            .admit(
                facts("127.0.0.1", "/api/v1/flows", &ok, &get),
                Duration::ZERO
            )
            .is_ok());
        let rebound = hdrs(&[("host", "attacker.example:8080")]);
        assert_eq!(
            s.admit(
                facts("127.0.0.1", "/api/v1/flows", &rebound, &get),
                Duration::ZERO
            )
            .expect_err("403")
            .status(),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn origins_and_cors() {
        let s = sec(false, RateLimits::default());
        let get = Method::GET;
        let same = hdrs(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
            ("upgrade", "websocket"),
        ]);
        assert!(s
            .admit(
                facts("127.0.0.1", "/api/v1/ws", &same, &get),
                Duration::ZERO
            )
            .is_ok());
        let foreign = hdrs(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
            ("upgrade", "websocket"),
        ]);
        assert_eq!(
            s.admit(
                facts("127.0.0.1", "/api/v1/ws", &foreign, &get),
                Duration::ZERO
            )
            .expect_err("403")
            .status(),
            StatusCode::FORBIDDEN
        );
        let foreign_api = hdrs(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ]);
        assert!(s
            .admit(
                facts("127.0.0.1", "/api/v1/flows", &foreign_api, &get),
                Duration::ZERO
            )
            .is_err());
        let cors = hdrs(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "https://grafana.example"),
        ]);
        let adm = s
            .admit(
                facts("127.0.0.1", "/api/v1/flows", &cors, &get),
                Duration::ZERO,
            )
            .expect("ok");
        assert!(adm.cors_origin.is_some());
        let opt = Method::OPTIONS;
        let pre = hdrs(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "https://grafana.example"),
            ("access-control-request-method", "GET"),
        ]);
        let v = s
            .admit(
                facts("127.0.0.1", "/api/v1/flows", &pre, &opt),
                Duration::ZERO,
            )
            .expect_err("preflight");
        assert_eq!(v.status(), StatusCode::NO_CONTENT);
        let pre_evil = hdrs(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
            ("access-control-request-method", "GET"),
        ]);
        let v = s
            .admit(
                facts("127.0.0.1", "/api/v1/flows", &pre_evil, &opt),
                Duration::ZERO,
            )
            .expect_err("refused");
        assert_eq!(v.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn rate_limit_comes_first_with_retry_after() {
        let s = sec(
            true,
            RateLimits {
                remote: 2,
                ..RateLimits::default()
            },
        );
        let get = Method::GET;
        let none = HeaderMap::new();
        for _ in 0..2 {
            // Refused for the token, but counted.
            assert_eq!(
                s.admit(
                    facts("192.0.2.9", "/api/v1/flows", &none, &get),
                    Duration::ZERO
                )
                .expect_err("401")
                .status(),
                StatusCode::UNAUTHORIZED
            );
        }
        let v = s
            .admit(
                facts("192.0.2.9", "/api/v1/flows", &none, &get),
                Duration::from_secs(1),
            )
            .expect_err("429");
        assert_eq!(v.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            v.headers[0],
            (header::RETRY_AFTER, HeaderValue::from(59u64))
        );
    }

    #[test]
    fn listen_check_and_args() {
        let t = TokenSet::new(vec![Token::parse(TOKEN, "t").expect("token")]);
        assert!(check_listen(
            "127.0.0.1:8080".parse().expect("addr"),
            &TokenSet::default()
        )
        .is_ok());
        assert!(check_listen("[::1]:8080".parse().expect("addr"), &TokenSet::default()).is_ok());
        let e = check_listen("0.0.0.0:8080".parse().expect("addr"), &TokenSet::default())
            .expect_err("refused");
        assert!(e
            .to_string()
            .contains("refusing to listen on 0.0.0.0:8080 without a token"));
        assert!(check_listen("0.0.0.0:8080".parse().expect("addr"), &t).is_ok());
        let args = SecurityArgs::default();
        let env = |k: &str| (k == "NETWATCH_TOKEN").then(|| TOKEN.to_owned());
        let cfg = args
            .build("[::]:8080".parse().expect("addr"), env)
            .expect("ok");
        assert!(cfg.tokens.enabled());
        let env = |k: &str| (k == "NETWATCH_AUTH_ENABLED").then(|| "true".to_owned());
        assert!(matches!(
            args.build("127.0.0.1:8080".parse().expect("addr"), env),
            Err(SecurityError::AuthEnabledWithoutToken)
        ));
    }
}
