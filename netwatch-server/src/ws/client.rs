//! One WebSocket connection: reads the client's messages, writes what the hub queued for it,
//! pings every [`PING_INTERVAL`] and closes a connection that stays silent for [`IDLE_TIMEOUT`]
//! or whose writes stall for [`WRITE_TIMEOUT`]. Dropped by the hub (slow), it closes at once.
//! A client that leaves a ping unanswered for [`LAG_LIMIT`] is dropped as slow too: the pong
//! comes back only after the client has read everything sent before the ping, so its delay is
//! how far behind the feed the client is, whatever the kernel's socket buffers hold (a client
//! that never reads fills them only after tens of seconds at the feed's rate).

use super::hub::{ClientHandle, Frame, Hub};
use super::protocol::{envelope, parse_client, ClientMessage, ProtocolError};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{interval, sleep, Instant, MissedTickBehavior};
use tokio_stream::StreamExt;
use warp::filters::ws::{Message, WebSocket};
use warp::Sink;

/// Interval of server pings.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);
/// A ping still unanswered after this long means the client is that far behind: dropped as slow.
pub const LAG_LIMIT: Duration = Duration::from_secs(10);
/// A client that sends nothing (not even a pong) for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(45);
/// A single write that takes longer than this closes the connection.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends one message and flushes it.
async fn send(ws: &mut WebSocket, msg: Message) -> Result<(), warp::Error> {
    poll_fn(|cx| Pin::new(&mut *ws).poll_ready(cx)).await?;
    Pin::new(&mut *ws).start_send(msg)?;
    poll_fn(|cx| Pin::new(&mut *ws).poll_flush(cx)).await
}

/// The wall clock as ISO 8601 with milliseconds.
#[must_use]
pub fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Builds one server message stamped now.
#[must_use]
pub fn frame(kind: &str, data: &serde_json::Value) -> Frame {
    Arc::from(envelope(kind, &now_iso(), data))
}

fn error_frame(e: &ProtocolError) -> Frame {
    frame(
        "error",
        &serde_json::json!({ "code": e.code(), "message": e.to_string() }),
    )
}

/// How the connection ended (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client closed it or the socket failed.
    Closed,
    /// The hub dropped the client for being slow.
    Slow,
    /// No message from the client for [`IDLE_TIMEOUT`].
    Idle,
    /// A write stalled for [`WRITE_TIMEOUT`].
    WriteStalled,
    /// A ping stayed unanswered for [`LAG_LIMIT`]: the client reads too slowly.
    Lagging,
    /// The server is shutting down.
    Shutdown,
}

/// Validates a raw flow filter; returns the error text for the client when it is invalid.
pub type FilterCheck = Arc<dyn Fn(&super::protocol::RawFilter) -> Result<(), String> + Send + Sync>;

/// Runs one connection until it ends.
pub async fn run(
    mut ws: WebSocket,
    hub: Arc<Hub>,
    hello: serde_json::Value,
    check: FilterCheck,
    mut shutdown: tokio::sync::broadcast::Receiver<()>,
) -> End {
    let ClientHandle { id, mut rx, kill } = hub.register();
    let mut ping = interval(PING_INTERVAL);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ping.tick().await;
    let mut last_heard = Instant::now();
    // When the oldest unanswered ping was sent.
    let mut ping_out: Option<Instant> = None;
    let hello = frame("hello", &hello);
    hub.send_to(id, &hello);

    let end = loop {
        tokio::select! {
            biased;
            () = kill.notified() => break End::Slow,
            _ = shutdown.recv() => break End::Shutdown,
            out = rx.recv() => {
                let Some(f) = out else { break End::Slow };
                tokio::select! {
                    r = send(&mut ws, Message::text(&*f)) => if r.is_err() { break End::Closed },
                    () = kill.notified() => break End::Slow,
                    () = sleep(WRITE_TIMEOUT) => break End::WriteStalled,
                }
            }
            inbound = ws.next() => {
                let Some(Ok(msg)) = inbound else { break End::Closed };
                last_heard = Instant::now();
                if msg.is_pong() {
                    ping_out = None;
                    continue;
                }
                if msg.is_close() {
                    break End::Closed;
                }
                let Ok(text) = msg.to_str() else { continue };
                let reply = match parse_client(text) {
                    Ok(ClientMessage::Ping) => Some(frame("pong", &serde_json::json!({}))),
                    Ok(ClientMessage::Subscribe { topics, filter }) => {
                        if let Some(Err(e)) = filter.as_ref().map(|f| check(f)) {
                            Some(error_frame(&ProtocolError::InvalidFilter(e)))
                        } else {
                            let (now, fresh) = hub.subscribe(id, &topics, filter);
                            let f = hub.filter_of(id).unwrap_or_default();
                            hub.send_to(id, &frame("subscribed", &serde_json::json!({ "topics": now.names(), "filter": f })));
                            for m in fresh {
                                hub.send_to(id, &m);
                            }
                            None
                        }
                    }
                    Ok(ClientMessage::Unsubscribe { topics }) => {
                        let now = hub.unsubscribe(id, &topics);
                        Some(frame("subscribed", &serde_json::json!({ "topics": now.names(), "filter": hub.filter_of(id).unwrap_or_default() })))
                    }
                    Err(e) => Some(error_frame(&e)),
                };
                if let Some(r) = reply {
                    hub.send_to(id, &r);
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_TIMEOUT {
                    break End::Idle;
                }
                if ping_out.is_some_and(|t| t.elapsed() >= LAG_LIMIT) {
                    break End::Lagging;
                }
                ping_out.get_or_insert_with(Instant::now);
                tokio::select! {
                    r = send(&mut ws, Message::ping(Vec::new())) => if r.is_err() { break End::Closed },
                    () = kill.notified() => break End::Slow,
                    () = sleep(WRITE_TIMEOUT) => break End::WriteStalled,
                }
            }
        }
    };
    hub.unregister(id);
    match end {
        End::WriteStalled => hub.count_slow(id, "a write stalled"),
        End::Lagging => hub.count_slow(id, "a ping went unanswered"),
        _ => {}
    }
    match end {
        End::Slow | End::Lagging => {
            // Best effort only: a slow client's socket is full, so do not wait for it.
            let _ = tokio::time::timeout(
                Duration::from_millis(100),
                send(&mut ws, Message::close_with(1008u16, "too slow")),
            )
            .await;
        }
        End::Idle | End::Shutdown => {
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                send(&mut ws, Message::close_with(1001u16, "going away")),
            )
            .await;
        }
        End::Closed | End::WriteStalled => {}
    }
    tracing::debug!(client = id, end = ?end, "websocket client left");
    end
}
