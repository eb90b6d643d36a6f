//! The messages exchanged on the capture socket.
//!
//! The helper speaks first with [`Hello`], then sends [`FlowBatch`]es with strictly
//! increasing sequence numbers; the server answers each stored batch with an [`Ack`]
//! carrying the highest sequence it holds for that instance. Either side may end with
//! [`Bye`]. A helper that reconnects sends `Hello` again with the same instance id and
//! resends the batches not yet acknowledged; the server drops those it already stored.

use crate::flow::FlowRecord;
use serde::{Deserialize, Serialize};

/// Magic bytes at the start of every [`Hello`].
pub const MAGIC: [u8; 4] = *b"NWAT";

/// Every message of the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Helper → server, first message of every connection.
    Hello(Hello),
    /// Helper → server, flows that changed plus statistics.
    FlowBatch(FlowBatch),
    /// Server → helper, acknowledges batches up to a sequence number.
    Ack(Ack),
    /// Either side: orderly end of the connection.
    Bye(Bye),
}

/// Where a helper's frames come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SourceKind {
    /// A live interface through an AF_PACKET ring.
    Live,
    /// A capture file replayed with `--read FILE --connect SOCKET`.
    Replay,
}

/// First message of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Must equal [`MAGIC`].
    pub magic: [u8; 4],
    /// The protocol version the helper speaks (also in every frame header).
    pub version: u16,
    /// Random id chosen when the helper process starts; the same across reconnects of one
    /// process, different after a restart.
    pub instance: u64,
    /// Interface name (or the capture file's name for a replay).
    pub interface: String,
    /// pcap LINKTYPE of the source (1 = Ethernet).
    pub link_type: u32,
    /// Snap length of the source.
    pub snaplen: u32,
    /// Live capture or replay.
    pub source: SourceKind,
    /// Process id of the helper (informational; the server trusts SO_PEERCRED).
    pub pid: u32,
    /// When the helper instance started, ns since the Unix epoch.
    pub started_ns: u64,
    /// Helper version string (crate version).
    pub software: String,
}

/// A batch of flow deltas plus the helper's cumulative statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowBatch {
    /// Helper instance id (as in [`Hello`]).
    pub instance: u64,
    /// Sequence number, starting at 1 and increasing by one per batch of an instance.
    pub seq: u64,
    /// Start of the export interval, ns since the Unix epoch (capture time).
    pub interval_start_ns: u64,
    /// End of the export interval, ns since the Unix epoch (capture time).
    pub interval_end_ns: u64,
    /// Flows that changed in the interval; counters are deltas (see [`FlowRecord`]).
    pub records: Vec<FlowRecord>,
    /// Cumulative statistics of this instance at the end of the interval.
    pub stats: CaptureStats,
}

/// A [`FlowBatch`] that borrows its records: what the helper encodes, so that one
/// interval's records go from the flow table's drain buffer to the wire without being
/// moved into a batch of their own (see [`crate::codec::encode_flow_batch_into`]). The
/// fields are those of [`FlowBatch`], in the same order: it encodes to the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FlowBatchRef<'a> {
    /// As [`FlowBatch::instance`].
    pub instance: u64,
    /// As [`FlowBatch::seq`].
    pub seq: u64,
    /// As [`FlowBatch::interval_start_ns`].
    pub interval_start_ns: u64,
    /// As [`FlowBatch::interval_end_ns`].
    pub interval_end_ns: u64,
    /// As [`FlowBatch::records`].
    pub records: &'a [FlowRecord],
    /// As [`FlowBatch::stats`].
    pub stats: CaptureStats,
}

/// Index of [`Message::FlowBatch`] among the variants (serde numbers them in declaration
/// order; the codec's tests check it against the derived encoding).
pub(crate) const FLOW_BATCH_VARIANT: u32 = 1;

/// Serialises a [`FlowBatchRef`] as the [`Message::FlowBatch`] variant.
pub(crate) struct FlowBatchMessage<'a, 'b>(pub(crate) &'b FlowBatchRef<'a>);

impl Serialize for FlowBatchMessage<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_variant("Message", FLOW_BATCH_VARIANT, "FlowBatch", self.0)
    }
}

/// Server → helper acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Instance the acknowledgement is for.
    pub instance: u64,
    /// Highest sequence number stored; every batch up to it may be forgotten.
    pub seq: u64,
}

