//! The in-memory flow store: flows, per-minute and per-second series, helper bookkeeping.
//!
//! Deterministic: every method that depends on time takes `now` (ns since the Unix epoch)
//! or the wall clock as an argument; nothing in here reads a clock.
//!
//! # Data layout
//!
//! Flows live in a slab of columns ([`Columns`]): one `Vec` per field, indexed by a slot
//! id, plus a `HashMap<FlowKey, u32>` for O(1) lookup on ingest. Queries scan only the
//! columns their filters and sort key need (a flag byte, IPv4 addresses, ports, one
//! timestamp or counter), which keeps a filtered query over a million flows at a few
//! megabytes of memory traffic. Freed slots are reused through a free list.
//!
//! # Time base
//!
//! The store clock ([`Clock`]) is the wall clock as soon as any live helper has sent a batch.
//! While every batch has come from replay helpers (`Hello.source == Replay`), the clock is
//! the newest capture timestamp seen (the end of the newest batch interval), so a replayed
//! capture from 2013 keeps its own timestamps and the retention window, the idle timeout
//! and the 5m/15m/1h windows are measured against the capture's own time. Replayed data
//! mixed into a live server is older than the retention window and expires at the next
//! tick: replay into a server of its own.

mod query;
mod series;

pub use query::{FlowPage, FlowQuery, SortBy, SortOrder, StatusFilter};
pub use series::{HistoryPoint, ProtocolShare, TalkerRow, WINDOWS_MINUTES};

use netwatch_protocol::{
    CaptureStats, DirCounters, EndReason, FlowBatch, FlowKey, FlowRecord, Hello, Side, SourceKind,
};
use series::Series;
use std::collections::HashMap;
use std::net::IpAddr;

/// Nanoseconds per second.
pub const NS: u64 = 1_000_000_000;

/// Largest wire length of one frame the helper accepts (bytes per packet sanity bound).
const MAX_FRAME_BYTES: u64 = 256 * 1024;

/// Estimated memory per stored flow in bytes: the columns (about 110 bytes) plus the hash
/// index entry at its load factor (about 60 bytes). Measured with `bench/store.sh`.
pub const BYTES_PER_FLOW: u64 = 176;

/// Helpers remembered after they disconnect (oldest forgotten first).
const MAX_HELPERS: usize = 64;

/// Store settings.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Flows whose last packet is older than this are dropped (ns). Default 60 minutes.
    pub retention_ns: u64,
    /// A flow with no packet for this long is `idle` (ns). Default 10 s.
    pub idle_ns: u64,
    /// Memory ceiling for the flow table in bytes (estimated with [`BYTES_PER_FLOW`]).
    pub memory_limit: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            retention_ns: 3600 * NS,
            idle_ns: 10 * NS,
            memory_limit: 512 * 1024 * 1024,
        }
    }
}

impl StoreConfig {
    /// Most flows kept before the memory ceiling evicts.
    #[must_use]
    pub fn max_flows(&self) -> usize {
        let fixed = 16 * 1024 * 1024; // series, helper table, slack
        usize::try_from(self.memory_limit.saturating_sub(fixed) / BYTES_PER_FLOW)
            .unwrap_or(usize::MAX)
            .max(1024)
    }
}

/// Status of a flow (D-18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowStatus {
    /// Packets within the idle timeout.
    Active,
    /// No packet for the idle timeout.
    Idle,
    /// Ended: FIN both ways, RST, the helper's idle timeout, eviction or shutdown.
    Closed,
}

impl FlowStatus {
    /// The API name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            FlowStatus::Active => "active",
            FlowStatus::Idle => "idle",
            FlowStatus::Closed => "closed",
        }
    }
}

/// One flow as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowView {
    /// Identity.
    pub key: FlowKey,
    /// The side that started the flow (D-19: it is the API's `src`).
    pub initiator: Side,
    /// First packet, ns since the epoch.
    pub first_ns: u64,
    /// Latest packet, ns since the epoch.
    pub last_ns: u64,
    /// Sent by side A.
    pub ab: DirCounters,
    /// Sent by side B.
    pub ba: DirCounters,
    /// Why the helper ended it, when it did.
    pub end: Option<EndReason>,
    /// Status at the `now` of the query.
    pub status: FlowStatus,
}

