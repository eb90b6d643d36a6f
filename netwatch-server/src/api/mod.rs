//! The REST API under `/api/v1` (the seeds' OpenAPI, extended by decisions D-09, D-10,
//! D-21, D-22; the document is `docs/openapi.yaml`, served at `/api/v1/openapi.yaml`).
//!
//! One warp filter takes every request under `/api/v1/` and [`dispatch`] routes it by
//! method and path, so unknown routes (404), wrong methods (405) and bad parameters (400)
//! all get the seeds' error body and the request id.

pub mod error;
pub mod params;

use crate::clock::wall_ns;
use crate::model::{self, NetworkFlow};
use crate::state::AppState;
use crate::store::{FlowQuery, FlowStatus, SortBy, SortOrder, NS, WINDOWS_MINUTES};
use error::{json_response, ApiError, RequestId};
use params::Params;
use serde_json::json;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::Filter;

/// The OpenAPI document (YAML).
pub const OPENAPI_YAML: &str = include_str!("../../../docs/openapi.yaml");

/// Largest `limit` of `/flows` (D-22: above it is a 400).
pub const MAX_LIMIT: u64 = 1000;
/// Largest `limit` of `/top-talkers`.
pub const MAX_TALKERS: u64 = 50;
/// Flows listed under each top talker.
pub const FLOWS_PER_TALKER: usize = 5;

/// Every request under `/api/v1/`.
pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::path("api")
        .and(warp::path("v1"))
        .and(crate::http::request_id())
        .and(warp::method())
        .and(warp::path::full())
        .and(query)
        .map(
            move |rid: RequestId, method: Method, path: warp::path::FullPath, query: String| {
                let resp = dispatch(&state, &rid, &method, path.as_str(), &query);
                crate::http::finish(&rid, &method, path.as_str(), resp)
            },
        )
        .boxed()
}

/// Routes one request.
#[must_use]
pub fn dispatch(
    state: &AppState,
    rid: &RequestId,
    method: &Method,
    path: &str,
    query: &str,
) -> Response {
    let route = path.strip_prefix("/api/v1").unwrap_or(path);
    let route = if route.len() > 1 {
        route.trim_end_matches('/')
    } else {
        route
    };
    let known = matches!(
        route,
        "/health"
            | "/flows"
            | "/protocols"
            | "/metrics"
            | "/metrics/history"
            | "/top-talkers"
            | "/openapi.yaml"
            | "/ws"
    ) || route.starts_with("/flows/");
    if !known {
        return ApiError::not_found(format!("no route {path}")).into_response(rid);
    }
    if method != Method::GET && method != Method::HEAD {
        return ApiError::method_not_allowed(method.as_str(), path).into_response(rid);
    }
    let result = match route {
        "/health" => health(state, query),
        "/flows" => flows(state, query),
        "/protocols" => protocols(state, query),
        "/metrics" => metrics(state, query),
        "/metrics/history" => history(state, query),
        "/top-talkers" => top_talkers(state, query),
        "/openapi.yaml" => openapi(query),
        // Reached only when the WebSocket filter did not take the request.
        "/ws" => Err(ws_upgrade_required()),
        _ => route.strip_prefix("/flows/").map_or_else(
            || Err(ApiError::not_found("no such route")),
            |k| flow(state, k, query),
        ),
    };
    match result {
        Ok(mut resp) => {
            rid.tag(&mut resp);
            resp
        }
        Err(e) => e.into_response(rid),
    }
}

/// The 400 of a plain GET on the WebSocket path (the seed's "WebSocket upgrade failed").
#[must_use]
pub fn ws_upgrade_required() -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "WEBSOCKET_UPGRADE_REQUIRED",
        message: "this endpoint only accepts WebSocket upgrade requests".into(),
        details: None,
    }
}

type ApiResult = Result<Response, ApiError>;

fn openapi(query: &str) -> ApiResult {
    Params::parse(query, &[])?;
    let mut resp = Response::new(OPENAPI_YAML.into());
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/yaml"));
    Ok(resp)
}