/// Orderly end of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bye {
    /// Why the connection ends.
    pub kind: ByeKind,
    /// Human-readable reason (logged by the peer; for [`ByeKind::CaptureFailed`] the error).
    pub reason: String,
}

/// Why a peer says [`Bye`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ByeKind {
    /// The peer stops on request (SIGTERM, end of a replay, server shutdown).
    Shutdown,
    /// Helper only: its capture failed and cannot go on (the interface vanished, the ring
    /// broke). The server shows the interface in error until a helper for it says Hello.
    CaptureFailed,
}

/// Kinds of malformed frames: frames whose headers claim something the bytes do not hold.
/// Each kind is one counter in [`MalformedCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(usize)]
pub enum MalformedKind {
    /// Fewer bytes than an Ethernet II header (14 bytes).
    EthernetTruncated = 0,
    /// A VLAN tag cut short.
    VlanTruncated = 1,
    /// Ethertype IPv4 but the header is not a valid IPv4 header (version, IHL, length).
    Ipv4Invalid = 2,
    /// Ethertype IPv6 but the header is not a valid IPv6 header (version, length).
    Ipv6Invalid = 3,
    /// An IPv6 extension header chain cut short (still counted in a flow).
    Ipv6ExtensionTruncated = 4,
    /// A transport header cut short (still counted in a flow, with ports 0/0).
    TransportTruncated = 5,
    /// The frame's wire length is smaller than its captured length, or over 256 KiB.
    BadLength = 6,
}

impl MalformedKind {
    /// Number of kinds (the length of [`MalformedCounts::counts`]).
    pub const COUNT: usize = 7;
    /// Every kind, in counter order.
    pub const ALL: [MalformedKind; Self::COUNT] = [
        MalformedKind::EthernetTruncated,
        MalformedKind::VlanTruncated,
        MalformedKind::Ipv4Invalid,
        MalformedKind::Ipv6Invalid,
        MalformedKind::Ipv6ExtensionTruncated,
        MalformedKind::TransportTruncated,
        MalformedKind::BadLength,
    ];

    /// Stable snake_case name (used in summaries, JSON and Prometheus labels).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            MalformedKind::EthernetTruncated => "ethernet_truncated",
            MalformedKind::VlanTruncated => "vlan_truncated",
            MalformedKind::Ipv4Invalid => "ipv4_invalid",
            MalformedKind::Ipv6Invalid => "ipv6_invalid",
            MalformedKind::Ipv6ExtensionTruncated => "ipv6_extension_truncated",
            MalformedKind::TransportTruncated => "transport_truncated",
            MalformedKind::BadLength => "bad_length",
        }
    }
}

/// One counter per [`MalformedKind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MalformedCounts {
    /// Indexed by `MalformedKind as usize`.
    pub counts: [u64; MalformedKind::COUNT],
}

impl MalformedCounts {
    /// Adds one to a kind's counter.
    pub fn bump(&mut self, kind: MalformedKind) {
        let c = &mut self.counts[kind as usize];
        *c = c.saturating_add(1);
    }

    /// The counter of a kind.
    #[must_use]
    pub fn get(&self, kind: MalformedKind) -> u64 {
        self.counts[kind as usize]
    }

    /// Sum over all kinds.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, b| a.saturating_add(*b))
    }
}