impl FlowView {
    /// Total bytes.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.ab.bytes.saturating_add(self.ba.bytes)
    }
    /// Total packets.
    #[must_use]
    pub fn packets(&self) -> u64 {
        self.ab.packets.saturating_add(self.ba.packets)
    }
    /// Counters sent by the initiator, then by the responder.
    #[must_use]
    pub fn by_role(&self) -> (DirCounters, DirCounters) {
        match self.initiator {
            Side::A => (self.ab, self.ba),
            Side::B => (self.ba, self.ab),
        }
    }
}

/// Why a record of a batch was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRecord {
    /// The key is not in canonical order or mixes address families.
    #[error("flow key not canonical")]
    KeyNotCanonical,
    /// `first_ns > last_ns`.
    #[error("first seen after last seen")]
    TimeReversed,
    /// Counters that cannot come from real frames.
    #[error("impossible counters")]
    Counters,
}

/// Checks one record from the wire.
///
/// # Errors
/// The first rule the record breaks.
pub fn validate_record(r: &FlowRecord) -> Result<(), InvalidRecord> {
    if !r.key.is_canonical() {
        return Err(InvalidRecord::KeyNotCanonical);
    }
    if r.first_ns > r.last_ns {
        return Err(InvalidRecord::TimeReversed);
    }
    for d in [&r.ab, &r.ba] {
        let sane = if d.packets == 0 {
            d.bytes == 0
        } else {
            d.bytes >= d.packets && d.bytes / d.packets <= MAX_FRAME_BYTES
        };
        if !sane {
            return Err(InvalidRecord::Counters);
        }
    }
    Ok(())
}

/// What happened to a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Stored; acknowledge `ack`. `invalid` records were skipped.
    Stored {
        /// Highest stored sequence of the instance.
        ack: u64,
        /// Records refused by [`validate_record`].
        invalid: u64,
    },
    /// Already stored (a resend); acknowledge `ack` again, store unchanged.
    Duplicate {
        /// Highest stored sequence of the instance.
        ack: u64,
    },
}

/// A helper instance as the store knows it.
#[derive(Debug, Clone)]
pub struct HelperInfo {
    /// Hello of the latest connection.
    pub hello: Hello,
    /// Peer uid (SO_PEERCRED).
    pub uid: u32,
    /// Peer gid (SO_PEERCRED).
    pub gid: u32,
    /// Open connections of this instance right now.
    pub connections: u32,
    /// Times this instance connected.
    pub connects: u64,
    /// Wall clock of the latest connect, ns.
    pub connected_wall_ns: u64,
    /// Wall clock of the latest disconnect, ns (0 while never disconnected).
    pub disconnected_wall_ns: u64,
    /// The latest connection ended with `Bye`.
    pub said_bye: bool,
    /// Highest stored sequence.
    pub highest_seq: u64,
    /// Batches stored.
    pub batches: u64,
    /// Records stored.
    pub records: u64,
    /// Resent batches dropped as duplicates.
    pub duplicates: u64,
    /// Batches missing in the sequence (lost by the helper's backlog bound).
    pub seq_gaps: u64,
    /// Latest cumulative statistics.
    pub stats: CaptureStats,
    /// Wall clock of the latest batch, ns.
    pub last_batch_wall_ns: u64,
}

/// Cumulative store counters (shown in health and `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounters {
    /// Batches stored.
    pub batches: u64,
    /// Records stored.
    pub records: u64,
    /// Duplicate batches dropped.
    pub duplicate_batches: u64,
    /// Records refused by validation.
    pub invalid_records: u64,
    /// Flows created.
    pub flows_created: u64,
    /// Flows dropped by the retention window.
    pub expired: u64,
    /// Flows evicted by the memory ceiling, by status at eviction.
    pub evicted_closed: u64,
    /// See `evicted_closed`.
    pub evicted_idle: u64,
    /// See `evicted_closed`.
    pub evicted_active: u64,
    /// Record deltas too old for the per-second and per-minute series.
    pub late_records: u64,
}

