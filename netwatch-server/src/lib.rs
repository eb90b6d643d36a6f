//! Netwatch server: ingest from the capture helpers, a 60-minute in-memory flow store, the
//! REST API, the WebSocket feed and the embedded dashboard.
//!
//! # Layout
//!
//! * [`config`]: flags, `NETWATCH_*` environment variables and the TOML file, layered.
//! * [`ingest`]: the Unix socket: SO_PEERCRED allow list, framed decoding with the
//!   protocol crate's limits, de-duplication by (instance, sequence), `Ack`s.
//! * [`store`]: the deterministic flow store (columns + hash index), per-second and
//!   per-minute series, top talkers, retention and the memory ceiling. Takes `now`.
//! * [`model`]: JSON views (`NetworkFlow`, `SystemMetrics`, `TopTalker`), shared by the
//!   API and the WebSocket feed.
//! * [`api`]: `/api/v1/...` routes, parameter validation, the seeds' error body.
//! * [`http`]: the router (WebSocket, API, assets, JSON 404), request ids, access log;
//!   the composition point for the security layer.
//! * [`ws`]: the WebSocket feed.
//! * [`assets`]: the embedded dashboard.
//! * [`state`]: [`state::AppState`], shared by every task.
//! * [`clock`]: the wall clock, read only at the edges (handlers, ticks) and passed down.
//! * [`server`]: startup, the once-a-second tick, graceful shutdown.
//! * [`shutdown`]: the SIGTERM/SIGINT future and the broadcast listener.
//! * [`host`]: the server's CPU and memory from `/proc/self`.
//! * [`security`]: HTTP exposure control (issue 7): listen check, bearer tokens compared in
//!   constant time, rate limits, Host/Origin/CORS rules, security headers;
//!   `security::protect` wraps the router.
//! * [`metrics`]: Prometheus registry and `GET /metrics` (capture, flows, ingest, HTTP,
//!   WebSocket, process), read from [`state::AppState`] at scrape time.
#![forbid(unsafe_code)]

pub mod api;
pub mod assets;
pub mod clock;
pub mod config;
pub mod host;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod security;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod ws;
