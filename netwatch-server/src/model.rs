//! JSON views of the store: the seeds' `NetworkFlow`, `SystemMetrics` and `TopTalker`
//! (camelCase, D-04) plus our additions. Shared by the REST API and the WebSocket feed.

use crate::store::{FlowView, HistoryPoint, ProtocolShare, Store, TalkerRow, NS};
use chrono::{DateTime, SecondsFormat, Utc};
use netwatch_protocol::{EndReason, FlowKey};
use serde::Serialize;
use std::net::IpAddr;

/// ISO 8601 / RFC 3339 text of a time in ns since the epoch, with nanoseconds, in UTC.
#[must_use]
pub fn iso(ns: u64) -> String {
    let secs = i64::try_from(ns / NS).unwrap_or(i64::MAX);
    let nanos = u32::try_from(ns % NS).unwrap_or(0);
    DateTime::<Utc>::from_timestamp(secs, nanos)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// IANA keyword of an IP protocol number (lower case), or the number as text.
#[must_use]
pub fn protocol_name(p: u8) -> String {
    match PROTOCOLS.iter().find(|(n, _)| *n == p) {
        Some((_, name)) => (*name).to_string(),
        None => p.to_string(),
    }
}

/// Protocol numbers and names accepted by the `protocol` filter (case-insensitive) and
/// shown as `protocolName`.
pub const PROTOCOLS: &[(u8, &str)] = &[
    (0, "hopopt"),
    (1, "icmp"),
    (2, "igmp"),
    (4, "ipip"),
    (6, "tcp"),
    (8, "egp"),
    (17, "udp"),
    (33, "dccp"),
    (41, "ipv6"),
    (43, "ipv6-route"),
    (44, "ipv6-frag"),
    (46, "rsvp"),
    (47, "gre"),
    (50, "esp"),
    (51, "ah"),
    (58, "icmpv6"),
    (59, "ipv6-nonxt"),
    (60, "ipv6-opts"),
    (88, "eigrp"),
    (89, "ospf"),
    (103, "pim"),
    (112, "vrrp"),
    (115, "l2tp"),
    (132, "sctp"),
    (136, "udplite"),
    (137, "mpls-in-ip"),
];

/// The text form of a flow key used in URLs: `proto-vlan-addrA-portA-addrB-portB`
/// (canonical order, so both directions give the same text).
#[must_use]
pub fn flow_key_text(k: &FlowKey) -> String {
    format!(
        "{}-{}-{}-{}-{}-{}",
        k.proto, k.vlan, k.addr_a, k.port_a, k.addr_b, k.port_b
    )
}

/// Parses [`flow_key_text`]; `None` unless it is exactly a canonical key.
#[must_use]
pub fn parse_flow_key(s: &str) -> Option<FlowKey> {
    let mut it = s.split('-');
    let proto = it.next()?.parse().ok()?;
    let vlan: u16 = it.next()?.parse().ok()?;
    let addr_a: IpAddr = it.next()?.parse().ok()?;
    let port_a = it.next()?.parse().ok()?;
    let addr_b: IpAddr = it.next()?.parse().ok()?;
    let port_b = it.next()?.parse().ok()?;
    if it.next().is_some() || vlan > 4095 {
        return None;
    }
    let k = FlowKey {
        addr_a,
        port_a,
        addr_b,
        port_b,
        proto,
        vlan,
    };
    (k.is_canonical() && flow_key_text(&k) == s).then_some(k)
}

fn end_name(e: EndReason) -> &'static str {
    match e {
        EndReason::Fin => "fin",
        EndReason::Rst => "rst",
        EndReason::IdleTimeout => "idle_timeout",
        EndReason::ActiveTimeout => "active_timeout",
        EndReason::Evicted => "evicted",
        EndReason::Shutdown => "shutdown",
    }
}