impl StoreCounters {
    /// All memory-ceiling evictions.
    #[must_use]
    pub fn evicted(&self) -> u64 {
        self.evicted_closed + self.evicted_idle + self.evicted_active
    }
}

/// The store clock (see the module documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    live_seen: bool,
    replay_high_ns: Option<u64>,
}

impl Clock {
    /// The store's "now" for a given wall clock.
    #[must_use]
    pub fn now(&self, wall_ns: u64) -> u64 {
        match (self.live_seen, self.replay_high_ns) {
            (false, Some(t)) => t,
            _ => wall_ns,
        }
    }

    /// True when the clock follows replayed capture time.
    #[must_use]
    pub fn is_replay(&self) -> bool {
        !self.live_seen && self.replay_high_ns.is_some()
    }
}

const F_LIVE: u8 = 1;
const F_V6: u8 = 2;
const F_INIT_B: u8 = 4;
const F_CLOSED: u8 = 8;

/// Column-oriented flow slab.
#[derive(Debug, Default)]
struct Columns {
    key: Vec<FlowKey>,
    a4: Vec<u32>,
    b4: Vec<u32>,
    port_a: Vec<u16>,
    port_b: Vec<u16>,
    proto: Vec<u8>,
    flags: Vec<u8>,
    end: Vec<u8>,
    first: Vec<u64>,
    last: Vec<u64>,
    bytes: Vec<u64>,
    packets: Vec<u64>,
    ab_bytes: Vec<u64>,
    ab_packets: Vec<u64>,
    tcp_flags: Vec<u16>,
}

fn v4_bits(a: IpAddr) -> u32 {
    match a {
        IpAddr::V4(v) => u32::from(v),
        IpAddr::V6(_) => 0,
    }
}

fn end_code(e: Option<EndReason>) -> u8 {
    match e {
        None => 0,
        Some(EndReason::Fin) => 1,
        Some(EndReason::Rst) => 2,
        Some(EndReason::IdleTimeout) => 3,
        Some(EndReason::ActiveTimeout) => 4,
        Some(EndReason::Evicted) => 5,
        Some(EndReason::Shutdown) => 6,
    }
}

fn end_from_code(c: u8) -> Option<EndReason> {
    match c {
        1 => Some(EndReason::Fin),
        2 => Some(EndReason::Rst),
        3 => Some(EndReason::IdleTimeout),
        4 => Some(EndReason::ActiveTimeout),
        5 => Some(EndReason::Evicted),
        6 => Some(EndReason::Shutdown),
        _ => None,
    }
}

/// True for end reasons after which the flow is `closed` (an active timeout only splits
/// the record; the conversation goes on).
fn ends_flow(e: EndReason) -> bool {
    !matches!(e, EndReason::ActiveTimeout)
}

impl Columns {
    fn len(&self) -> usize {
        self.flags.len()
    }

    fn push_empty(&mut self, key: FlowKey) -> u32 {
        let id = u32::try_from(self.flags.len()).unwrap_or(u32::MAX);
        self.key.push(key);
        self.a4.push(0);
        self.b4.push(0);
        self.port_a.push(0);
        self.port_b.push(0);
        self.proto.push(0);
        self.flags.push(0);
        self.end.push(0);
        self.first.push(0);
        self.last.push(0);
        self.bytes.push(0);
        self.packets.push(0);
        self.ab_bytes.push(0);
        self.ab_packets.push(0);
        self.tcp_flags.push(0);
        id
    }

    fn init(&mut self, i: usize, r: &FlowRecord) {
        let k = r.key;
        self.key[i] = k;
        self.a4[i] = v4_bits(k.addr_a);
        self.b4[i] = v4_bits(k.addr_b);
        self.port_a[i] = k.port_a;
        self.port_b[i] = k.port_b;
        self.proto[i] = k.proto;
        let mut f = F_LIVE;
        if k.addr_a.is_ipv6() {
            f |= F_V6;
        }
        if r.initiator == Side::B {
            f |= F_INIT_B;
        }
        self.flags[i] = f;
        self.end[i] = 0;
        self.first[i] = r.first_ns;
        self.last[i] = r.last_ns;
        self.bytes[i] = 0;
        self.packets[i] = 0;
        self.ab_bytes[i] = 0;
        self.ab_packets[i] = 0;
        self.tcp_flags[i] = 0;
    }

