//! Prometheus exposition at `GET /metrics` (D-03), in the text format.
//!
//! Names follow Prometheus conventions: a `netwatch_` prefix, `_total` on counters, base units
//! (`_bytes`, `_seconds`); the process collector keeps its standard `process_*` names so stock
//! dashboards work. Label cardinality is bounded by construction: no label ever takes an
//! address, a port or a flow. The labels are `interface` (one per capture helper source),
//! `kind` (a fixed list of parse-error kinds), `protocol` (IP protocol names, at most 256),
//! `route` (a fixed list of route templates, see [`route_template`]), `status` (HTTP status
//! codes) and `reason` (a fixed list of refusal reasons).
//!
//! Most values are read from the shared [`AppState`] at scrape time ([`Metrics::render`]): the
//! store's helper table (their cumulative [`CaptureStats`]), store counters and flow counts,
//! and the ingest counters. Capture counters add, per helper instance, the growth since the
//! previous scrape, so they stay monotonic across helper restarts and sum over every instance
//! capturing the same interface. HTTP metrics are counted as requests are answered (by
//! `security::protect`); the WebSocket feed updates [`Metrics::ws_clients`] and friends.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use netwatch_protocol::{CaptureStats, MalformedKind};
use prometheus::proto::{LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{
    CounterVec, Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::state::AppState;
use crate::store::FlowStatus;

/// Most distinct `interface` label values; later sources are reported as `other`.
pub const MAX_INTERFACES: usize = 64;
/// Longest `interface` label value kept (longer names are cut).
pub const MAX_INTERFACE_LABEL: usize = 64;

/// Every metric of the server. Cheap to share (`Arc<Metrics>`); all methods take `&self`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    // HTTP
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    http_refused: IntCounterVec,
    // WebSocket
    /// WebSocket clients connected now (the feed increments and decrements it).
    pub ws_clients: IntGauge,
    /// WebSocket clients dropped for being too slow (or for protocol errors).
    pub ws_dropped: IntCounter,
    /// WebSocket messages sent to clients.
    pub ws_messages: IntCounter,
    // Capture (mirrors of CaptureStats, per interface)
    capture_packets: IntCounterVec,
    capture_bytes: IntCounterVec,
    capture_flow_packets: IntCounterVec,
    capture_non_ip: IntCounterVec,
    capture_parse_errors: IntCounterVec,
    capture_kernel_drops: IntCounterVec,
    capture_kernel_freezes: IntCounterVec,
    capture_evictions: IntCounterVec,
    capture_table_rejects: IntCounterVec,
    capture_backlog_batches: IntCounterVec,
    capture_backlog_records: IntCounterVec,
    capture_cpu: CounterVec,
    capture_table_flows: IntGaugeVec,
    capture_table_capacity: IntGaugeVec,
    capture_rss: IntGaugeVec,
    helpers: Mutex<HelperTable>,
    scrapes: IntCounter,
}

#[derive(Debug, Default)]
struct HelperTable {
    /// Per helper instance: its interface label and its last cumulative statistics.
    last: HashMap<u64, (String, CaptureStats)>,
    /// Interface labels handed out so far (bounded by [`MAX_INTERFACES`]).
    labels: Vec<String>,
}

/// HTTP latency buckets, seconds (100 µs .. 10 s).
const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(c.clone()))
        .expect("metric names are unique");
    c
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(g.clone()))
        .expect("metric names are unique");
    g
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric definition");
    registry
        .register(Box::new(c.clone()))
        .expect("metric names are unique");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric definition");
    registry
        .register(Box::new(g.clone()))
        .expect("metric names are unique");
    g
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric (and the process collector) in a fresh registry.
    ///
    /// # Panics
    /// Never in practice: metric definitions are constants checked by the tests.
    #[must_use]
    pub fn new() -> Self {
        let r = Registry::new();
        let iface = &["interface"];
        let build = gauge_vec(
            &r,
            "netwatch_build_info",
            "Build information (always 1).",
            &["version"],
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("process collector registers once");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "netwatch_http_request_duration_seconds",
                "Time to answer HTTP requests, by route template and status.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "status"],
        )
        .expect("valid metric definition");
        r.register(Box::new(http_duration.clone()))
            .expect("metric names are unique");
        let capture_cpu = CounterVec::new(
            Opts::new(
                "netwatch_capture_cpu_seconds_total",
                "CPU time of the capture helpers (user and system), by interface.",
            ),
            iface,
        )
        .expect("valid metric definition");
        r.register(Box::new(capture_cpu.clone()))
            .expect("metric names are unique");
        Self {
            http_requests: counter_vec(
                &r,
                "netwatch_http_requests_total",
                "HTTP requests answered, by route template and status.",
                &["route", "status"],
            ),
            http_duration,
            http_refused: counter_vec(
                &r,
                "netwatch_http_refused_total",
                "HTTP requests refused by the security layer, by reason.",
                &["reason"],
            ),
            ws_clients: gauge(
                &r,
                "netwatch_websocket_clients",
                "WebSocket clients connected.",
            ),
            ws_dropped: counter(
                &r,
                "netwatch_websocket_dropped_clients_total",
                "WebSocket clients dropped (too slow or misbehaving).",
            ),
            ws_messages: counter(
                &r,
                "netwatch_websocket_messages_sent_total",
                "WebSocket messages sent to clients.",
            ),
            capture_packets: counter_vec(
                &r,
                "netwatch_capture_packets_total",
                "Frames seen by the capture helpers.",
                iface,
            ),
            capture_bytes: counter_vec(
                &r,
                "netwatch_capture_bytes_total",
                "Bytes (wire length) of the frames seen by the capture helpers.",
                iface,
            ),
            capture_flow_packets: counter_vec(
                &r,
                "netwatch_capture_flow_packets_total",
                "Frames counted in a flow (IP frames).",
                iface,
            ),
            capture_non_ip: counter_vec(
                &r,
                "netwatch_capture_non_ip_packets_total",
                "Frames that are not IP (ARP, LLDP, ...).",
                iface,
            ),
            capture_parse_errors: counter_vec(
                &r,
                "netwatch_capture_parse_errors_total",
                "Malformed or cut headers, by kind.",
                &["interface", "kind"],
            ),
            capture_kernel_drops: counter_vec(
                &r,
                "netwatch_capture_kernel_drops_total",
                "Frames the kernel dropped before the helper saw them (ring full).",
                iface,
            ),
            capture_kernel_freezes: counter_vec(
                &r,
                "netwatch_capture_kernel_freezes_total",
                "Ring queue freezes reported by the kernel.",
                iface,
            ),
            capture_evictions: counter_vec(
                &r,
                "netwatch_capture_flow_evictions_total",
                "Flows pushed out of a full helper flow table.",
                iface,
            ),
            capture_table_rejects: counter_vec(
                &r,
                "netwatch_capture_flow_rejects_total",
                "Flows a full helper table could not keep at all.",
                iface,
            ),
            capture_backlog_batches: counter_vec(
                &r,
                "netwatch_capture_backlog_dropped_batches_total",
                "Batches the helpers dropped from a full unacknowledged backlog.",
                iface,
            ),
            capture_backlog_records: counter_vec(
                &r,
                "netwatch_capture_backlog_dropped_records_total",
                "Flow records inside the batches dropped from the backlog.",
                iface,
            ),
            capture_cpu,
            capture_table_flows: gauge_vec(
                &r,
                "netwatch_capture_table_flows",
                "Flows in the helpers' tables now.",
                iface,
            ),
            capture_table_capacity: gauge_vec(
                &r,
                "netwatch_capture_table_capacity",
                "Capacity of the helpers' flow tables.",
                iface,
            ),
            capture_rss: gauge_vec(
                &r,
                "netwatch_capture_resident_memory_bytes",
                "Resident memory of the capture helpers.",
                iface,
            ),
            helpers: Mutex::new(HelperTable::default()),
            scrapes: counter(
                &r,
                "netwatch_metrics_scrapes_total",
                "Scrapes of /metrics answered.",
            ),
            registry: r,
        }
    }

    /// Counts one answered HTTP request. `path` is the request path (reduced to a template).
    pub fn observe_http(&self, path: &str, status: u16, elapsed: Duration) {
        let route = route_template(path);
        let mut buf = itoa_u16(status);
        let status = buf.as_str();
        self.http_requests.with_label_values(&[route, status]).inc();
        self.http_duration
            .with_label_values(&[route, status])
            .observe(elapsed.as_secs_f64());
        buf.clear();
    }

    /// Counts one request refused by the security layer (`reason` from a fixed list).
    pub fn observe_refused(&self, reason: &'static str) {
        self.http_refused.with_label_values(&[reason]).inc();
    }

    /// Records a helper's cumulative statistics (from a `FlowBatch`). `instance` is the
    /// helper's instance id, `interface` its `Hello` interface (or capture file name).
    pub fn observe_capture(&self, instance: u64, interface: &str, stats: &CaptureStats) {
        let mut t = self.helpers.lock().unwrap_or_else(PoisonError::into_inner);
        let label = t.label_for(interface);
        let prev = t.last.get(&instance).map(|(_, s)| *s).unwrap_or_default();
        let l = [label.as_str()];
        let add = |c: &IntCounterVec, new: u64, old: u64| {
            // A helper's counters only grow; a smaller value means a new count started.
            let d = if new >= old { new - old } else { new };
            if d > 0 {
                c.with_label_values(&l).inc_by(d);
            }
        };
        add(&self.capture_packets, stats.frames, prev.frames);
        add(&self.capture_bytes, stats.bytes, prev.bytes);
        add(
            &self.capture_flow_packets,
            stats.flow_frames,
            prev.flow_frames,
        );
        add(
            &self.capture_non_ip,
            stats.non_ip_frames,
            prev.non_ip_frames,
        );
        add(
            &self.capture_kernel_drops,
            stats.kernel_drops,
            prev.kernel_drops,
        );
        add(
            &self.capture_kernel_freezes,
            stats.kernel_freezes,
            prev.kernel_freezes,
        );
        add(
            &self.capture_evictions,
            stats.table_evictions,
            prev.table_evictions,
        );
        add(
            &self.capture_table_rejects,
            stats.table_rejects,
            prev.table_rejects,
        );
        add(
            &self.capture_backlog_batches,
            stats.backlog_dropped_batches,
            prev.backlog_dropped_batches,
        );
        add(
            &self.capture_backlog_records,
            stats.backlog_dropped_records,
            prev.backlog_dropped_records,
        );
        for kind in MalformedKind::ALL {
            let (new, old) = (stats.malformed.get(kind), prev.malformed.get(kind));
            let d = if new >= old { new - old } else { new };
            // Touch every kind so each series exists from the first batch on.
            self.capture_parse_errors
                .with_label_values(&[label.as_str(), kind.name()])
                .inc_by(d);
        }
        let cpu_new = stats.cpu_user_ns.saturating_add(stats.cpu_system_ns);
        let cpu_old = prev.cpu_user_ns.saturating_add(prev.cpu_system_ns);
        let cpu_d = if cpu_new >= cpu_old {
            cpu_new - cpu_old
        } else {
            cpu_new
        };
        #[allow(clippy::cast_precision_loss)]
        self.capture_cpu
            .with_label_values(&l)
            .inc_by(cpu_d as f64 / 1e9);
        t.last.insert(instance, (label.clone(), *stats));
        // Gauges: the sum over the helper instances of this interface.
        let (mut occ, mut cap, mut rss) = (0u64, 0u64, 0u64);
        for (lab, s) in t.last.values() {
            if *lab == label {
                occ = occ.saturating_add(s.table_occupancy);
                cap = cap.saturating_add(s.table_capacity);
                rss = rss.saturating_add(s.rss_bytes);
            }
        }
        self.capture_table_flows
            .with_label_values(&l)
            .set(clamp_i64(occ));
        self.capture_table_capacity
            .with_label_values(&l)
            .set(clamp_i64(cap));
        self.capture_rss.with_label_values(&l).set(clamp_i64(rss));
    }

    /// Forgets a helper instance's gauges (its counters stay): call when it sends `Bye` or
    /// its connection ends for good.
    pub fn helper_gone(&self, instance: u64) {
        let mut t = self.helpers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((label, mut s)) = t.last.remove(&instance) {
            // Keep the counters' baseline should the same instance come back.
            s.table_occupancy = 0;
            s.rss_bytes = 0;
            s.table_capacity = 0;
            let (mut occ, mut cap, mut rss) = (0u64, 0u64, 0u64);
            for (lab, s) in t.last.values() {
                if *lab == label {
                    occ = occ.saturating_add(s.table_occupancy);
                    cap = cap.saturating_add(s.table_capacity);
                    rss = rss.saturating_add(s.rss_bytes);
                }
            }
            let l = [label.as_str()];
            self.capture_table_flows
                .with_label_values(&l)
                .set(clamp_i64(occ));
            self.capture_table_capacity
                .with_label_values(&l)
                .set(clamp_i64(cap));
            self.capture_rss.with_label_values(&l).set(clamp_i64(rss));
            t.last.insert(instance, (label, s));
        }
    }

    /// Forgets helper instances the store no longer knows (their counts stay in the
    /// counters): keeps the per-instance table as small as the store's.
    fn retain_helpers(&self, known: &[u64]) {
        let mut t = self.helpers.lock().unwrap_or_else(PoisonError::into_inner);
        t.last.retain(|id, _| known.contains(id));
    }

    /// The text exposition: reads the shared state (helpers, store, ingest), then encodes
    /// every metric.
    #[must_use]
    pub fn render(&self, state: &AppState) -> String {
        self.scrapes.inc();
        let mut extra = Vec::new();
        {
            let store = state.read();
            let mut known = Vec::new();
            let mut connected: HashMap<String, i64> = HashMap::new();
            for h in store.helpers() {
                known.push(h.hello.instance);
                self.observe_capture(h.hello.instance, &h.hello.interface, &h.stats);
                if h.connections == 0 {
                    self.helper_gone(h.hello.instance);
                }
                let label = self
                    .helpers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .label_for(&h.hello.interface);
                *connected.entry(label).or_default() += i64::from(h.connections > 0);
            }
            self.retain_helpers(&known);
            let mut up = family(
                "netwatch_capture_helper_up",
                "1 when a helper captures the interface now, 0 when its helper is gone.",
                MetricType::GAUGE,
            );
            for (iface, n) in &connected {
                push(&mut up, &[("interface", iface)], (*n).min(1) as f64);
            }
            extra.push(up);
            let mut helpers = family(
                "netwatch_capture_helpers_connected",
                "Capture helpers connected now.",
                MetricType::GAUGE,
            );
            push(&mut helpers, &[], store.connected_helpers() as f64);
            extra.push(helpers);

            let now = store.now(crate::clock::wall_ns());
            let mut flows = family(
                "netwatch_flows",
                "Flows in the store, by status.",
                MetricType::GAUGE,
            );
            for st in [FlowStatus::Active, FlowStatus::Idle, FlowStatus::Closed] {
                push(
                    &mut flows,
                    &[("status", st.as_str())],
                    store.count_status(now, st) as f64,
                );
            }
            extra.push(flows);
            let mut by_proto = family(
                "netwatch_flows_by_protocol",
                "Flows in the store, by IP protocol name.",
                MetricType::GAUGE,
            );
            for (p, n) in store.count_by_protocol().iter().enumerate() {
                if *n > 0 {
                    let name = crate::model::protocol_name(u8::try_from(p).unwrap_or(u8::MAX));
                    push(&mut by_proto, &[("protocol", name.as_str())], *n as f64);
                }
            }
            extra.push(by_proto);
            let c = store.counters();
            extra.push(single(
                "netwatch_flows_created_total",
                "Flows created in the store.",
                MetricType::COUNTER,
                c.flows_created,
            ));
            extra.push(single(
                "netwatch_flows_expired_total",
                "Flows dropped from the store by retention.",
                MetricType::COUNTER,
                c.expired,
            ));
            let mut ev = family(
                "netwatch_flows_evicted_total",
                "Flows evicted by the store's memory ceiling, by their status then.",
                MetricType::COUNTER,
            );
            push(&mut ev, &[("status", "closed")], c.evicted_closed as f64);
            push(&mut ev, &[("status", "idle")], c.evicted_idle as f64);
            push(&mut ev, &[("status", "active")], c.evicted_active as f64);
            extra.push(ev);
            extra.push(single(
                "netwatch_store_memory_bytes",
                "Estimated memory of the flow store.",
                MetricType::GAUGE,
                store.memory_estimate(),
            ));
            extra.push(single(
                "netwatch_ingest_batches_total",
                "Flow batches stored (duplicates excluded).",
                MetricType::COUNTER,
                c.batches,
            ));
            extra.push(single(
                "netwatch_ingest_records_total",
                "Flow records stored.",
                MetricType::COUNTER,
                c.records,
            ));
            extra.push(single(
                "netwatch_ingest_duplicate_batches_total",
                "Batches received again after a reconnect and dropped.",
                MetricType::COUNTER,
                c.duplicate_batches,
            ));
            extra.push(single(
                "netwatch_ingest_invalid_records_total",
                "Flow records refused by validation.",
                MetricType::COUNTER,
                c.invalid_records,
            ));
            extra.push(single(
                "netwatch_ingest_late_records_total",
                "Record deltas too old for the time series.",
                MetricType::COUNTER,
                c.late_records,
            ));
        }
        let i = &state.ingest;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        extra.push(single(
            "netwatch_ingest_connections_total",
            "Capture socket connections accepted.",
            MetricType::COUNTER,
            get(&i.connections),
        ));
        extra.push(single(
            "netwatch_ingest_refused_peers_total",
            "Capture socket connections refused for their peer credentials.",
            MetricType::COUNTER,
            get(&i.refused_peers),
        ));
        extra.push(single(
            "netwatch_ingest_refused_busy_total",
            "Capture socket connections refused because the helper limit was reached.",
            MetricType::COUNTER,
            get(&i.refused_busy),
        ));
        let mut bad = family(
            "netwatch_ingest_bad_frames_total",
            "Frames on the capture socket refused, by reason.",
            MetricType::COUNTER,
        );
        push(
            &mut bad,
            &[("reason", "oversized")],
            get(&i.oversized_frames) as f64,
        );
        push(
            &mut bad,
            &[("reason", "version")],
            get(&i.version_mismatches) as f64,
        );
        push(
            &mut bad,
            &[("reason", "invalid")],
            get(&i.invalid_frames) as f64,
        );
        push(
            &mut bad,
            &[("reason", "protocol")],
            get(&i.protocol_errors) as f64,
        );
        extra.push(bad);
        extra.push(single(
            "netwatch_ingest_dropped_connections_total",
            "Capture socket connections the server dropped (bad frames, timeouts).",
            MetricType::COUNTER,
            get(&i.dropped_connections),
        ));

        self.encode(extra)
    }

    /// Encodes the registry's metrics plus `extra` families.
    fn encode(&self, extra: Vec<MetricFamily>) -> String {
        let mut families = self.registry.gather();
        // A family without samples (no helper yet) is an encoding error: leave it out.
        families.extend(extra.into_iter().filter(|f| !f.get_metric().is_empty()));
        let mut out = Vec::with_capacity(16 * 1024);
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

fn family(name: &str, help: &str, kind: MetricType) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_owned());
    f.set_help(help.to_owned());
    f.set_field_type(kind);
    f
}

