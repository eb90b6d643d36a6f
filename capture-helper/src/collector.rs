//! The collector: parser + flow table + frame accounting. One per capture thread.
//!
//! ```text
//! Frame ──► parse::parse_ethernet ──► Verdict::Flow ──► FlowTable::observe
//!                                    ├─ NonIp ────────► non_ip_frames
//!                                    ├─ IpInvalid(k) ─► ip_invalid_frames, malformed[k]
//!                                    └─ Truncated(k) ─► truncated_frames,  malformed[k]
//! ```
//!
//! Every frame lands in exactly one bucket, so
//! `frames = flow_frames + non_ip_frames + ip_invalid_frames + truncated_frames` always
//! holds. A flow frame whose transport or extension header was cut still counts in its
//! flow (ports 0/0) and also bumps its malformed kind; a frame whose wire length is below
//! its captured length or above 256 KiB bumps `bad_length` and is classified as usual (its
//! bytes count as the larger of the two lengths).
//!
//! Mapping to the oracle's summary (`oracle.py --summary`): `ip_frames = flow_frames`,
//! `non_ip_frames = non_ip_frames + truncated_frames` (tshark calls a frame cut inside the
//! Ethernet header or a VLAN tag "not IP"), `ip_invalid_frames = ip_invalid_frames`; the
//! oracle's own `truncated_frames` means "captured length < wire length", which is
//! [`Extra::snaplen_cut_frames`] here.

use crate::flow::table::Observation;
use crate::flow::{EndedRecord, FlowTable, RawKey, TableConfig};
use crate::parse::{self, Packet, Verdict, PROTO_TCP};
use crate::source::Frame;
use netwatch_protocol::{CaptureStats, EndReason, FlowRecord, MalformedKind, Side};

/// Wire lengths above this are implausible for Ethernet (`bad_length`).
pub const MAX_WIRE_LEN: u32 = 256 * 1024;

/// Counters beyond [`CaptureStats`] that the offline summary reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extra {
    /// Sum of captured lengths.
    pub captured_bytes: u64,
    /// Frames whose captured length is below the wire length (snap length).
    pub snaplen_cut_frames: u64,
    /// Flow frames that are non-first IP fragments.
    pub nonfirst_fragment_frames: u64,
}

/// Parser, flow table and statistics. See the module documentation.
#[derive(Debug)]
pub struct Collector {
    table: FlowTable,
    stats: CaptureStats,
    extra: Extra,
}

impl Collector {
    /// A collector with an empty table.
    #[must_use]
    pub fn new(cfg: TableConfig) -> Self {
        Collector {
            table: FlowTable::new(cfg),
            stats: CaptureStats::default(),
            extra: Extra::default(),
        }
    }

    /// Accounts one Ethernet frame and, when it is IP, counts it in its flow. `now_ns`
    /// drives the table's timeouts (the caller's clock, or the capture time offline).
    #[inline]
    pub fn process(&mut self, frame: &Frame<'_>, now_ns: u64) {
        if let Some((key, tag, obs)) = self.classify(frame) {
            self.table.observe_tagged(&key, tag, &obs, now_ns);
        }
    }

    /// The first half of [`Collector::process`]: accounts the frame and returns its flow
    /// key, the key's index hash and the observation when it is IP, without touching the
    /// flow table. Hand the result to [`Collector::observe`] (in frame order) to finish; in
    /// between, a batch of frames can have their table lookups prefetched with the hash
    /// ([`Collector::prefetch_slot`], [`Collector::prefetch_entry`]).
    ///
    /// Always inlined, with the parser's fast path: the key is built, ordered and hashed in
    /// registers (a call returning it through memory cost a store-forwarding stall when the
    /// hash read it back in wider words). Everything the fast path does not take goes to
    /// the out-of-line [`Collector::classify_general`].
    #[inline(always)]
    pub fn classify(&mut self, frame: &Frame<'_>) -> Option<(RawKey, u32, Observation)> {
        let wire_len = self.account(frame);
        if let Some(p) = parse::fast_ipv4(frame.data) {
            self.stats.flow_frames += 1;
            return Some(self.flow_of(&p, wire_len, frame.ts_ns));
        }
        self.classify_general(frame, wire_len)
    }