    fn merge(&mut self, i: usize, r: &FlowRecord) {
        if r.first_ns < self.first[i] {
            self.first[i] = r.first_ns;
            self.flags[i] = if r.initiator == Side::B {
                self.flags[i] | F_INIT_B
            } else {
                self.flags[i] & !F_INIT_B
            };
        }
        self.last[i] = self.last[i].max(r.last_ns);
        self.bytes[i] = self.bytes[i].saturating_add(r.bytes());
        self.packets[i] = self.packets[i].saturating_add(r.packets());
        self.ab_bytes[i] = self.ab_bytes[i].saturating_add(r.ab.bytes);
        self.ab_packets[i] = self.ab_packets[i].saturating_add(r.ab.packets);
        self.tcp_flags[i] |= (u16::from(r.ab.tcp_flags) << 8) | u16::from(r.ba.tcp_flags);
        match r.end {
            Some(e) => {
                self.end[i] = end_code(Some(e));
                if ends_flow(e) {
                    self.flags[i] |= F_CLOSED;
                } else {
                    self.flags[i] &= !F_CLOSED;
                }
            }
            None if r.packets() > 0 => {
                // New packets after an end: the conversation (or a new one on the same
                // key) is open again.
                self.end[i] = 0;
                self.flags[i] &= !F_CLOSED;
            }
            None => {}
        }
    }

    fn status(&self, i: usize, now: u64, idle_ns: u64) -> FlowStatus {
        if self.flags[i] & F_CLOSED != 0 {
            FlowStatus::Closed
        } else if now.saturating_sub(self.last[i]) > idle_ns {
            FlowStatus::Idle
        } else {
            FlowStatus::Active
        }
    }

    fn view(&self, i: usize, now: u64, idle_ns: u64) -> FlowView {
        let ab = DirCounters {
            packets: self.ab_packets[i],
            bytes: self.ab_bytes[i],
            tcp_flags: (self.tcp_flags[i] >> 8) as u8,
        };
        let ba = DirCounters {
            packets: self.packets[i] - self.ab_packets[i],
            bytes: self.bytes[i] - self.ab_bytes[i],
            tcp_flags: (self.tcp_flags[i] & 0xff) as u8,
        };
        FlowView {
            key: self.key[i],
            initiator: if self.flags[i] & F_INIT_B != 0 {
                Side::B
            } else {
                Side::A
            },
            first_ns: self.first[i],
            last_ns: self.last[i],
            ab,
            ba,
            end: end_from_code(self.end[i]),
            status: self.status(i, now, idle_ns),
        }
    }
}

/// The flow store.
#[derive(Debug)]
pub struct Store {
    cfg: StoreConfig,
    max_flows: usize,
    index: HashMap<FlowKey, u32>,
    cols: Columns,
    free: Vec<u32>,
    live: usize,
    series: Series,
    helpers: HashMap<u64, HelperInfo>,
    retired: CaptureStats,
    counters: StoreCounters,
    clock: Clock,
    oldest_hint_ns: u64,
    last_problem_wall_ns: u64,
}

impl Store {
    /// An empty store.
    #[must_use]
    pub fn new(cfg: StoreConfig) -> Store {
        let max_flows = cfg.max_flows();
        let retention_s = (cfg.retention_ns / NS).max(60);
        Store {
            max_flows,
            series: Series::new(retention_s),
            cfg,
            index: HashMap::new(),
            cols: Columns::default(),
            free: Vec::new(),
            live: 0,
            helpers: HashMap::new(),
            retired: CaptureStats::default(),
            counters: StoreCounters::default(),
            clock: Clock::default(),
            oldest_hint_ns: 0,
            last_problem_wall_ns: 0,
        }
    }

    /// Settings.
    #[must_use]
    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    /// The store clock for a wall-clock time.
    #[must_use]
    pub fn now(&self, wall_ns: u64) -> u64 {
        self.clock.now(wall_ns)
    }

