//! The producer: once a second it builds the periodic messages from the store, each
//! serialised once, and hands them to the hub; after every stored batch (at most every
//! [`FLOWS_EVERY`]) it pushes the changed flows matching each distinct client filter.
//!
//! The JSON is the REST API's own: `metrics` points come from [`model::history_point`] (the
//! same as `/metrics/history`), and `health`, `top_talkers` and `protocols` are the bodies
//! of `/health`, `/top-talkers?limit=10&duration=5m` and `/protocols?duration=5m`, produced by
//! [`crate::api::dispatch`] itself, so the page shows identical numbers whichever it reads.

use super::client::frame;
use super::hub::{Frame, Hub};
use super::protocol::{RawFilter, Topic};
use crate::api::error::RequestId;
use crate::api::params::Params;
use crate::clock::wall_ns;
use crate::model::{self, NetworkFlow};
use crate::state::AppState;
use crate::store::{FlowQuery, FlowStatus, SortBy, SortOrder, NS};
use serde_json::{json, Value};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{interval, interval_at, Instant, MissedTickBehavior};
use warp::http::Method;
use warp::hyper::body::Body as _;

/// Most frequent flow push.
pub const FLOWS_EVERY: Duration = Duration::from_millis(250);
/// Flows listed in one `flows` message (newest first); `truncated` says when more changed.
pub const FLOWS_PER_MESSAGE: usize = 100;
/// How far back a flow push looks for changed flows (store time).
const FLOWS_LOOKBACK_NS: u64 = 5 * NS;
/// Seconds of per-second points in each `metrics` message: late batches correct the
/// previous seconds, which the client replaces.
const RECENT_SECONDS: u64 = 3;
/// Default bandwidth alert threshold (bits per second); `NETWATCH_ALERT_BANDWIDTH_BPS`.
pub const DEFAULT_ALERT_BPS: u64 = 800_000_000;
/// CPU alert threshold (percent; MET-05).
pub const ALERT_CPU_PERCENT: f64 = 80.0;

/// Reads a REST response body (a complete, in-memory body).
async fn body_json(resp: warp::reply::Response) -> Option<Value> {
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame.ok()?.into_data() {
            buf.extend_from_slice(&data);
        }
    }
    serde_json::from_slice(&buf).ok()
}

async fn rest(state: &AppState, path: &str, query: &str) -> Option<Value> {
    let rid = RequestId::new(None);
    let resp = crate::api::dispatch(state, &rid, &Method::GET, path, query);
    body_json(resp).await
}

/// Percent-encodes a query component.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Turns a client's flow filter into a store query with the `/flows` parameter rules.
///
/// # Errors
/// The REST API's 400 message for the first invalid value.
pub fn filter_query(f: &RawFilter) -> Result<FlowQuery, String> {
    let raw: Vec<String> = f
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    let p = Params::parse(&raw.join("&"), &super::protocol::FILTER_KEYS).map_err(|e| e.message)?;
    let (port, port_range) = p.ports().map_err(|e| e.message)?;
    let status = match p
        .choice("status", &["active", "idle", "closed", ""], "")
        .map_err(|e| e.message)?
    {
        "active" => Some(FlowStatus::Active),
        "idle" => Some(FlowStatus::Idle),
        "closed" => Some(FlowStatus::Closed),
        _ => None,
    };
    Ok(FlowQuery {
        src: p.net("src_ip").map_err(|e| e.message)?,
        dst: p.net("dst_ip").map_err(|e| e.message)?,
        host: p.net("host").map_err(|e| e.message)?,
        proto: p.protocol("protocol").map_err(|e| e.message)?,
        port,
        port_range,
        time_start: p.time("time_start").map_err(|e| e.message)?,
        time_end: p.time("time_end").map_err(|e| e.message)?,
        status,
        sort_by: SortBy::LastSeen,
        order: SortOrder::Desc,
        limit: FLOWS_PER_MESSAGE + 1,
        offset: 0,
    })
}