/// Health thresholds: a problem (drops, evictions, a lost live helper) within this window
/// makes the status `degraded`.
const PROBLEM_WINDOW_NS: u64 = 300 * NS;

fn health(state: &AppState, query: &str) -> ApiResult {
    Params::parse(query, &[])?;
    let wall = wall_ns();
    let host = state.host_sample();
    let ic = &state.ingest;
    let ld = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let store = state.read();
    let now = store.now(wall);
    let c = store.counters();
    let t = store.capture_totals();
    let connected = store.connected_helpers();
    let mut problems: Vec<String> = Vec::new();
    if connected == 0 {
        problems.push("no capture helper connected".into());
    }
    let recent = store.last_problem_wall_ns() > 0
        && wall.saturating_sub(store.last_problem_wall_ns()) < PROBLEM_WINDOW_NS;
    if recent {
        problems.push("drops, evictions or a lost helper in the last 5 minutes".into());
    }
    let status = if connected == 0 {
        "unhealthy"
    } else if recent {
        "degraded"
    } else {
        "healthy"
    };
    let mut helpers: Vec<serde_json::Value> = store
        .helpers()
        .map(|h| {
            json!({
                "instance": format!("{:016x}", h.hello.instance),
                "interface": h.hello.interface,
                "source": match h.hello.source { netwatch_protocol::SourceKind::Live => "live", netwatch_protocol::SourceKind::Replay => "replay" },
                "software": h.hello.software,
                "pid": h.hello.pid,
                "uid": h.uid,
                "connected": h.connections > 0,
                "connects": h.connects,
                "connected_at": model::iso(h.connected_wall_ns),
                "disconnected_at": (h.disconnected_wall_ns > 0).then(|| model::iso(h.disconnected_wall_ns)),
                "said_bye": h.said_bye,
                "highest_seq": h.highest_seq,
                "batches": h.batches,
                "records": h.records,
                "duplicate_batches": h.duplicates,
                "seq_gaps": h.seq_gaps,
                "frames": h.stats.frames,
                "bytes": h.stats.bytes,
                "kernel_drops": h.stats.kernel_drops,
                "backlog_dropped_batches": h.stats.backlog_dropped_batches,
                "backlog_dropped_records": h.stats.backlog_dropped_records,
                "table_occupancy": h.stats.table_occupancy,
                "table_capacity": h.stats.table_capacity,
                "table_evictions": h.stats.table_evictions,
                "cpu_seconds": (h.stats.cpu_user_ns + h.stats.cpu_system_ns) as f64 / 1e9,
                "rss_bytes": h.stats.rss_bytes,
            })
        })
        .collect();
    helpers.sort_by(|a, b| a["connected_at"].as_str().cmp(&b["connected_at"].as_str()));
    let body = json!({
        "status": status,
        "timestamp": model::iso(wall),
        "capture_active": connected > 0,
        "interface_status": model::interface_status(&store),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": wall.saturating_sub(state.started_wall_ns) / NS,
        "clock": if store.clock().is_replay() { "replay" } else { "live" },
        "store_time": model::iso(now),
        "cpu_percent": host.cpu_percent,
        "memory_bytes": host.rss_bytes,
        "active_flows": store.count_status(now, FlowStatus::Active),
        "flows_stored": store.len(),
        "flows_capacity": store.max_flows(),
        "store_memory_bytes": store.memory_estimate(),
        "problems": problems,
        "drops": {
            "kernel": t.kernel_drops,
            "backlog_batches": t.backlog_dropped_batches,
            "backlog_records": t.backlog_dropped_records,
        },
        "evictions": {
            "memory_closed": c.evicted_closed,
            "memory_idle": c.evicted_idle,
            "memory_active": c.evicted_active,
            "memory_total": c.evicted(),
            "retention_expired": c.expired,
            "helper_table": t.table_evictions,
        },
        "ingest": {
            "connections": ld(&ic.connections),
            "batches": c.batches,
            "records": c.records,
            "duplicate_batches": c.duplicate_batches,
            "invalid_records": c.invalid_records,
            "late_records": c.late_records,
            "oversized_frames": ld(&ic.oversized_frames),
            "version_mismatches": ld(&ic.version_mismatches),
            "invalid_frames": ld(&ic.invalid_frames),
            "protocol_errors": ld(&ic.protocol_errors),
            "refused_peers": ld(&ic.refused_peers),
            "refused_busy": ld(&ic.refused_busy),
            "dropped_connections": ld(&ic.dropped_connections),
        },
        "helpers": helpers,
    });
    drop(store);
    let code = if status == "unhealthy" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    Ok(json_response(&body, code))
}