/// The seeds' `NetworkFlow`; `src` is the initiator (D-19). Extra fields: VLAN,
/// per-direction counters and TCP flags, the helper's end reason.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkFlow {
    /// See [`flow_key_text`].
    pub flow_key: String,
    /// Initiator address.
    #[serde(rename = "srcIP")]
    pub src_ip: String,
    /// Responder address.
    #[serde(rename = "dstIP")]
    pub dst_ip: String,
    /// Initiator port.
    pub src_port: u16,
    /// Responder port.
    pub dst_port: u16,
    /// IP protocol number.
    pub protocol: u8,
    /// Protocol keyword.
    pub protocol_name: String,
    /// Bytes both ways (frame lengths on the wire).
    pub bytes: u64,
    /// Packets both ways.
    pub packets: u64,
    /// First packet.
    pub first_seen: String,
    /// Latest packet.
    pub last_seen: String,
    /// `lastSeen - firstSeen` in ms.
    pub duration: u64,
    /// `active`, `idle` or `closed`.
    pub status: &'static str,
    /// Outermost VLAN id (0 untagged).
    pub vlan: u16,
    /// Bytes sent by the initiator.
    pub src_bytes: u64,
    /// Packets sent by the initiator.
    pub src_packets: u64,
    /// Bytes sent by the responder.
    pub dst_bytes: u64,
    /// Packets sent by the responder.
    pub dst_packets: u64,
    /// Union of TCP flags sent by the initiator.
    pub src_tcp_flags: u8,
    /// Union of TCP flags sent by the responder.
    pub dst_tcp_flags: u8,
    /// Why the helper ended the flow, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<&'static str>,
}

impl From<&FlowView> for NetworkFlow {
    fn from(f: &FlowView) -> Self {
        let (src, dst) = (
            f.key.endpoint(f.initiator),
            f.key.endpoint(f.initiator.opposite()),
        );
        let (s, d) = f.by_role();
        NetworkFlow {
            flow_key: flow_key_text(&f.key),
            src_ip: src.0.to_string(),
            dst_ip: dst.0.to_string(),
            src_port: src.1,
            dst_port: dst.1,
            protocol: f.key.proto,
            protocol_name: protocol_name(f.key.proto),
            bytes: f.bytes(),
            packets: f.packets(),
            first_seen: iso(f.first_ns),
            last_seen: iso(f.last_ns),
            duration: f.last_ns.saturating_sub(f.first_ns) / 1_000_000,
            status: f.status.as_str(),
            vlan: f.key.vlan,
            src_bytes: s.bytes,
            src_packets: s.packets,
            dst_bytes: d.bytes,
            dst_packets: d.packets,
            src_tcp_flags: s.tcp_flags,
            dst_tcp_flags: d.tcp_flags,
            end_reason: f.end.map(end_name),
        }
    }
}

/// CSV header of `/flows?format=csv` (the same fields as [`NetworkFlow`]).
pub const CSV_HEADER: &str = "flowKey,srcIP,srcPort,dstIP,dstPort,protocol,protocolName,bytes,packets,firstSeen,lastSeen,duration,status,vlan,srcBytes,srcPackets,dstBytes,dstPackets\n";

/// Appends one CSV row (no field needs quoting: addresses, numbers, fixed words).
pub fn csv_row(out: &mut String, f: &FlowView) {
    use std::fmt::Write;
    let n = NetworkFlow::from(f);
    let _ = writeln!(
        out,
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
        n.flow_key,
        n.src_ip,
        n.src_port,
        n.dst_ip,
        n.dst_port,
        n.protocol,
        n.protocol_name,
        n.bytes,
        n.packets,
        n.first_seen,
        n.last_seen,
        n.duration,
        n.status,
        n.vlan,
        n.src_bytes,
        n.src_packets,
        n.dst_bytes,
        n.dst_packets
    );
}

/// The seeds' `SystemMetrics`, plus interval sums for history points.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemMetrics {
    /// Time of the point (the end of its interval in history).
    pub timestamp: String,
    /// Server CPU, percent of one core.
    pub cpu_usage: f64,
    /// Server resident memory, bytes.
    pub memory_usage: u64,
    /// Active flows.
    pub active_flows: u64,
    /// Packets per second (average over the interval).
    pub packets_per_second: u64,
    /// Bytes per second (average over the interval).
    pub bytes_per_second: u64,
    /// Cumulative drops (kernel ring plus the helpers' backlog overflow).
    pub dropped_packets: u64,
    /// Cumulative capture errors (invalid IP headers, truncated frames, flow-table rejects).
    pub capture_errors: u64,
    /// `up` while a helper is connected, else `down`.
    pub interface_status: &'static str,
    /// Packets in the interval (history only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets: Option<u64>,
    /// Bytes in the interval (history only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Drops in the interval (history only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drops: Option<u64>,
    /// Bytes per second by protocol class (history only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_bytes_per_second: Option<ProtocolRates>,
}

/// Bytes per second by protocol class.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ProtocolRates {
    /// TCP.
    pub tcp: u64,
    /// UDP.
    pub udp: u64,
    /// ICMP and ICMPv6.
    pub icmp: u64,
    /// Everything else.
    pub other: u64,
}