/// Cumulative statistics of one helper instance.
///
/// Frame accounting: `frames = flow_frames + non_ip_frames + ip_invalid_frames +
/// truncated_frames`; every frame lands in exactly one of these buckets.
/// `malformed` breaks the rejects (and the flow frames whose transport or extension
/// headers were cut) down by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureStats {
    /// Frames seen by the parser.
    pub frames: u64,
    /// Sum of wire lengths of all frames seen.
    pub bytes: u64,
    /// Frames counted in a flow.
    pub flow_frames: u64,
    /// Frames that are not IP (ARP, LLDP, 802.3/LLC, MPLS, ...).
    pub non_ip_frames: u64,
    /// Frames whose ethertype says IP but whose IP header is invalid.
    pub ip_invalid_frames: u64,
    /// Frames too short to classify (cut inside the Ethernet or VLAN header).
    pub truncated_frames: u64,
    /// Rejects and cut headers, by kind.
    pub malformed: MalformedCounts,
    /// Frames the kernel dropped (PACKET_STATISTICS tp_drops), cumulative.
    pub kernel_drops: u64,
    /// Ring freezes reported by the kernel (tp_freeze_q_cnt), cumulative.
    pub kernel_freezes: u64,
    /// Capture errors the helper recovered from (a socket error such as ENETDOWN while the
    /// link was down), cumulative.
    pub capture_errors: u64,
    /// Flows currently in the helper's table.
    pub table_occupancy: u64,
    /// Capacity of the helper's table.
    pub table_capacity: u64,
    /// Flows pushed out of a full table, cumulative.
    pub table_evictions: u64,
    /// Flows the helper could not keep at all (table full and nothing evictable).
    pub table_rejects: u64,
    /// Batches dropped from the unacknowledged backlog because it was full.
    pub backlog_dropped_batches: u64,
    /// Flow records inside those dropped batches.
    pub backlog_dropped_records: u64,
    /// Helper CPU time in user mode, ns.
    pub cpu_user_ns: u64,
    /// Helper CPU time in kernel mode, ns.
    pub cpu_system_ns: u64,
    /// Helper resident set size, bytes.
    pub rss_bytes: u64,
}

impl std::ops::AddAssign<&CaptureStats> for CaptureStats {
    /// Field-wise sum (saturating): the totals of several capture threads, or of several
    /// helper instances. Every field is summed, gauges (occupancy, capacity, RSS) included.
    fn add_assign(&mut self, s: &CaptureStats) {
        let CaptureStats {
            frames,
            bytes,
            flow_frames,
            non_ip_frames,
            ip_invalid_frames,
            truncated_frames,
            malformed,
            kernel_drops,
            kernel_freezes,
            capture_errors,
            table_occupancy,
            table_capacity,
            table_evictions,
            table_rejects,
            backlog_dropped_batches,
            backlog_dropped_records,
            cpu_user_ns,
            cpu_system_ns,
            rss_bytes,
        } = s;
        for (a, b) in self
            .malformed
            .counts
            .iter_mut()
            .zip(malformed.counts.iter())
        {
            *a = a.saturating_add(*b);
        }
        for (a, b) in [
            (&mut self.frames, frames),
            (&mut self.bytes, bytes),
            (&mut self.flow_frames, flow_frames),
            (&mut self.non_ip_frames, non_ip_frames),
            (&mut self.ip_invalid_frames, ip_invalid_frames),
            (&mut self.truncated_frames, truncated_frames),
            (&mut self.kernel_drops, kernel_drops),
            (&mut self.kernel_freezes, kernel_freezes),
            (&mut self.capture_errors, capture_errors),
            (&mut self.table_occupancy, table_occupancy),
            (&mut self.table_capacity, table_capacity),
            (&mut self.table_evictions, table_evictions),
            (&mut self.table_rejects, table_rejects),
            (&mut self.backlog_dropped_batches, backlog_dropped_batches),
            (&mut self.backlog_dropped_records, backlog_dropped_records),
            (&mut self.cpu_user_ns, cpu_user_ns),
            (&mut self.cpu_system_ns, cpu_system_ns),
            (&mut self.rss_bytes, rss_bytes),
        ] {
            *a = a.saturating_add(*b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_stats_add_field_by_field_and_saturate() {
        // `add_assign` destructures without `..`, so a new field that it does not sum
        // fails to compile; this checks the arithmetic.
        let mut a = CaptureStats {
            frames: 3,
            capture_errors: 1,
            rss_bytes: 10,
            ..CaptureStats::default()
        };
        a.malformed.counts[2] = 4;
        let mut b = CaptureStats {
            frames: u64::MAX - 1,
            capture_errors: 2,
            backlog_dropped_records: 7,
            rss_bytes: 5,
            ..CaptureStats::default()
        };
        b.malformed.counts[2] = 1;
        let mut t = a;
        t += &a;
        assert_eq!((t.frames, t.capture_errors, t.rss_bytes), (6, 2, 20));
        assert_eq!(t.malformed.get(MalformedKind::Ipv4Invalid), 8);
        t += &b;
        assert_eq!(t.frames, u64::MAX, "saturates");
        assert_eq!((t.capture_errors, t.backlog_dropped_records), (4, 7));
        assert_eq!(t.malformed.get(MalformedKind::Ipv4Invalid), 9);
    }
}