const FLOW_PARAMS: &[&str] = &[
    "src_ip",
    "dst_ip",
    "host",
    "protocol",
    "port",
    "port_min",
    "port_max",
    "time_start",
    "time_end",
    "status",
    "limit",
    "offset",
    "sort_by",
    "sort_order",
    "format",
];

fn flow_query(p: &Params) -> Result<(FlowQuery, bool), ApiError> {
    let format = p.choice("format", &["json", "csv"], "json")?;
    let csv = format == "csv";
    let limit = p.int("limit", 1, MAX_LIMIT, 100)?;
    let offset = p.int("offset", 0, i64::MAX as u64, 0)?;
    let time_start = p.time("time_start")?;
    let time_end = p.time("time_end")?;
    if let (Some(s), Some(e)) = (time_start, time_end) {
        if s > e {
            return Err(ApiError::param(
                "time_start",
                p.get("time_start").unwrap_or_default(),
                "time_start is after time_end",
            ));
        }
    }
    let status = match p.choice("status", &["active", "idle", "closed"], "any")? {
        "active" => Some(FlowStatus::Active),
        "idle" => Some(FlowStatus::Idle),
        "closed" => Some(FlowStatus::Closed),
        _ => None,
    };
    let names = SortBy::NAMES.map(|(name, _)| name);
    let sort_by = p.choice("sort_by", &names, "last_seen")?;
    let sort_by = SortBy::NAMES
        .iter()
        .find(|(name, _)| *name == sort_by)
        .map_or(SortBy::LastSeen, |&(_, key)| key);
    let order = match p.choice("sort_order", &["asc", "desc"], "desc")? {
        "asc" => SortOrder::Asc,
        _ => SortOrder::Desc,
    };
    let (port, port_range) = p.ports()?;
    let q = FlowQuery {
        src: p.net("src_ip")?,
        dst: p.net("dst_ip")?,
        host: p.net("host")?,
        proto: p.protocol("protocol")?,
        port,
        port_range,
        time_start,
        time_end,
        status,
        sort_by,
        order,
        // D-10: a CSV export holds every match unless limit is given explicitly.
        limit: if csv && p.get("limit").is_none() {
            usize::MAX
        } else {
            usize::try_from(limit).unwrap_or(usize::MAX)
        },
        offset: usize::try_from(offset).unwrap_or(usize::MAX),
    };
    Ok((q, csv))
}

fn flows(state: &AppState, query: &str) -> ApiResult {
    let p = Params::parse(query, FLOW_PARAMS)?;
    let (q, csv) = flow_query(&p)?;
    if csv {
        // Rows are formatted straight from the store under the read lock (no copy of the
        // flows): about 0.3 s per million flows, during which ingest waits.
        let mut out = String::new();
        out.push_str(model::CSV_HEADER);
        let store = state.read();
        let now = store.now(wall_ns());
        let total = store.query_each(&q, now, |f| model::csv_row(&mut out, f));
        drop(store);
        let mut resp = Response::new(out.into());
        let h = resp.headers_mut();
        h.insert(
            "content-type",
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        h.insert(
            "content-disposition",
            HeaderValue::from_static("attachment; filename=\"flows.csv\""),
        );
        if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
            h.insert("x-total-count", v);
        }
        return Ok(resp);
    }
    let store = state.read();
    let now = store.now(wall_ns());
    let page = store.query(&q, now);
    drop(store);
    let flows: Vec<NetworkFlow> = page.flows.iter().map(NetworkFlow::from).collect();
    let has_more = q.offset.saturating_add(flows.len()) < page.total;
    let body = json!({
        "flows": flows,
        "pagination": {
            "total_count": page.total,
            "has_more": has_more,
            "limit": q.limit,
            "offset": q.offset,
        }
    });
    Ok(json_response(&body, StatusCode::OK))
}