/// `interfaceStatus` / `interface_status` from the store.
#[must_use]
pub fn interface_status(store: &Store) -> &'static str {
    if store.connected_helpers() > 0 {
        "up"
    } else {
        "down"
    }
}

/// Current metrics (`/api/v1/metrics`).
#[must_use]
pub fn current_metrics(store: &Store, now: u64, cpu: f64, rss: u64) -> SystemMetrics {
    let (bytes, packets) = store.last_second(now);
    let t = store.capture_totals();
    SystemMetrics {
        timestamp: iso(now),
        cpu_usage: cpu,
        memory_usage: rss,
        active_flows: store.count_status(now, crate::store::FlowStatus::Active) as u64,
        packets_per_second: packets,
        bytes_per_second: bytes,
        dropped_packets: t.kernel_drops + t.backlog_dropped_records,
        capture_errors: t.ip_invalid_frames + t.truncated_frames + t.table_rejects,
        interface_status: interface_status(store),
        packets: None,
        bytes: None,
        drops: None,
        protocol_bytes_per_second: None,
    }
}

/// One history point.
#[must_use]
pub fn history_point(p: &HistoryPoint, status: &'static str) -> SystemMetrics {
    let s = p.seconds.max(1);
    SystemMetrics {
        timestamp: iso(p.end_ns),
        cpu_usage: p.cpu,
        memory_usage: p.rss,
        active_flows: p.active,
        packets_per_second: p.packets / s,
        bytes_per_second: p.bytes / s,
        dropped_packets: p.drops_total,
        capture_errors: p.errors_total,
        interface_status: status,
        packets: Some(p.packets),
        bytes: Some(p.bytes),
        drops: Some(p.drops),
        protocol_bytes_per_second: Some(ProtocolRates {
            tcp: p.proto_bytes[0] / s,
            udp: p.proto_bytes[1] / s,
            icmp: p.proto_bytes[2] / s,
            other: p.proto_bytes[3] / s,
        }),
    }
}

/// The seeds' `TopTalker`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopTalker {
    /// Host IP address.
    pub identifier: String,
    /// The address as shown (no name resolution: data stays local).
    pub display_name: String,
    /// Bytes sent plus received in the window.
    pub total_bytes: u64,
    /// Packets sent plus received in the window.
    pub total_packets: u64,
    /// Stored flows of the host seen in the window.
    pub flow_count: u64,
    /// 1-based rank.
    pub rank: u32,
    /// Share of all bytes in the window, percent (a flow between two talkers counts for
    /// both, so shares may add up to more than 100).
    pub percentage_of_total: f64,
    /// The host's biggest flows in the window (up to 5).
    pub flows: Vec<NetworkFlow>,
}

/// Rows to `TopTalker`s.
#[must_use]
pub fn top_talkers(rows: &[TalkerRow], total: u64) -> Vec<TopTalker> {
    rows.iter()
        .zip(1u32..)
        .map(|(r, rank)| TopTalker {
            identifier: r.addr.to_string(),
            display_name: r.addr.to_string(),
            total_bytes: r.bytes,
            total_packets: r.packets,
            flow_count: r.flow_count,
            rank,
            percentage_of_total: if total == 0 {
                0.0
            } else {
                (r.bytes as f64 / total as f64 * 10000.0).round() / 100.0
            },
            flows: r.flows.iter().map(NetworkFlow::from).collect(),
        })
        .collect()
}

/// One protocol of `/protocols`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProtocolStat {
    /// IP protocol number.
    pub protocol: u8,
    /// Keyword.
    pub protocol_name: String,
    /// Bytes in the window.
    pub bytes: u64,
    /// Packets in the window.
    pub packets: u64,
    /// Share of the window's bytes, percent.
    pub percentage: f64,
}

/// Protocol shares to JSON rows.
#[must_use]
pub fn protocol_stats(shares: &[ProtocolShare]) -> Vec<ProtocolStat> {
    let total: u64 = shares.iter().map(|s| s.agg.bytes).sum();
    shares
        .iter()
        .map(|s| ProtocolStat {
            protocol: s.proto,
            protocol_name: protocol_name(s.proto),
            bytes: s.agg.bytes,
            packets: s.agg.packets,
            percentage: if total == 0 {
                0.0
            } else {
                (s.agg.bytes as f64 / total as f64 * 10000.0).round() / 100.0
            },
        })
        .collect()
}