    /// The clock itself.
    #[must_use]
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Flows stored.
    #[must_use]
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when no flow is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Most flows kept under the memory ceiling.
    #[must_use]
    pub fn max_flows(&self) -> usize {
        self.max_flows
    }

    /// Estimated memory of the flow table and series, bytes.
    #[must_use]
    pub fn memory_estimate(&self) -> u64 {
        (self.cols.len() as u64) * BYTES_PER_FLOW + self.series.memory_estimate()
    }

    /// Cumulative counters.
    #[must_use]
    pub fn counters(&self) -> StoreCounters {
        self.counters
    }

    /// Wall clock of the latest drop, eviction or abnormal helper loss (0 = never).
    #[must_use]
    pub fn last_problem_wall_ns(&self) -> u64 {
        self.last_problem_wall_ns
    }

    /// Helper instances known (connected ones and the latest disconnected ones).
    pub fn helpers(&self) -> impl Iterator<Item = &HelperInfo> {
        self.helpers.values()
    }

    /// Sum of the cumulative statistics of every helper instance seen.
    #[must_use]
    pub fn capture_totals(&self) -> CaptureStats {
        let mut t = self.retired;
        for h in self.helpers.values() {
            t += &h.stats;
        }
        t
    }

    /// Registers a connection's `Hello`; returns the highest sequence stored for the instance
    /// (0 for a new one), which the server acknowledges at once so a reconnecting helper
    /// can drop what is already stored.
    pub fn helper_connected(&mut self, hello: &Hello, uid: u32, gid: u32, wall_ns: u64) -> u64 {
        if !self.helpers.contains_key(&hello.instance) && self.helpers.len() >= MAX_HELPERS {
            let oldest = self
                .helpers
                .values()
                .filter(|h| h.connections == 0)
                .min_by_key(|h| h.disconnected_wall_ns)
                .map(|h| h.hello.instance);
            if let Some(id) = oldest {
                if let Some(h) = self.helpers.remove(&id) {
                    self.retired += &h.stats;
                }
            }
        }
        let h = self
            .helpers
            .entry(hello.instance)
            .or_insert_with(|| HelperInfo {
                hello: hello.clone(),
                uid,
                gid,
                connections: 0,
                connects: 0,
                connected_wall_ns: wall_ns,
                disconnected_wall_ns: 0,
                said_bye: false,
                highest_seq: 0,
                batches: 0,
                records: 0,
                duplicates: 0,
                seq_gaps: 0,
                stats: CaptureStats::default(),
                last_batch_wall_ns: 0,
            });
        h.hello = hello.clone();
        h.uid = uid;
        h.gid = gid;
        h.connections += 1;
        h.connects += 1;
        h.connected_wall_ns = wall_ns;
        h.said_bye = false;
        h.highest_seq
    }

    /// Records the end of a connection; `bye` when it ended with `Bye`.
    pub fn helper_disconnected(&mut self, instance: u64, bye: bool, wall_ns: u64) {
        if let Some(h) = self.helpers.get_mut(&instance) {
            h.connections = h.connections.saturating_sub(1);
            h.disconnected_wall_ns = wall_ns;
            h.said_bye = bye;
            if !bye && h.hello.source == SourceKind::Live {
                self.last_problem_wall_ns = wall_ns;
            }
        }
    }

    /// Number of helper connections open now.
    #[must_use]
    pub fn connected_helpers(&self) -> usize {
        self.helpers.values().filter(|h| h.connections > 0).count()
    }