fn flow(state: &AppState, key: &str, query: &str) -> ApiResult {
    Params::parse(query, &[])?;
    let text = params_decode_path(key);
    let Some(k) = model::parse_flow_key(&text) else {
        return Err(ApiError::not_found(format!("no flow with key {text}")));
    };
    let store = state.read();
    let now = store.now(wall_ns());
    match store.get(&k, now) {
        Some(f) => Ok(json_response(&NetworkFlow::from(&f), StatusCode::OK)),
        None => Err(ApiError::not_found(format!("no flow with key {text}"))),
    }
}

fn params_decode_path(s: &str) -> String {
    // Path segments are percent-encoded like query components, except that '+' is literal.
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hexv(b[i + 1]), hexv(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hexv(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn window(p: &Params) -> Result<(u64, String), ApiError> {
    let v = p.get("duration").unwrap_or("5m");
    let minutes = match v {
        "5m" => 5,
        "15m" => 15,
        "1h" | "60m" => 60,
        _ => return Err(ApiError::param("duration", v, "must be one of 5m, 15m, 1h")),
    };
    debug_assert!(WINDOWS_MINUTES.contains(&minutes));
    Ok((minutes, v.to_string()))
}

fn top_talkers(state: &AppState, query: &str) -> ApiResult {
    let p = Params::parse(query, &["limit", "duration"])?;
    let limit = p.int("limit", 1, MAX_TALKERS, 10)?;
    let (minutes, label) = window(&p)?;
    let store = state.read();
    let now = store.now(wall_ns());
    let (rows, total) = store.top_talkers(
        now,
        minutes,
        usize::try_from(limit).unwrap_or(10),
        FLOWS_PER_TALKER,
    );
    drop(store);
    let body = json!({
        "top_talkers": model::top_talkers(&rows, total),
        "time_window": label,
        "generated_at": model::iso(now),
        "total_bytes": total,
    });
    Ok(json_response(&body, StatusCode::OK))
}

fn protocols(state: &AppState, query: &str) -> ApiResult {
    let p = Params::parse(query, &["duration"])?;
    let (minutes, label) = window(&p)?;
    let store = state.read();
    let now = store.now(wall_ns());
    let shares = store.protocols(now, minutes);
    drop(store);
    let body = json!({
        "protocols": model::protocol_stats(&shares),
        "time_window": label,
        "generated_at": model::iso(now),
    });
    Ok(json_response(&body, StatusCode::OK))
}

fn metrics(state: &AppState, query: &str) -> ApiResult {
    Params::parse(query, &[])?;
    let host = state.host_sample();
    let store = state.read();
    let now = store.now(wall_ns());
    let m = model::current_metrics(&store, now, host.cpu_percent, host.rss_bytes);
    drop(store);
    Ok(json_response(&m, StatusCode::OK))
}

fn history(state: &AppState, query: &str) -> ApiResult {
    let p = Params::parse(query, &["duration", "interval"])?;
    let retention_s = state.config.store.retention_ns / NS;
    // Durations past the retention window are clamped to it (there is no older data), and
    // an interval longer than the duration gives one point.
    let (duration_s, dlabel) = p.duration("duration", "15m", retention_s)?;
    let (interval_s, ilabel) = p.duration("interval", "5s", retention_s)?;
    let interval_s = interval_s.min(duration_s);
    let store = state.read();
    let now = store.now(wall_ns());
    let points = store.history(now, duration_s, interval_s);
    let status = model::interface_status(&store);
    drop(store);
    let metrics: Vec<model::SystemMetrics> = points
        .iter()
        .map(|pt| model::history_point(pt, status))
        .collect();
    let body = json!({ "metrics": metrics, "interval": ilabel, "duration": dlabel });
    Ok(json_response(&body, StatusCode::OK))
}