/// The `metrics` message body: the latest complete second as `SystemMetrics` (CPU and memory
/// from the latest host sample) plus `recent`, the last [`RECENT_SECONDS`] points.
fn metrics_data(state: &AppState) -> Value {
    let wall = wall_ns();
    let host = state.host_sample();
    let store = state.read();
    let now = store.now(wall);
    // Points end at second boundaries; the current second is still filling, so stop at its start.
    let complete = (now / NS) * NS;
    let status = model::interface_status(&store);
    let points = store.history(complete.saturating_sub(1), RECENT_SECONDS, 1);
    drop(store);
    let recent: Vec<model::SystemMetrics> = points
        .iter()
        .map(|p| model::history_point(p, status))
        .collect();
    let active = points
        .iter()
        .rev()
        .find(|p| p.rss > 0)
        .map_or(0, |p| p.active);
    let mut latest = recent.last().cloned().map_or(Value::Null, |m| {
        serde_json::to_value(m).unwrap_or(Value::Null)
    });
    if let Value::Object(ref mut o) = latest {
        o.insert("cpuUsage".into(), json!(host.cpu_percent));
        o.insert("memoryUsage".into(), json!(host.rss_bytes));
        o.insert("activeFlows".into(), json!(active));
        o.insert(
            "recent".into(),
            serde_json::to_value(&recent).unwrap_or(Value::Null),
        );
    }
    latest
}

/// One alert condition (D-25).
#[derive(Debug, Clone, PartialEq)]
struct Alert {
    id: &'static str,
    severity: &'static str,
    message: String,
    value: f64,
    threshold: f64,
}

/// Alert conditions now, from the latest metrics message and health body.
fn alert_conditions(
    metrics: &Value,
    health: Option<&Value>,
    bps_threshold: u64,
    drops_before: u64,
) -> Vec<Alert> {
    let mut out = Vec::new();
    let bits = metrics["bytesPerSecond"]
        .as_u64()
        .unwrap_or(0)
        .saturating_mul(8);
    if bits > bps_threshold {
        out.push(Alert {
            id: "high_bandwidth",
            severity: "warning",
            message: format!("Bandwidth {bits} b/s above the {bps_threshold} b/s threshold"),
            value: bits as f64,
            threshold: bps_threshold as f64,
        });
    }
    let drops = metrics["droppedPackets"].as_u64().unwrap_or(0);
    if drops > drops_before {
        out.push(Alert {
            id: "packet_drops",
            severity: "critical",
            message: format!(
                "Packet capture degraded - check interface ({} packets dropped)",
                drops - drops_before
            ),
            value: (drops - drops_before) as f64,
            threshold: 0.0,
        });
    }
    let cpu = metrics["cpuUsage"].as_f64().unwrap_or(0.0);
    if cpu > ALERT_CPU_PERCENT {
        out.push(Alert {
            id: "high_cpu",
            severity: "warning",
            message: format!("Server CPU {cpu:.0}% above {ALERT_CPU_PERCENT:.0}%"),
            value: cpu,
            threshold: ALERT_CPU_PERCENT,
        });
    }
    if let Some(h) = health {
        if h["capture_active"] == Value::Bool(false) {
            out.push(Alert {
                id: "capture_down",
                severity: "critical",
                message: "Network interface offline - no capture helper connected".into(),
                value: 0.0,
                threshold: 1.0,
            });
        }
    }
    out
}

#[derive(Debug, Default)]
struct AlertState {
    active: Vec<(Alert, String)>,
    drops_seen: Option<u64>,
}

impl AlertState {
    /// Applies the current conditions; returns the transition messages' data.
    fn update(&mut self, now_conditions: Vec<Alert>, now_iso: &str) -> Vec<Value> {
        let mut changes = Vec::new();
        let mut next = Vec::new();
        for a in now_conditions {
            match self.active.iter().find(|(o, _)| o.id == a.id) {
                Some((_, since)) => next.push((a, since.clone())),
                None => {
                    changes.push(alert_json(&a, now_iso, true));
                    next.push((a, now_iso.to_string()));
                }
            }
        }
        for (old, since) in &self.active {
            if !next.iter().any(|(a, _)| a.id == old.id) {
                changes.push(alert_json(old, since, false));
            }
        }
        self.active = next;
        changes
    }