    /// [`Collector::classify`] writing straight into a batch slot: the fast path stores the
    /// key from registers into the slot, instead of into a temporary shared with the general
    /// path that is then copied (read back in wider words right after its narrow stores:
    /// a store-forwarding stall). Returns whether the frame is IP.
    #[inline(always)]
    fn classify_into(&mut self, frame: &Frame<'_>, slot: &mut Pending) -> bool {
        let wire_len = self.account(frame);
        if let Some(p) = parse::fast_ipv4(frame.data) {
            self.stats.flow_frames += 1;
            (slot.key, slot.tag, slot.obs) = self.flow_of(&p, wire_len, frame.ts_ns);
            return true;
        }
        match self.classify_general(frame, wire_len) {
            Some((key, tag, obs)) => {
                (slot.key, slot.tag, slot.obs) = (key, tag, obs);
                true
            }
            None => false,
        }
    }

    /// Counts a frame in the totals and the length checks; returns the bytes it counts
    /// for (the larger of the wire and captured lengths).
    #[inline(always)]
    fn account(&mut self, frame: &Frame<'_>) -> u32 {
        let cap_len = u32::try_from(frame.data.len()).unwrap_or(u32::MAX);
        let s = &mut self.stats;
        s.frames += 1;
        if frame.wire_len < cap_len || frame.wire_len > MAX_WIRE_LEN {
            s.malformed.bump(MalformedKind::BadLength);
        }
        let wire_len = frame.wire_len.max(cap_len);
        s.bytes += u64::from(wire_len);
        self.extra.captured_bytes += u64::from(cap_len);
        if cap_len < frame.wire_len {
            self.extra.snaplen_cut_frames += 1;
        }
        wire_len
    }

    /// The key, index hash and observation of an IP packet.
    #[inline(always)]
    fn flow_of(&self, p: &Packet, wire_len: u32, ts_ns: u64) -> (RawKey, u32, Observation) {
        let (key, side, words) = RawKey::from_packet_words(p);
        let tag = self.table.tag_of_words(words);
        let obs = Observation {
            side,
            wire_len: u64::from(wire_len),
            ip_len: u64::from(p.ip_len),
            tcp_flags: p.tcp_flags,
            is_tcp: p.proto == PROTO_TCP && !p.nonfirst_fragment && p.cut.is_none(),
            ts_ns,
        };
        (key, tag, obs)
    }

    /// [`Collector::classify`] for the frames the parser's fast path leaves (IPv6, IPv4
    /// with options or fragments, other protocols, non-IP, malformed): the general parser.
    /// The frame's length accounting is already done.
    #[inline(never)]
    fn classify_general(
        &mut self,
        frame: &Frame<'_>,
        wire_len: u32,
    ) -> Option<(RawKey, u32, Observation)> {
        let s = &mut self.stats;
        match parse::parse_ethernet_general(frame.data, frame.wire_len) {
            Verdict::Flow(p) => {
                s.flow_frames += 1;
                if let Some(kind) = p.cut {
                    s.malformed.bump(kind);
                }
                if p.nonfirst_fragment {
                    self.extra.nonfirst_fragment_frames += 1;
                }
                Some(self.flow_of(&p, wire_len, frame.ts_ns))
            }
            Verdict::NonIp => {
                s.non_ip_frames += 1;
                None
            }
            Verdict::IpInvalid(kind) => {
                s.ip_invalid_frames += 1;
                s.malformed.bump(kind);
                None
            }
            Verdict::Truncated(kind) => {
                s.truncated_frames += 1;
                s.malformed.bump(kind);
                None
            }
        }
    }

    /// Hints the CPU to load the home slot of `tag` (a [`Collector::classify`] hash) in the
    /// table's index (see [`FlowTable::prefetch_slot`]).
    #[inline]
    pub fn prefetch_slot(&self, tag: u32) {
        self.table.prefetch_slot(tag);
    }

    /// Hints the CPU to load the entry the home slot of `tag` points at (see
    /// [`FlowTable::prefetch_entry`]).
    #[inline]
    pub fn prefetch_entry(&self, tag: u32) {
        self.table.prefetch_entry(tag);
    }

    /// The second half of [`Collector::process`]: counts a classified packet in its flow.
    /// `tag` must be [`Collector::classify`]'s hash of `key`.
    #[inline]
    pub fn observe(&mut self, key: &RawKey, tag: u32, obs: &Observation, now_ns: u64) {
        self.table.observe_tagged(key, tag, obs, now_ns);
    }

    /// Ends the flows whose timeouts have passed.
    pub fn expire(&mut self, now_ns: u64) {
        self.table.expire(now_ns);
    }

    /// Appends the delta of every flow changed since the last drain (ended flows first,
    /// then forgotten). See [`FlowTable::drain_with`].
    pub fn drain_changes(&mut self, out: &mut Vec<FlowRecord>) {
        self.table.drain_with(|r| out.push(r.to_record()));
    }