    /// Stores one batch from a helper that said `Hello` (its instance must be registered).
    /// Batches with a sequence number not above the highest stored one are duplicates and
    /// leave the store unchanged. Records that fail [`validate_record`] are skipped and
    /// counted.
    pub fn ingest(&mut self, batch: &FlowBatch, wall_ns: u64) -> BatchOutcome {
        let Some(h) = self.helpers.get_mut(&batch.instance) else {
            return BatchOutcome::Duplicate { ack: 0 };
        };
        if batch.seq <= h.highest_seq {
            h.duplicates += 1;
            self.counters.duplicate_batches += 1;
            return BatchOutcome::Duplicate { ack: h.highest_seq };
        }
        if batch.seq > h.highest_seq + 1 {
            h.seq_gaps += batch.seq - h.highest_seq - 1;
        }
        h.highest_seq = batch.seq;
        h.batches += 1;
        h.last_batch_wall_ns = wall_ns;
        let prev = h.stats;
        h.stats = batch.stats;
        let source = h.hello.source;
        let ack = h.highest_seq;

        let drops = batch.stats.kernel_drops.saturating_sub(prev.kernel_drops)
            + batch
                .stats
                .backlog_dropped_records
                .saturating_sub(prev.backlog_dropped_records);
        let errors = capture_errors(&batch.stats).saturating_sub(capture_errors(&prev));
        if drops > 0 {
            self.last_problem_wall_ns = wall_ns;
        }

        if !self.clock.live_seen
            && self.clock.replay_high_ns.is_none()
            && source == SourceKind::Replay
        {
            // The first batch ever, from a replay: the series were advanced by the wall
            // clock until now and hold no data; restart them on the capture's time base.
            self.series = Series::new(self.series.retention_s());
            self.oldest_hint_ns = 0;
        }
        match source {
            SourceKind::Live => self.clock.live_seen = true,
            SourceKind::Replay => {
                let t = batch.interval_end_ns.max(batch.interval_start_ns);
                let hi = self.clock.replay_high_ns.map_or(t, |x| x.max(t));
                self.clock.replay_high_ns = Some(hi);
            }
        }
        let now = self.clock.now(wall_ns);
        self.series.advance(now);
        self.series.add_drops(now, drops, errors);

        let mut invalid = 0u64;
        let mut stored = 0u64;
        for r in &batch.records {
            if validate_record(r).is_err() {
                invalid += 1;
                continue;
            }
            self.apply(r, now);
            stored += 1;
        }
        if let Some(h) = self.helpers.get_mut(&batch.instance) {
            h.records += stored;
        }
        self.counters.batches += 1;
        self.counters.records += stored;
        self.counters.invalid_records += invalid;
        self.enforce_ceiling(now, wall_ns);
        BatchOutcome::Stored { ack, invalid }
    }

    fn apply(&mut self, r: &FlowRecord, now: u64) {
        let id = match self.index.get(&r.key) {
            Some(&id) => id,
            None => {
                let id = match self.free.pop() {
                    Some(id) => id,
                    None => self.cols.push_empty(r.key),
                };
                self.cols.init(id as usize, r);
                self.index.insert(r.key, id);
                self.live += 1;
                self.counters.flows_created += 1;
                id
            }
        };
        self.cols.merge(id as usize, r);
        if !self.series.add_record(r, now) {
            self.counters.late_records += 1;
        }
    }

    fn remove(&mut self, i: usize) {
        let key = self.cols.key[i];
        self.index.remove(&key);
        self.cols.flags[i] = 0;
        self.free.push(i as u32);
        self.live -= 1;
    }

    /// Evicts past the memory ceiling: oldest closed flows first, then idle, then active
    /// (D-18). Evicts down to 95 % of the ceiling so the scan is amortized.
    fn enforce_ceiling(&mut self, now: u64, wall_ns: u64) {
        if self.live <= self.max_flows {
            return;
        }
        let target = self.max_flows - self.max_flows / 20;
        let mut need = self.live - target;
        let idle = self.cfg.idle_ns;
        let mut cands: Vec<(u8, u64, u32)> = Vec::with_capacity(self.live);
        for i in 0..self.cols.len() {
            if self.cols.flags[i] & F_LIVE == 0 {
                continue;
            }
            let class = match self.cols.status(i, now, idle) {
                FlowStatus::Closed => 0,
                FlowStatus::Idle => 1,
                FlowStatus::Active => 2,
            };
            cands.push((class, self.cols.last[i], i as u32));
        }
        if need < cands.len() {
            cands.select_nth_unstable(need);
            cands.truncate(need);
        }
        need = cands.len();
        for &(class, _, i) in &cands {
            match class {
                0 => self.counters.evicted_closed += 1,
                1 => self.counters.evicted_idle += 1,
                _ => self.counters.evicted_active += 1,
            }
            self.remove(i as usize);
        }
        if need > 0 {
            self.last_problem_wall_ns = wall_ns;
        }
    }