    fn snapshot(&self) -> Value {
        json!({ "alerts": self.active.iter().map(|(a, since)| alert_json(a, since, true)).collect::<Vec<_>>() })
    }
}

fn alert_json(a: &Alert, since: &str, active: bool) -> Value {
    json!({ "id": a.id, "kind": a.id, "severity": a.severity, "message": a.message, "value": a.value, "threshold": a.threshold, "since": since, "active": active })
}

/// Pushes the changed flows of each distinct filter to its clients.
fn publish_flows(state: &AppState, hub: &Hub) {
    let groups = hub.flow_groups();
    if groups.is_empty() {
        return;
    }
    let store = state.read();
    let now = store.now(wall_ns());
    let mut results = Vec::with_capacity(groups.len());
    for (filter, ids) in groups {
        let Ok(mut q) = filter_query(&filter) else {
            continue;
        };
        let since = now.saturating_sub(FLOWS_LOOKBACK_NS);
        q.time_start = Some(q.time_start.map_or(since, |t| t.max(since)));
        let page = store.query(&q, now);
        let flows: Vec<(String, u64, u64, Arc<Value>)> = page
            .flows
            .iter()
            .map(|f| {
                let n = NetworkFlow::from(f);
                (
                    n.flow_key.clone(),
                    f.last_ns,
                    f.packets(),
                    Arc::new(serde_json::to_value(&n).unwrap_or(Value::Null)),
                )
            })
            .collect();
        results.push((ids, flows, page.total > FLOWS_PER_MESSAGE));
    }
    drop(store);
    for (ids, flows, truncated) in results {
        for id in ids {
            let changed = hub.changed_for(id, &flows);
            if changed.is_empty() {
                continue;
            }
            let list: Vec<&Value> = changed
                .iter()
                .take(FLOWS_PER_MESSAGE)
                .map(AsRef::as_ref)
                .collect();
            let f: Frame = frame(
                "flows",
                &json!({ "flows": list, "count": list.len(), "truncated": truncated }),
            );
            hub.send_to(id, &f);
        }
    }
}