#[allow(clippy::cast_precision_loss)]
fn single(name: &str, help: &str, kind: MetricType, value: u64) -> MetricFamily {
    let mut f = family(name, help, kind);
    push(&mut f, &[], value as f64);
    f
}

fn push(f: &mut MetricFamily, labels: &[(&str, &str)], value: f64) {
    let mut m = Metric::default();
    m.set_label(
        labels
            .iter()
            .map(|(k, v)| {
                let mut l = LabelPair::default();
                l.set_name((*k).to_owned());
                l.set_value((*v).to_owned());
                l
            })
            .collect(),
    );
    if f.get_field_type() == MetricType::COUNTER {
        let mut c = prometheus::proto::Counter::default();
        c.set_value(value);
        m.set_counter(c);
    } else {
        let mut g = prometheus::proto::Gauge::default();
        g.set_value(value);
        m.set_gauge(g);
    }
    f.mut_metric().push(m);
}

impl HelperTable {
    fn label_for(&mut self, interface: &str) -> String {
        let mut name: String = interface
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_INTERFACE_LABEL)
            .collect();
        if name.is_empty() {
            name.push_str("unknown");
        }
        if self.labels.contains(&name) {
            return name;
        }
        if self.labels.len() >= MAX_INTERFACES {
            return "other".to_owned();
        }
        self.labels.push(name.clone());
        name
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn itoa_u16(v: u16) -> String {
    v.to_string()
}

/// Reduces a request path to one of a fixed set of route templates (bounded label values).
#[must_use]
pub fn route_template(path: &str) -> &'static str {
    match path {
        "/metrics" => "/metrics",
        "/" | "/index.html" => "/",
        "/ws" | "/api/v1/ws" => "/api/v1/ws",
        "/api/v1/health" => "/api/v1/health",
        "/api/v1/flows" => "/api/v1/flows",
        "/api/v1/metrics" => "/api/v1/metrics",
        "/api/v1/metrics/history" => "/api/v1/metrics/history",
        "/api/v1/top-talkers" => "/api/v1/top-talkers",
        "/api/v1/protocols" => "/api/v1/protocols",
        "/api/v1/openapi.yaml" | "/api/v1/openapi.json" => "/api/v1/openapi",
        p if p.starts_with("/api/v1/flows/") => "/api/v1/flows/{flowKey}",
        p if p.starts_with("/api/") || p == "/api" => "/api/other",
        _ => "/static",
    }
}