    /// Once a second: advances the windows to the store clock, drops flows past the
    /// retention window and writes the host sample (`cpu_percent`, `rss_bytes`) into the
    /// current second.
    pub fn tick(&mut self, wall_ns: u64, cpu_percent: f64, rss_bytes: u64) {
        let now = self.clock.now(wall_ns);
        self.series.advance(now);
        self.expire(now);
        let active = self.count_status(now, FlowStatus::Active);
        self.series
            .sample_host(now, cpu_percent, rss_bytes, active as u64);
    }

    /// Drops every flow whose last packet is older than the retention window.
    pub fn expire(&mut self, now: u64) {
        let cutoff = now.saturating_sub(self.cfg.retention_ns);
        if cutoff <= self.oldest_hint_ns {
            return;
        }
        let mut oldest = u64::MAX;
        for i in 0..self.cols.len() {
            if self.cols.flags[i] & F_LIVE == 0 {
                continue;
            }
            let last = self.cols.last[i];
            if last < cutoff {
                self.remove(i);
                self.counters.expired += 1;
            } else {
                oldest = oldest.min(last);
            }
        }
        self.oldest_hint_ns = if oldest == u64::MAX { cutoff } else { oldest };
    }

    /// Number of flows with a status at `now`.
    #[must_use]
    pub fn count_status(&self, now: u64, status: FlowStatus) -> usize {
        let idle = self.cfg.idle_ns;
        let c = &self.cols;
        (0..c.len())
            .filter(|&i| c.flags[i] & F_LIVE != 0 && c.status(i, now, idle) == status)
            .count()
    }

    /// Flows in the store per IP protocol number (for `/metrics`, issue 7).
    #[must_use]
    pub fn count_by_protocol(&self) -> [u64; 256] {
        let c = &self.cols;
        let mut n = [0u64; 256];
        for i in (0..c.len()).filter(|&i| c.flags[i] & F_LIVE != 0) {
            n[usize::from(c.proto[i])] += 1;
        }
        n
    }

    /// One flow by key.
    #[must_use]
    pub fn get(&self, key: &FlowKey, now: u64) -> Option<FlowView> {
        self.index
            .get(key)
            .map(|&i| self.cols.view(i as usize, now, self.cfg.idle_ns))
    }

    /// Per-second history points for `duration_s` seconds ending at `now`, grouped by
    /// `interval_s` (counters summed, rates averaged).
    #[must_use]
    pub fn history(&self, now: u64, duration_s: u64, interval_s: u64) -> Vec<HistoryPoint> {
        let t = self.capture_totals();
        self.series.history(
            now,
            duration_s,
            interval_s,
            t.kernel_drops + t.backlog_dropped_records,
            capture_errors(&t),
        )
    }

    /// Bytes and packets of the latest complete second before `now`.
    #[must_use]
    pub fn last_second(&self, now: u64) -> (u64, u64) {
        self.series.last_second(now)
    }

    /// Protocol breakdown over the last `minutes` minutes.
    #[must_use]
    pub fn protocols(&self, now: u64, minutes: u64) -> Vec<ProtocolShare> {
        self.series.protocols(now, minutes)
    }

    /// Top talkers by host IP (either endpoint, D-20) over a window of `minutes`
    /// (one of [`WINDOWS_MINUTES`]), with the number of stored flows of each talker seen
    /// in the window and its `flows_each` biggest such flows.
    #[must_use]
    pub fn top_talkers(
        &self,
        now: u64,
        minutes: u64,
        limit: usize,
        flows_each: usize,
    ) -> (Vec<TalkerRow>, u64) {
        let (mut rows, total) = self.series.top_talkers(minutes, limit);
        let window_start = now.saturating_sub(minutes * 60 * NS);
        self.talker_flows(&mut rows, window_start, now, flows_each);
        (rows, total)
    }
}

fn capture_errors(s: &CaptureStats) -> u64 {
    s.ip_invalid_frames + s.truncated_frames + s.table_rejects
}

#[cfg(test)]
mod tests;