/// Runs until shutdown.
pub async fn run(state: AppState, hub: Arc<Hub>) {
    let mut shutdown = state.shutdown.subscribe();
    let mut updates = state.updates.subscribe();
    // Tick just after each wall-clock second so every message reports a complete second.
    let into_second = Duration::from_nanos(wall_ns() % NS);
    let first = Instant::now()
        + (Duration::from_secs(1).saturating_sub(into_second))
        + Duration::from_millis(30);
    let mut seconds = interval_at(first, Duration::from_secs(1));
    seconds.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut flows_tick = interval(FLOWS_EVERY);
    flows_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let bps_threshold = std::env::var("NETWATCH_ALERT_BANDWIDTH_BPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ALERT_BPS);
    let mut alerts = AlertState::default();
    let mut n: u64 = 0;
    let mut health: Option<Value> = None;
    let mut reported = super::hub::FeedCounts {
        clients: 0,
        connections_total: 0,
        slow_dropped_total: 0,
        refused_total: 0,
        messages_total: 0,
    };
    loop {
        tokio::select! {
            _ = shutdown.recv() => return,
            _ = flows_tick.tick() => {
                if updates.has_changed().unwrap_or(false) {
                    updates.borrow_and_update();
                    publish_flows(&state, &hub);
                }
            }
            _ = seconds.tick() => {
                n += 1;
                export_counts(&state, &hub, &mut reported);
                if hub.is_empty() {
                    hub.forget_latest();
                    health = None;
                    continue;
                }
                let m = metrics_data(&state);
                hub.broadcast(Topic::Metrics, &frame("metrics", &m));
                if n % 2 == 1 || health.is_none() {
                    if let Some(t) = rest(&state, "/api/v1/top-talkers", "limit=10&duration=5m").await {
                        hub.broadcast(Topic::TopTalkers, &frame("top_talkers", &t));
                    }
                    if let Some(p) = rest(&state, "/api/v1/protocols", "duration=5m").await {
                        hub.broadcast(Topic::Protocols, &frame("protocols", &p));
                    }
                }
                if n % 5 == 1 || health.is_none() {
                    health = rest(&state, "/api/v1/health", "").await;
                    if let Some(h) = &health {
                        hub.broadcast(Topic::Health, &frame("health", h));
                    }
                }
                let drops = m["droppedPackets"].as_u64().unwrap_or(0);
                let before = *alerts.drops_seen.get_or_insert(drops);
                let now_iso = super::client::now_iso();
                for change in alerts.update(alert_conditions(&m, health.as_ref(), bps_threshold, before), &now_iso) {
                    hub.broadcast_transient(Topic::Alerts, &frame("alert", &change));
                }
                if n % 60 == 0 {
                    // drops older than a minute no longer raise the alert
                    alerts.drops_seen = Some(drops);
                }
                hub.broadcast(Topic::Alerts, &frame("alerts", &alerts.snapshot()));
            }
        }
    }
}

/// Mirrors the hub's counters into the Prometheus metrics.
fn export_counts(state: &AppState, hub: &Hub, reported: &mut super::hub::FeedCounts) {
    let c = hub.stats.snapshot();
    let m = &state.metrics;
    m.ws_clients
        .set(i64::try_from(c.clients).unwrap_or(i64::MAX));
    m.ws_dropped.inc_by(
        c.slow_dropped_total
            .saturating_sub(reported.slow_dropped_total),
    );
    m.ws_messages
        .inc_by(c.messages_total.saturating_sub(reported.messages_total));
    *reported = c;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_use_the_rest_rules() {
        let mut f = RawFilter::new();
        f.insert("src_ip".into(), "192.168.1.0/24".into());
        f.insert("protocol".into(), "tcp".into());
        f.insert("port".into(), "443".into());
        let q = filter_query(&f).expect("valid");
        assert_eq!(q.proto, Some(6));
        assert_eq!(q.port, Some((443, 443)));
        assert!(q.src.is_some());
        f.insert("port".into(), "70000".into());
        assert!(filter_query(&f).expect_err("invalid").contains("port"));
        let mut g = RawFilter::new();
        g.insert("src_ip".into(), "10.0.0.0/33".into());
        assert!(filter_query(&g).is_err());
        let mut h = RawFilter::new();
        h.insert("host".into(), "10.0.0.1".into());
        assert!(filter_query(&h).is_ok());
    }

    #[test]
    fn alerts_raise_once_and_clear() {
        let mut s = AlertState::default();
        let m = json!({ "bytesPerSecond": 200_000_000u64, "droppedPackets": 0, "cpuUsage": 1.0 });
        let c = s.update(alert_conditions(&m, None, DEFAULT_ALERT_BPS, 0), "t1");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0]["id"], "high_bandwidth");
        assert_eq!(c[0]["active"], true);
        assert!(s
            .update(alert_conditions(&m, None, DEFAULT_ALERT_BPS, 0), "t2")
            .is_empty());
        assert_eq!(s.snapshot()["alerts"][0]["since"], "t1");
        let quiet = json!({ "bytesPerSecond": 10, "droppedPackets": 5, "cpuUsage": 95.0 });
        let h = json!({ "capture_active": false });
        let c = s.update(
            alert_conditions(&quiet, Some(&h), DEFAULT_ALERT_BPS, 0),
            "t3",
        );
        let ids: Vec<(&str, bool)> = c
            .iter()
            .map(|v| {
                (
                    v["id"].as_str().unwrap_or(""),
                    v["active"].as_bool().unwrap_or(true),
                )
            })
            .collect();
        assert_eq!(
            ids,
            vec![
                ("packet_drops", true),
                ("high_cpu", true),
                ("capture_down", true),
                ("high_bandwidth", false)
            ]
        );
    }

    #[test]
    fn query_components_are_encoded() {
        assert_eq!(enc("2001:db8::/32"), "2001:db8::%2F32");
        assert_eq!(enc("a b&c"), "a%20b%26c");
    }
}