/// Serves [`Metrics::render`] at `GET /metrics` (not under `/api/v1`, D-03).
pub fn route(
    metrics: Arc<Metrics>,
    state: AppState,
) -> impl warp::Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    use warp::Filter;
    warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get().or(warp::head()).unify())
        .map(move || {
            let body = metrics.render(&state);
            let mut resp = warp::reply::Response::new(body.into());
            resp.headers_mut().insert(
                warp::http::header::CONTENT_TYPE,
                warp::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp.headers_mut().insert(
                warp::http::header::CACHE_CONTROL,
                warp::http::HeaderValue::from_static("no-store"),
            );
            resp
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(frames: u64, drops: u64) -> CaptureStats {
        let mut s = CaptureStats {
            frames,
            bytes: frames * 100,
            kernel_drops: drops,
            table_occupancy: 5,
            ..CaptureStats::default()
        };
        s.malformed.bump(MalformedKind::Ipv4Invalid);
        s
    }

    fn state() -> AppState {
        AppState::new(crate::config::Config::default())
    }

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l[series.len()..].trim().parse().ok())
    }

    #[test]
    fn capture_counters_follow_cumulative_stats_across_instances() {
        let m = Metrics::new();
        m.observe_capture(1, "eth0", &stats(10, 0));
        m.observe_capture(1, "eth0", &stats(25, 2));
        // A restarted helper (new instance) starts from zero again: the counter keeps growing.
        m.observe_capture(2, "eth0", &stats(7, 0));
        let t = m.encode(Vec::new());
        assert_eq!(
            value(&t, "netwatch_capture_packets_total{interface=\"eth0\"}"),
            Some(32.0)
        );
        assert_eq!(
            value(&t, "netwatch_capture_bytes_total{interface=\"eth0\"}"),
            Some(3200.0)
        );
        assert_eq!(
            value(
                &t,
                "netwatch_capture_kernel_drops_total{interface=\"eth0\"}"
            ),
            Some(2.0)
        );
        assert_eq!(
            value(
                &t,
                "netwatch_capture_parse_errors_total{interface=\"eth0\",kind=\"ipv4_invalid\"}"
            ),
            Some(2.0)
        );
        assert_eq!(
            value(
                &t,
                "netwatch_capture_parse_errors_total{interface=\"eth0\",kind=\"bad_length\"}"
            ),
            Some(0.0)
        );
        assert_eq!(
            value(&t, "netwatch_capture_table_flows{interface=\"eth0\"}"),
            Some(10.0)
        );
        m.helper_gone(1);
        let t = m.encode(Vec::new());
        assert_eq!(
            value(&t, "netwatch_capture_table_flows{interface=\"eth0\"}"),
            Some(5.0)
        );
        assert_eq!(
            value(&t, "netwatch_capture_packets_total{interface=\"eth0\"}"),
            Some(32.0)
        );
    }

    #[test]
    fn interface_labels_are_bounded() {
        let m = Metrics::new();
        for i in 0..(MAX_INTERFACES as u64 + 5) {
            m.observe_capture(i, &format!("if{i}"), &stats(1, 0));
        }
        let t = m.encode(Vec::new());
        assert_eq!(
            value(&t, "netwatch_capture_packets_total{interface=\"other\"}"),
            Some(5.0)
        );
    }

    #[test]
    fn render_reads_the_shared_state() {
        let m = Metrics::new();
        let st = state();
        st.ingest.refused_peers.fetch_add(3, Ordering::Relaxed);
        let t = m.render(&st);
        assert_eq!(value(&t, "netwatch_ingest_refused_peers_total"), Some(3.0));
        assert_eq!(value(&t, "netwatch_flows{status=\"active\"}"), Some(0.0));
        assert_eq!(value(&t, "netwatch_capture_helpers_connected"), Some(0.0));
        assert_eq!(
            value(&t, "netwatch_ingest_bad_frames_total{reason=\"invalid\"}"),
            Some(0.0)
        );
        assert_eq!(value(&t, "netwatch_metrics_scrapes_total"), Some(1.0));
    }

    #[test]
    fn http_metrics_use_templates_and_names_follow_conventions() {
        let m = Metrics::new();
        m.observe_http("/api/v1/flows/abc%20def", 404, Duration::from_millis(3));
        m.observe_http("/app.js", 200, Duration::from_millis(1));
        m.observe_refused("rate_limited");
        let t = m.encode(Vec::new());
        assert_eq!(
            value(
                &t,
                "netwatch_http_requests_total{route=\"/api/v1/flows/{flowKey}\",status=\"404\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &t,
                "netwatch_http_requests_total{route=\"/static\",status=\"200\"}"
            ),
            Some(1.0)
        );
        assert!(t.contains("netwatch_http_request_duration_seconds_bucket{route=\"/static\",status=\"200\",le=\"0.001\"}"));
        assert!(t.contains("process_resident_memory_bytes"));
        assert!(t.contains("netwatch_build_info{version="));
        for line in t.lines().filter(|l| l.starts_with("# TYPE ")) {
            let mut it = line.split_whitespace().skip(2);
            let (name, kind) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{name}");
            }
            assert!(
                name.starts_with("netwatch_") || name.starts_with("process_"),
                "{name}"
            );
        }
    }
}
