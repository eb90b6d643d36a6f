//! The WebSocket live feed at `/api/v1/ws` and its alias `/ws` (D-08); the protocol is
//! documented in docs/WEBSOCKET.md (D-24).
//!
//! * [`protocol`]: message envelope, topics, client message parsing (pure).
//! * [`hub`]: client registry, bounded per-client queues ([`hub::QUEUE_LIMIT`]), fan-out,
//!   slow-client policy and counters.
//! * [`client`]: one connection: reads subscriptions, writes its queue, ping/pong keep-alive.
//! * [`feed`]: the producer: per-second metrics, top talkers, protocols, health, alerts and
//!   flow changes, built from the store with the REST API's own JSON.
//!
//! Origin and token checks happen before the upgrade, in [`crate::security`], which also
//! selects the `netwatch.v1` subprotocol; this module adds nothing to them.

pub mod client;
pub mod feed;
pub mod hub;
pub mod protocol;

use crate::state::AppState;
use std::sync::{Arc, OnceLock};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

static STATS_HUB: OnceLock<Arc<hub::Hub>> = OnceLock::new();

/// The feed's counters (clients, slow clients dropped, messages), when the feed runs.
#[must_use]
pub fn stats() -> Option<hub::FeedCounts> {
    STATS_HUB.get().map(|h| h.stats.snapshot())
}

/// The WebSocket routes (`GET /api/v1/ws`, `GET /ws`). Starts the feed producer task, so it
/// must be called inside the tokio runtime.
pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let hub = Arc::new(hub::Hub::new());
    let _ = STATS_HUB.set(hub.clone());
    tokio::spawn(feed::run(state.clone(), hub.clone()));
    let check: client::FilterCheck = Arc::new(|f| feed::filter_query(f).map(|_| ()));
    let path = warp::path("api")
        .and(warp::path("v1"))
        .and(warp::path("ws"))
        .and(warp::path::end())
        .or(warp::path("ws").and(warp::path::end()))
        .unify();
    path.and(warp::ws())
        .map(move |upgrade: warp::ws::Ws| {
            let hub = hub.clone();
            let check = check.clone();
            let shutdown = state.shutdown.subscribe();
            let hello = serde_json::json!({
                "protocol": protocol::SUBPROTOCOL,
                "server_version": env!("CARGO_PKG_VERSION"),
                "topics": protocol::Topic::ALL.map(protocol::Topic::name),
                "queue_limit": hub::QUEUE_LIMIT,
                "metrics_interval_ms": 1000,
                "ping_interval_ms": client::PING_INTERVAL.as_millis(),
            });
            upgrade
                .max_message_size(protocol::MAX_CLIENT_MESSAGE)
                .max_frame_size(protocol::MAX_CLIENT_MESSAGE)
                .on_upgrade(move |socket| async move {
                    client::run(socket, hub, hello, check, shutdown).await;
                })
                .into_response()
        })
        .boxed()
}