    /// As [`Collector::drain_changes`], handing each record in the compact form (with IP
    /// byte counts) to `f`; allocates nothing.
    pub fn drain_with(&mut self, f: impl FnMut(&EndedRecord)) {
        self.table.drain_with(f);
    }

    /// Hands only the records that ended since the last drain to `f` (see
    /// [`FlowTable::drain_ended_with`]).
    pub fn drain_ended_with(&mut self, f: impl FnMut(&EndedRecord)) {
        self.table.drain_ended_with(f);
    }

    /// Number of ended records waiting for the next drain (the table rejects new flows
    /// rather than evict once this reaches its capacity).
    #[must_use]
    pub fn pending_ended(&self) -> usize {
        self.table.pending_ended()
    }

    /// Ends every flow (`Shutdown`, or FIN/RST for flows already closed) and drains.
    pub fn finish(&mut self, out: &mut Vec<FlowRecord>) {
        self.table.end_all(EndReason::Shutdown);
        self.drain_changes(out);
    }

    /// As [`Collector::finish`] with a callback.
    pub fn finish_with(&mut self, f: impl FnMut(&EndedRecord)) {
        self.table.end_all(EndReason::Shutdown);
        self.table.drain_with(f);
    }

    /// Cumulative statistics; the table fields are filled in, kernel/backlog/CPU fields
    /// are left 0 for the caller.
    #[must_use]
    pub fn stats(&self) -> CaptureStats {
        let t = self.table.counters();
        CaptureStats {
            table_occupancy: t.occupancy,
            table_capacity: t.capacity,
            table_evictions: t.evictions,
            table_rejects: t.rejects,
            ..self.stats
        }
    }

    /// Counters for the offline summary.
    #[must_use]
    pub fn extra(&self) -> Extra {
        self.extra
    }

    /// The table's configuration.
    #[must_use]
    pub fn table_config(&self) -> TableConfig {
        self.table.config()
    }
}

/// Frames per [`Batch`] (enough table lookups in flight to hide a cache miss).
pub const BATCH: usize = 32;

/// One classified frame waiting in a [`Batch`].
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// The clock of the frame (its timestamp).
    now: u64,
    /// Whether the frame is IP (then `key`, `tag` and `obs` are set).
    flow: bool,
    tag: u32,
    key: RawKey,
    obs: Observation,
}

impl Pending {
    const EMPTY: Pending = Pending {
        now: 0,
        flow: false,
        tag: 0,
        key: RawKey {
            addr_a: [0; 16],
            addr_b: [0; 16],
            port_a: 0,
            port_b: 0,
            vlan: 0,
            proto: 0,
            v6: 0,
        },
        obs: Observation {
            side: Side::A,
            wire_len: 0,
            ip_len: 0,
            tcp_flags: 0,
            is_tcp: false,
            ts_ns: 0,
        },
    };
}

/// Frames counted in batches, so that the flow-table cache misses of a batch overlap:
/// [`Batch::push`] classifies a frame (accounting it at once) and prefetches its flow's
/// index slot; [`Batch::flush`] prefetches the entries those slots point at, then counts
/// the packets in frame order. The prefetches are hints only: the table sees exactly the
/// calls of frame-by-frame [`Collector::process`], in the same order, so the result is
/// the same. Used by offline mode and by every live capture thread.
#[derive(Debug)]
pub struct Batch {
    items: [Pending; BATCH],
    len: usize,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            items: [Pending::EMPTY; BATCH],
            len: 0,
        }
    }
}

impl Batch {
    /// Classifies `frame` into `c`'s statistics and queues its flow update (with `now` as
    /// the clock); when that fills the batch, flushes it with `after` (see
    /// [`Batch::flush`]).
    #[inline]
    pub fn push(
        &mut self,
        c: &mut Collector,
        frame: &Frame<'_>,
        now: u64,
        after: impl FnMut(&mut Collector, u64),
    ) {
        let p = &mut self.items[self.len];
        p.now = now;
        p.flow = c.classify_into(frame, p);
        if p.flow {
            c.prefetch_slot(p.tag);
        }
        self.len += 1;
        if self.len == BATCH {
            self.flush(c, after);
        }
    }

    /// Counts every queued frame in its flow, in order, calling `after(c, now)` after
    /// each (for expiry and drains that must happen between frames), and empties the batch.
    #[inline]
    pub fn flush(&mut self, c: &mut Collector, mut after: impl FnMut(&mut Collector, u64)) {
        let items = &self.items[..self.len];
        for p in items {
            if p.flow {
                c.prefetch_entry(p.tag);
            }
        }
        for p in items {
            if p.flow {
                c.observe(&p.key, p.tag, &p.obs, p.now);
            }
            after(c, p.now);
        }
        self.len = 0;
    }
}
