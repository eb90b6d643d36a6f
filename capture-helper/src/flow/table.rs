//! A fixed-capacity bidirectional flow table.
//!
//! # Structure
//!
//! * `entries`: a `Vec<Entry>` whose capacity is reserved at construction and never
//!   exceeded, plus a free list of indices (also pre-sized). No allocation per packet.
//! * `slots`: an open-addressing index (linear probing, backward-shift deletion, so no
//!   tombstones) of `2^k` words `hash tag << 32 | entry index + 1`. It starts small and
//!   doubles (rehashing every flow) when the flows would fill more than half of it, up to
//!   `2^k >= 2 * capacity` slots; so the load factor stays <= 50 % and a probe ends quickly,
//!   the index stays about as small as the flows it holds (cache-resident for 100k flows,
//!   where a 1M-flow index would miss the cache on nearly every lookup), and it is
//!   allocated at most `log2(capacity / 4096)` times over the table's life, never in steady
//!   state.
//! * Four intrusive doubly linked lists threaded through the entries (u32 links, O(1)
//!   moves): `open` and `closed` in order of the last packet (so their heads are the flows
//!   idle longest), `start` in order of the current record's start (active timeout), and
//!   `dirty` (flows changed since the last drain).
//!
//! The hash is three seeded folded multiplies over the key's five 64-bit words (the same
//! family as foldhash/ahash, written out here so it inlines into the packet loop): two
//! independent ones over the address words, one over their results and the ports word. The
//! seeds are random per table so crafted traffic cannot aim at one probe chain.
//!
//! # Time
//!
//! Nothing here reads a clock. [`FlowTable::observe`] takes the packet timestamp (`ts_ns`,
//! for first/last seen) and `now_ns` (for timeouts); [`FlowTable::expire`] takes `now_ns`.
//! Lists are kept in order of `now_ns`, which the caller keeps monotonic (live: the clock;
//! offline: the capture timestamps, which may step back a little in real files: a flow is
//! then expired a little late, never early or twice).
//!
//! # Life of a flow
//!
//! A flow is created by its first packet and ends (one final record with an
//! [`EndReason`]) when it is idle for `idle_timeout`, when TCP has closed (FIN in both
//! directions, or RST) and `close_linger` has passed without a new SYN (the last ACK of a
//! close still counts in the same flow), when it is evicted from a full table, or at
//! shutdown. After `active_timeout` a long flow's record ends with `ActiveTimeout` and the
//! flow continues in the table under a new record (same key and initiator).
//!
//! # Full table
//!
//! A new flow in a full table first takes the place of the closed flow idle longest
//! (reaped early, with its own FIN/RST end reason; not counted as an eviction), else of the
//! open flow idle longest (ended with `Evicted`, counted in `evictions`). Ended records
//! wait in a buffer until the next drain; if that buffer already holds `capacity` records,
//! evicting would lose data, so the new flow's packet is rejected instead (counted in
//! `rejects`). DoS note: one `expire` call does work proportional to the flows it ends,
//! at most the capacity.

use super::key::RawKey;
use netwatch_protocol::{DirCounters, EndReason, FlowRecord, Side};

/// TCP flag bits.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

const NIL: u32 = u32::MAX;

/// Slots of a new table's index (32 KiB); it grows with the flows (see the module docs).
const INITIAL_SLOTS: usize = 4096;

/// Configuration of a [`FlowTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableConfig {
    /// Maximum number of flows held at once (memory is reserved for it up front).
    pub capacity: usize,
    /// A flow with no packet for this long ends with `IdleTimeout` (0 = never).
    pub idle_timeout_ns: u64,
    /// A record older than this ends with `ActiveTimeout`; the flow continues (0 = never).
    pub active_timeout_ns: u64,
    /// How long a TCP flow closed by FIN/RST stays to collect the last ACKs.
    pub close_linger_ns: u64,
    /// An open flow moves to the "most recently seen" end of the idle order at most once
    /// per this interval (0 = on every packet). Moving costs two random memory accesses
    /// (the list neighbours), so a busy flow should not pay it per packet; the price is
    /// that idle expiry may be late and eviction's "idle longest" may be off by at most
    /// this much.
    pub recency_granularity_ns: u64,
}

impl TableConfig {
    /// Default capacity: 1,000,000 flows (the seeds' `NETWATCH_MAX_FLOWS`).
    pub const DEFAULT_CAPACITY: usize = 1_000_000;
    /// Default idle timeout: 30 s (the server marks a flow idle after 10 s of quiet, so
    /// the helper must not end it before that).
    pub const DEFAULT_IDLE_TIMEOUT_NS: u64 = 30_000_000_000;
    /// Default active timeout: 300 s.
    pub const DEFAULT_ACTIVE_TIMEOUT_NS: u64 = 300_000_000_000;
    /// Default close linger: 2 s.
    pub const DEFAULT_CLOSE_LINGER_NS: u64 = 2_000_000_000;
    /// Default recency granularity: 1 s.
    pub const DEFAULT_RECENCY_GRANULARITY_NS: u64 = 1_000_000_000;
    /// Largest capacity accepted (the index stores u32 entry numbers).
    pub const MAX_CAPACITY: usize = 1 << 30;
}

impl Default for TableConfig {
    fn default() -> Self {
        Self {
            capacity: Self::DEFAULT_CAPACITY,
            idle_timeout_ns: Self::DEFAULT_IDLE_TIMEOUT_NS,
            active_timeout_ns: Self::DEFAULT_ACTIVE_TIMEOUT_NS,
            close_linger_ns: Self::DEFAULT_CLOSE_LINGER_NS,
            recency_granularity_ns: Self::DEFAULT_RECENCY_GRANULARITY_NS,
        }
    }
}

/// What the table reports about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableCounters {
    /// Flows in the table now.
    pub occupancy: u64,
    /// Capacity.
    pub capacity: u64,
    /// Open flows pushed out of a full table, cumulative.
    pub evictions: u64,
    /// Packets of new flows that could not be stored, cumulative.
    pub rejects: u64,
}

/// One drained record: the delta of one flow since the previous drain, in the compact key,
/// with the IP-layer byte counts the offline CSV needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndedRecord {
    /// Flow key.
    pub key: RawKey,
    /// Initiator side.
    pub initiator: Side,
    /// First packet of the record (not of the delta), ns.
    pub first_ns: u64,
    /// Latest packet, ns.
    pub last_ns: u64,
    /// Delta counters sent by side A (flags: union over the record so far).
    pub ab: DirCounters,
    /// Delta counters sent by side B.
    pub ba: DirCounters,
    /// Delta of the IP-layer bytes (IPv4 total length / IPv6 40 + payload) per side.
    pub ip_bytes: [u64; 2],
    /// Set when the record has ended.
    pub end: Option<EndReason>,
}

impl EndedRecord {
    /// The wire record.
    #[must_use]
    pub fn to_record(&self) -> FlowRecord {
        FlowRecord {
            key: self.key.to_flow_key(),
            initiator: self.initiator,
            first_ns: self.first_ns,
            last_ns: self.last_ns,
            ab: self.ab,
            ba: self.ba,
            end: self.end,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Closed(EndReason),
}

// List ids (index into Entry::links).
const L_RECENCY: usize = 0; // `open` or `closed`, by state
const L_START: usize = 1; // open flows only
const L_DIRTY: usize = 2;

/// One flow. `repr(C, align(64))` with the fields ordered by use: every packet touches only
/// the first two cache lines (key and state; counters and times), the third (links, record
/// start, first packet) only when the flow moves in a list or starts a record.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Entry {
    // Line 1: lookup and per-packet state.
    key: RawKey,
    initiator: Side,
    state: State,
    fin_sides: u8,
    syn_seen: bool,
    in_record: bool,
    /// The record continues an earlier one (active timeout): keep its initiator.
    continued: bool,
    dirty: bool,
    flags: [u8; 2],
    seen_ns: u64,
    // Line 2: per-packet counters and times.
    packets: [u64; 2],
    bytes: [u64; 2],
    ip_bytes: [u64; 2],
    last_ns: u64,
    /// When the entry was last put at the tail of its recency list.
    queued_ns: u64,
    // Line 3: rarely touched.
    first_ns: u64,
    start_ns: u64,
    tag: u32,
    /// (prev, next) per list.
    links: [[u32; 2]; 3],
}

const _: () = assert!(std::mem::offset_of!(Entry, packets) == 64);
const _: () = assert!(std::mem::offset_of!(Entry, first_ns) == 128);
const _: () = assert!(std::mem::size_of::<Entry>() == 192);

impl Entry {
    fn new(key: RawKey, tag: u32) -> Self {
        Entry {
            key,
            tag,
            initiator: Side::A,
            state: State::Open,
            fin_sides: 0,
            syn_seen: false,
            in_record: false,
            continued: false,
            dirty: false,
            flags: [0; 2],
            first_ns: 0,
            last_ns: 0,
            seen_ns: 0,
            queued_ns: 0,
            start_ns: 0,
            packets: [0; 2],
            bytes: [0; 2],
            ip_bytes: [0; 2],
            links: [[NIL; 2]; 3],
        }
    }

    /// Counts one packet of the current record (which holds packets already): times,
    /// counters of its direction, last seen.
    #[inline(always)]
    fn count(&mut self, obs: &Observation, now_ns: u64) {
        let d = obs.side as usize;
        if obs.ts_ns >= self.last_ns {
            self.last_ns = obs.ts_ns;
        } else if obs.ts_ns < self.first_ns {
            // Out of order (rare): only then is the third cache line read.
            self.first_ns = obs.ts_ns;
        }
        self.packets[d] += 1;
        self.bytes[d] += obs.wire_len;
        self.ip_bytes[d] += obs.ip_len;
        self.seen_ns = now_ns;
    }

    /// Whether a packet seen at `now_ns` moves the flow to the tail of its recency list:
    /// always when closed, at most once per `granularity` when open (see
    /// `TableConfig::recency_granularity_ns`).
    #[inline(always)]
    fn requeue_due(&self, now_ns: u64, granularity: u64) -> bool {
        match self.state {
            State::Open => now_ns.saturating_sub(self.queued_ns) >= granularity,
            State::Closed(_) => true,
        }
    }

    fn reset_record(&mut self) {
        self.state = State::Open;
        self.fin_sides = 0;
        self.syn_seen = false;
        self.in_record = false;
        self.flags = [0; 2];
        self.packets = [0; 2];
        self.bytes = [0; 2];
        self.ip_bytes = [0; 2];
    }

    fn delta(&self, end: Option<EndReason>) -> EndedRecord {
        EndedRecord {
            key: self.key,
            initiator: self.initiator,
            first_ns: self.first_ns,
            last_ns: self.last_ns,
            ab: DirCounters {
                packets: self.packets[0],
                bytes: self.bytes[0],
                tcp_flags: self.flags[0],
            },
            ba: DirCounters {
                packets: self.packets[1],
                bytes: self.bytes[1],
                tcp_flags: self.flags[1],
            },
            ip_bytes: self.ip_bytes,
            end,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
    };
}

fn push_back(entries: &mut [Entry], list: &mut List, lid: usize, i: u32) {
    entries[i as usize].links[lid] = [list.tail, NIL];
    if list.tail == NIL {
        list.head = i;
    } else {
        entries[list.tail as usize].links[lid][1] = i;
    }
    list.tail = i;
}

fn unlink(entries: &mut [Entry], list: &mut List, lid: usize, i: u32) {
    let [prev, next] = entries[i as usize].links[lid];
    if prev == NIL {
        list.head = next;
    } else {
        entries[prev as usize].links[lid][1] = next;
    }
    if next == NIL {
        list.tail = prev;
    } else {
        entries[next as usize].links[lid][0] = prev;
    }
    entries[i as usize].links[lid] = [NIL; 2];
}

/// Per-packet facts the table needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// Which side sent the packet.
    pub side: Side,
    /// Bytes on the wire.
    pub wire_len: u64,
    /// IP-layer length.
    pub ip_len: u64,
    /// TCP flags (0 when not TCP).
    pub tcp_flags: u8,
    /// Whether `tcp_flags` are meaningful (the packet is TCP with its flags captured).
    pub is_tcp: bool,
    /// Packet timestamp, ns.
    pub ts_ns: u64,
}

/// The flow table. See the module documentation.
#[derive(Debug)]
pub struct FlowTable {
    cfg: TableConfig,
    /// Per-table random keys of the index hash.
    seed: [u64; 4],
    mask: usize,
    /// Number of slots the index may grow to (a power of two, >= 2 * capacity).
    max_slots: usize,
    slots: Vec<u64>,
    entries: Vec<Entry>,
    free: Vec<u32>,
    live: usize,
    open: List,
    closed: List,
    start: List,
    dirty: List,
    ended: Vec<EndedRecord>,
    evictions: u64,
    rejects: u64,
}

/// Folded multiply: the 128-bit product's halves xor-ed (the mixing step of the index
/// hash; also used by offline mode's merge map).
#[inline]
pub(crate) fn fold_mul(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

impl FlowTable {
    /// A table with the capacity and timeouts of `cfg` (capacity clamped to
    /// `1..=MAX_CAPACITY`). All memory the table will ever use for flows is reserved here
    /// (the index is zeroed lazily by the allocator, entries are written as flows arrive).
    #[must_use]
    pub fn new(cfg: TableConfig) -> Self {
        let capacity = cfg.capacity.clamp(1, TableConfig::MAX_CAPACITY);
        let cfg = TableConfig { capacity, ..cfg };
        let max_slots = (capacity * 2).next_power_of_two().max(16);
        let nslots = max_slots.min(INITIAL_SLOTS);
        let seed = {
            use std::hash::{BuildHasher, Hasher};
            let rs = std::collections::hash_map::RandomState::new();
            let mut seeds = [0u64; 4];
            for (i, s) in (0u64..).zip(seeds.iter_mut()) {
                let mut h = rs.build_hasher();
                h.write_u64(0x6e65_7477_6174_6368 ^ i);
                *s = h.finish();
            }
            seeds
        };
        FlowTable {
            cfg,
            seed,
            mask: nslots - 1,
            max_slots,
            slots: vec![0; nslots],
            entries: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            live: 0,
            open: List::EMPTY,
            closed: List::EMPTY,
            start: List::EMPTY,
            dirty: List::EMPTY,
            ended: Vec::with_capacity(capacity.min(65_536)),
            evictions: 0,
            rejects: 0,
        }
    }

    /// The configuration in force (capacity after clamping).
    #[must_use]
    pub fn config(&self) -> TableConfig {
        self.cfg
    }

    /// Occupancy, capacity, evictions and rejects.
    #[must_use]
    pub fn counters(&self) -> TableCounters {
        TableCounters {
            occupancy: self.live as u64,
            capacity: self.cfg.capacity as u64,
            evictions: self.evictions,
            rejects: self.rejects,
        }
    }

    /// The index hash of `key` (seeded per table): two independent folded multiplies of
    /// the four address words mixed with the per-table keys, then one over their results
    /// and the ports/protocol word. Two multiplies deep rather than five in a chain, all
    /// in registers.
    #[inline(always)]
    #[must_use]
    pub fn tag(&self, key: &RawKey) -> u32 {
        self.tag_of_words(key.words())
    }

    /// [`FlowTable::tag`] of the key whose [`RawKey::words`] are `w`.
    #[inline(always)]
    #[must_use]
    pub fn tag_of_words(&self, w: [u64; 5]) -> u32 {
        let [w0, w1, w2, w3, tail] = w;
        let s = &self.seed;
        let a = fold_mul(w0 ^ s[0], w1 ^ s[1]);
        let b = fold_mul(w2 ^ s[2], w3 ^ s[3]);
        let h = fold_mul(a ^ tail, b ^ 0x9e37_79b9_7f4a_7c15);
        (h >> 32) as u32 ^ h as u32
    }

    #[inline]
    fn find(&self, key: &RawKey, tag: u32) -> Option<u32> {
        let mut pos = tag as usize & self.mask;
        loop {
            let s = self.slots[pos];
            if s == 0 {
                return None;
            }
            if (s >> 32) as u32 == tag {
                let i = (s as u32).wrapping_sub(1);
                if self.entries[i as usize].key == *key {
                    return Some(i);
                }
            }
            pos = (pos + 1) & self.mask;
        }
    }

    /// Hints the CPU to load the home slot of `tag` in the index (a batch of lookups can
    /// issue these first, so that their cache misses overlap). No effect on the contents.
    #[inline]
    pub fn prefetch_slot(&self, tag: u32) {
        if let Some(s) = self.slots.get(tag as usize & self.mask) {
            crate::sys::prefetch::prefetch_read(s, 8);
        }
    }

    /// Hints the CPU to load the entry of the first slot of `tag`'s probe run whose hash
    /// matches (its key and counter lines), if one is found within a few slots. Only a
    /// guess (the table may change before the packet is counted); no effect on the contents.
    #[inline]
    pub fn prefetch_entry(&self, tag: u32) {
        let mut pos = tag as usize & self.mask;
        for _ in 0..4 {
            let Some(&s) = self.slots.get(pos) else {
                return;
            };
            if s == 0 {
                return;
            }
            if (s >> 32) as u32 == tag {
                if let Some(e) = self.entries.get((s as u32).wrapping_sub(1) as usize) {
                    crate::sys::prefetch::prefetch_read(e, 128);
                }
                return;
            }
            pos = (pos + 1) & self.mask;
        }
    }

    /// Doubles the index (while it is below its maximum) and re-inserts every flow.
    #[cold]
    #[inline(never)]
    fn grow_index(&mut self) {
        let nslots = (self.slots.len() * 2).min(self.max_slots);
        let old = std::mem::replace(&mut self.slots, vec![0; nslots]);
        self.mask = nslots - 1;
        for s in old {
            if s != 0 {
                let mut pos = (s >> 32) as usize & self.mask;
                while self.slots[pos] != 0 {
                    pos = (pos + 1) & self.mask;
                }
                self.slots[pos] = s;
            }
        }
    }

    fn insert_slot(&mut self, tag: u32, i: u32) {
        if (self.live + 1) * 2 > self.slots.len() && self.slots.len() < self.max_slots {
            self.grow_index();
        }
        let mut pos = tag as usize & self.mask;
        while self.slots[pos] != 0 {
            pos = (pos + 1) & self.mask;
        }
        self.slots[pos] = (u64::from(tag) << 32) | u64::from(i + 1);
    }

    fn remove_slot(&mut self, tag: u32, i: u32) {
        let want = (u64::from(tag) << 32) | u64::from(i + 1);
        let mut pos = tag as usize & self.mask;
        loop {
            let s = self.slots[pos];
            if s == want {
                break;
            }
            if s == 0 {
                debug_assert!(false, "flow missing from the index");
                return;
            }
            pos = (pos + 1) & self.mask;
        }
        // Backward-shift deletion: pull later members of the probe run into the hole.
        let mut hole = pos;
        let mut j = pos;
        loop {
            j = (j + 1) & self.mask;
            let s = self.slots[j];
            if s == 0 {
                break;
            }
            let home = (s >> 32) as usize & self.mask;
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = 0;
    }

    fn recency_list(&mut self, state: State) -> &mut List {
        match state {
            State::Open => &mut self.open,
            State::Closed(_) => &mut self.closed,
        }
    }

    fn mark_dirty(&mut self, i: u32) {
        if !self.entries[i as usize].dirty {
            self.entries[i as usize].dirty = true;
            push_back(&mut self.entries, &mut self.dirty, L_DIRTY, i);
        }
    }

    fn clear_dirty(&mut self, i: u32) {
        if self.entries[i as usize].dirty {
            self.entries[i as usize].dirty = false;
            unlink(&mut self.entries, &mut self.dirty, L_DIRTY, i);
        }
    }

    /// Ends the current record of entry `i` (if it holds packets) and starts an empty one
    /// in the same place (open, in the `start` list from `now_ns`).
    fn restart(&mut self, i: u32, reason: EndReason, now_ns: u64) {
        let e = self.entries[i as usize];
        if e.in_record {
            self.ended.push(e.delta(Some(reason)));
        }
        self.clear_dirty(i);
        if let State::Closed(_) = e.state {
            unlink(&mut self.entries, &mut self.closed, L_RECENCY, i);
            push_back(&mut self.entries, &mut self.open, L_RECENCY, i);
            self.entries[i as usize].queued_ns = now_ns;
        } else {
            unlink(&mut self.entries, &mut self.start, L_START, i);
        }
        let entry = &mut self.entries[i as usize];
        entry.reset_record();
        entry.continued = reason == EndReason::ActiveTimeout;
        entry.start_ns = now_ns;
        push_back(&mut self.entries, &mut self.start, L_START, i);
    }

    /// Ends entry `i` with `reason` and removes it.
    fn remove(&mut self, i: u32, reason: EndReason) {
        let e = self.entries[i as usize];
        if e.in_record {
            self.ended.push(e.delta(Some(reason)));
        }
        self.clear_dirty(i);
        let list = self.recency_list(e.state);
        let mut l = *list;
        unlink(&mut self.entries, &mut l, L_RECENCY, i);
        *self.recency_list(e.state) = l;
        if e.state == State::Open {
            unlink(&mut self.entries, &mut self.start, L_START, i);
        }
        self.remove_slot(e.tag, i);
        self.free.push(i);
        self.live -= 1;
    }

    /// A free entry for a new flow, evicting if the table is full. `None`: rejected.
    fn allocate(&mut self, key: RawKey, tag: u32) -> Option<u32> {
        let i = if let Some(i) = self.free.pop() {
            self.entries[i as usize] = Entry::new(key, tag);
            i
        } else if self.entries.len() < self.cfg.capacity {
            let i = u32::try_from(self.entries.len()).ok()?;
            self.entries.push(Entry::new(key, tag));
            i
        } else {
            if self.ended.len() >= self.cfg.capacity {
                return None;
            }
            if self.closed.head != NIL {
                let v = self.closed.head;
                let State::Closed(reason) = self.entries[v as usize].state else {
                    return None;
                };
                self.remove(v, reason);
            } else if self.open.head != NIL {
                let v = self.open.head;
                if self.entries[v as usize].in_record {
                    self.evictions += 1;
                }
                self.remove(v, EndReason::Evicted);
            } else {
                return None;
            }
            let i = self.free.pop()?;
            self.entries[i as usize] = Entry::new(key, tag);
            i
        };
        self.insert_slot(tag, i);
        self.live += 1;
        push_back(&mut self.entries, &mut self.open, L_RECENCY, i);
        push_back(&mut self.entries, &mut self.start, L_START, i);
        Some(i)
    }

    /// Counts one packet of flow `key` sent by `obs.side`. Returns false when the packet's
    /// new flow was rejected (full table, see the module documentation).
    #[inline]
    pub fn observe(&mut self, key: &RawKey, obs: &Observation, now_ns: u64) -> bool {
        let tag = self.tag(key);
        self.observe_tagged(key, tag, obs, now_ns)
    }

    /// [`FlowTable::observe`] with the key's hash already computed: `tag` must be
    /// [`FlowTable::tag`]`(key)`.
    ///
    /// Inlined for the common packet: a known open flow, already in a record and dirty,
    /// not due to move in its recency list, and no SYN/FIN/RST: only its counters and
    /// times change. Everything else (new flows, state changes, list moves) goes through
    /// the out-of-line [`FlowTable::observe_found`] / [`FlowTable::observe_new`], which
    /// handle every case (the fast path is the same computation for the packets it takes).
    #[inline(always)]
    pub fn observe_tagged(
        &mut self,
        key: &RawKey,
        tag: u32,
        obs: &Observation,
        now_ns: u64,
    ) -> bool {
        debug_assert_eq!(tag, self.tag(key));
        let Some(i) = self.find(key, tag) else {
            return self.observe_new(key, tag, obs, now_ns);
        };
        let granularity = self.cfg.recency_granularity_ns;
        let Some(e) = self.entries.get_mut(i as usize) else {
            return false;
        };
        let quiet = !obs.is_tcp || obs.tcp_flags & (SYN | FIN | RST) == 0;
        // A closed flow is always due to requeue, so this also sends it the slow way.
        if !e.in_record || !e.dirty || !quiet || e.requeue_due(now_ns, granularity) {
            return self.observe_found(i, obs, now_ns);
        }
        e.count(obs, now_ns);
        if obs.is_tcp {
            e.flags[obs.side as usize] |= obs.tcp_flags;
        }
        true
    }

    /// [`FlowTable::observe_tagged`] for a key not in the table: a new flow (or a reject).
    #[inline(never)]
    fn observe_new(&mut self, key: &RawKey, tag: u32, obs: &Observation, now_ns: u64) -> bool {
        match self.allocate(*key, tag) {
            Some(i) => {
                self.entries[i as usize].start_ns = now_ns;
                self.entries[i as usize].queued_ns = now_ns;
                self.observe_found(i, obs, now_ns)
            }
            None => {
                self.rejects += 1;
                false
            }
        }
    }

    /// [`FlowTable::observe_tagged`] for the flow in entry `i`, every case.
    #[inline(never)]
    fn observe_found(&mut self, i: u32, obs: &Observation, now_ns: u64) -> bool {
        let e = &self.entries[i as usize];
        if matches!(e.state, State::Closed(_)) && obs.is_tcp && obs.tcp_flags & (SYN | ACK) == SYN {
            // A new connection on the same ports after a close.
            let State::Closed(reason) = e.state else {
                return false;
            };
            self.restart(i, reason, now_ns);
        }
        let d = obs.side as usize;
        let e = &mut self.entries[i as usize];
        if !e.in_record {
            e.in_record = true;
            if !e.continued {
                e.initiator = obs.side;
            }
            e.first_ns = obs.ts_ns;
            e.last_ns = obs.ts_ns;
        }
        e.count(obs, now_ns);
        let mut close = None;
        if obs.is_tcp {
            let f = obs.tcp_flags;
            e.flags[d] |= f;
            if f & (SYN | ACK) == SYN && !e.syn_seen {
                e.syn_seen = true;
                e.initiator = obs.side;
            }
            if e.state == State::Open {
                if f & RST != 0 {
                    close = Some(EndReason::Rst);
                } else if f & FIN != 0 {
                    e.fin_sides |= 1 << d;
                    if e.fin_sides == 3 {
                        close = Some(EndReason::Fin);
                    }
                }
            }
        }
        let state = e.state;
        // Move to the tail of its recency list (most recently seen).
        if e.requeue_due(now_ns, self.cfg.recency_granularity_ns) {
            e.queued_ns = now_ns;
            let mut l = *self.recency_list(state);
            if l.tail != i {
                unlink(&mut self.entries, &mut l, L_RECENCY, i);
                push_back(&mut self.entries, &mut l, L_RECENCY, i);
                *self.recency_list(state) = l;
            }
        }
        if let Some(reason) = close {
            self.entries[i as usize].queued_ns = now_ns;
            unlink(&mut self.entries, &mut self.open, L_RECENCY, i);
            unlink(&mut self.entries, &mut self.start, L_START, i);
            self.entries[i as usize].state = State::Closed(reason);
            push_back(&mut self.entries, &mut self.closed, L_RECENCY, i);
        }
        self.mark_dirty(i);
        true
    }

    /// Ends the flows whose timeouts have passed at `now_ns`.
    pub fn expire(&mut self, now_ns: u64) {
        while self.closed.head != NIL {
            let i = self.closed.head;
            let e = &self.entries[i as usize];
            if e.seen_ns.saturating_add(self.cfg.close_linger_ns) > now_ns {
                break;
            }
            let State::Closed(reason) = e.state else {
                break;
            };
            self.remove(i, reason);
        }
        if self.cfg.idle_timeout_ns > 0 {
            // The list is in `queued_ns` order and `seen_ns - queued_ns` < granularity, so
            // stopping at a head that is not idle yet delays the flows behind it by less
            // than one granularity.
            while self.open.head != NIL {
                let e = &self.entries[self.open.head as usize];
                if e.seen_ns.saturating_add(self.cfg.idle_timeout_ns) > now_ns {
                    break;
                }
                self.remove(self.open.head, EndReason::IdleTimeout);
            }
        }
        if self.cfg.active_timeout_ns > 0 {
            while self.start.head != NIL {
                let i = self.start.head;
                if self.entries[i as usize]
                    .start_ns
                    .saturating_add(self.cfg.active_timeout_ns)
                    > now_ns
                {
                    break;
                }
                // restart() moves the entry to the tail with start = now, so this ends.
                self.restart(i, EndReason::ActiveTimeout, now_ns);
            }
        }
    }

    /// Ends every flow (closed ones with their FIN/RST reason, open ones with `reason`).
    pub fn end_all(&mut self, reason: EndReason) {
        while self.closed.head != NIL {
            let i = self.closed.head;
            let State::Closed(r) = self.entries[i as usize].state else {
                break;
            };
            self.remove(i, r);
        }
        while self.open.head != NIL {
            self.remove(self.open.head, reason);
        }
    }

    /// Hands every pending change to `f`: first the records that ended (in the order they
    /// ended), then the delta of every flow changed since the previous drain. Afterwards
    /// the deltas are zero and ended flows are forgotten. Allocates nothing.
    pub fn drain_with(&mut self, mut f: impl FnMut(&EndedRecord)) {
        for r in self.ended.drain(..) {
            f(&r);
        }
        while self.dirty.head != NIL {
            let i = self.dirty.head;
            // The walk follows links (each load waits for the one before): start the next
            // entry's lines on their way while this one is read and unlinked.
            let next = self.entries[i as usize].links[L_DIRTY][1];
            if let Some(n) = self.entries.get(next as usize) {
                crate::sys::prefetch::prefetch_read(n, std::mem::size_of::<Entry>());
            }
            let rec = self.entries[i as usize].delta(None);
            if rec.ab.packets + rec.ba.packets > 0 {
                f(&rec);
            }
            let e = &mut self.entries[i as usize];
            e.packets = [0; 2];
            e.bytes = [0; 2];
            e.ip_bytes = [0; 2];
            self.clear_dirty(i);
        }
    }

    /// Hands only the records that ended to `f` (and forgets them); the deltas of open
    /// flows stay for a later [`FlowTable::drain_with`]. Offline mode uses this to keep
    /// memory bounded without touching every open flow.
    pub fn drain_ended_with(&mut self, mut f: impl FnMut(&EndedRecord)) {
        for r in self.ended.drain(..) {
            f(&r);
        }
    }

    /// Number of ended records waiting for the next drain.
    #[must_use]
    pub fn pending_ended(&self) -> usize {
        self.ended.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8, port: u16) -> RawKey {
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        a[..4].copy_from_slice(&[10, 0, 0, n]);
        b[..4].copy_from_slice(&[10, 0, 1, 1]);
        RawKey {
            addr_a: a,
            addr_b: b,
            port_a: port,
            port_b: 80,
            vlan: 0,
            proto: 6,
            v6: 0,
        }
    }

    fn obs(side: Side, flags: u8, ts: u64) -> Observation {
        Observation {
            side,
            wire_len: 100,
            ip_len: 86,
            tcp_flags: flags,
            is_tcp: true,
            ts_ns: ts,
        }
    }

    fn drain(t: &mut FlowTable) -> Vec<EndedRecord> {
        let mut v = Vec::new();
        t.drain_with(|r| v.push(*r));
        v
    }

    fn cfg(capacity: usize) -> TableConfig {
        TableConfig {
            capacity,
            idle_timeout_ns: 30,
            active_timeout_ns: 100,
            close_linger_ns: 5,
            recency_granularity_ns: 0,
        }
    }

    #[test]
    fn coarse_recency_is_late_by_less_than_one_granularity() {
        let mut t = FlowTable::new(TableConfig {
            recency_granularity_ns: 10,
            ..cfg(4)
        });
        let (a, b) = (key(1, 1), key(2, 1));
        t.observe(&a, &obs(Side::A, ACK, 0), 0);
        t.observe(&b, &obs(Side::A, ACK, 1), 1);
        t.observe(&a, &obs(Side::A, ACK, 9), 9); // within the granularity: not requeued
        t.expire(31); // b is idle (1 + 30) but waits behind a (9 + 30)
        assert_eq!(t.counters().occupancy, 2);
        t.expire(39);
        assert_eq!(
            t.counters().occupancy,
            0,
            "both gone once a is idle, b late by 8 < 10"
        );
        let ends: Vec<_> = drain(&mut t).iter().map(|r| (r.key, r.end)).collect();
        assert_eq!(
            ends,
            [
                (a, Some(EndReason::IdleTimeout)),
                (b, Some(EndReason::IdleTimeout))
            ]
        );
        // A packet after the granularity requeues: the flow is then the most recent.
        t.observe(&a, &obs(Side::A, ACK, 100), 100);
        t.observe(&b, &obs(Side::A, ACK, 101), 101);
        t.observe(&a, &obs(Side::A, ACK, 111), 111);
        t.expire(131);
        let ends: Vec<_> = drain(&mut t)
            .iter()
            .filter(|r| r.end.is_some())
            .map(|r| r.key)
            .collect();
        assert_eq!(ends, [b]);
    }

    #[test]
    fn counts_both_directions_and_drains_deltas() {
        let mut t = FlowTable::new(cfg(4));
        let k = key(1, 1000);
        assert!(t.observe(&k, &obs(Side::B, ACK, 10), 10));
        assert!(t.observe(&k, &obs(Side::A, ACK, 12), 12));
        assert!(t.observe(&k, &obs(Side::A, ACK | 0x08, 11), 13));
        let d = drain(&mut t);
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].ab.packets, d[0].ba.packets, d[0].ab.bytes),
            (2, 1, 200)
        );
        assert_eq!(
            (d[0].first_ns, d[0].last_ns, d[0].initiator, d[0].end),
            (10, 12, Side::B, None)
        );
        assert_eq!(d[0].ab.tcp_flags, ACK | 0x08);
        assert!(drain(&mut t).is_empty(), "nothing changed since");
        assert!(t.observe(&k, &obs(Side::B, ACK, 20), 20));
        let d = drain(&mut t);
        assert_eq!(
            (
                d[0].ab.packets,
                d[0].ba.packets,
                d[0].first_ns,
                d[0].last_ns
            ),
            (0, 1, 10, 20)
        );
    }

    #[test]
    fn syn_sender_is_initiator() {
        let mut t = FlowTable::new(cfg(4));
        let k = key(1, 1000);
        t.observe(&k, &obs(Side::A, ACK, 1), 1);
        t.observe(&k, &obs(Side::B, SYN, 2), 2);
        t.observe(&k, &obs(Side::A, SYN | ACK, 3), 3);
        assert_eq!(drain(&mut t)[0].initiator, Side::B);
    }

    #[test]
    fn idle_timeout_is_exact() {
        let mut t = FlowTable::new(cfg(4));
        t.observe(&key(1, 1), &obs(Side::A, ACK, 0), 0);
        t.observe(&key(2, 1), &obs(Side::A, ACK, 10), 10);
        t.expire(29);
        assert_eq!(t.counters().occupancy, 2);
        t.expire(30);
        assert_eq!(t.counters().occupancy, 1);
        let d = drain(&mut t);
        assert_eq!(d[0].end, Some(EndReason::IdleTimeout));
        assert_eq!(d[0].key, key(1, 1));
        assert_eq!(d[1].end, None);
        t.expire(40);
        assert_eq!(t.counters().occupancy, 0);
    }

    #[test]
    fn fin_both_ways_closes_after_linger_and_keeps_last_ack() {
        let mut t = FlowTable::new(cfg(4));
        let k = key(1, 1);
        t.observe(&k, &obs(Side::A, SYN, 0), 0);
        t.observe(&k, &obs(Side::A, FIN | ACK, 1), 1);
        t.observe(&k, &obs(Side::B, FIN | ACK, 2), 2);
        t.observe(&k, &obs(Side::A, ACK, 3), 3);
        t.expire(7);
        assert_eq!(t.counters().occupancy, 1);
        t.expire(8);
        assert_eq!(t.counters().occupancy, 0);
        let d = drain(&mut t);
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].end, d[0].ab.packets, d[0].ba.packets),
            (Some(EndReason::Fin), 3, 1)
        );
    }

    #[test]
    fn rst_closes_and_new_syn_starts_a_new_record() {
        let mut t = FlowTable::new(cfg(4));
        let k = key(1, 1);
        t.observe(&k, &obs(Side::A, SYN, 0), 0);
        t.observe(&k, &obs(Side::B, RST | ACK, 1), 1);
        t.observe(&k, &obs(Side::B, SYN, 2), 2);
        let d = drain(&mut t);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].end, d[0].packets_total()), (Some(EndReason::Rst), 2));
        assert_eq!(
            (d[1].end, d[1].initiator, d[1].first_ns),
            (None, Side::B, 2)
        );
    }

    #[test]
    fn active_timeout_splits_records_and_keeps_the_flow() {
        let mut t = FlowTable::new(TableConfig {
            idle_timeout_ns: 1000,
            ..cfg(4)
        });
        let k = key(1, 1);
        t.observe(&k, &obs(Side::B, ACK, 0), 0);
        t.observe(&k, &obs(Side::A, ACK, 50), 50);
        t.expire(100);
        t.observe(&k, &obs(Side::A, ACK, 120), 120);
        let d = drain(&mut t);
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].end, d[0].packets_total(), d[0].last_ns),
            (Some(EndReason::ActiveTimeout), 2, 50)
        );
        assert_eq!(
            (d[1].end, d[1].first_ns, d[1].initiator),
            (None, 120, Side::B)
        );
        assert_eq!(t.counters().occupancy, 1);
    }

    #[test]
    fn full_table_evicts_idle_longest_then_rejects_when_backlog_full() {
        let mut t = FlowTable::new(TableConfig {
            capacity: 2,
            ..cfg(2)
        });
        t.observe(&key(1, 1), &obs(Side::A, ACK, 0), 0);
        t.observe(&key(2, 1), &obs(Side::A, ACK, 1), 1);
        t.observe(&key(1, 1), &obs(Side::A, ACK, 2), 2);
        assert!(t.observe(&key(3, 1), &obs(Side::A, ACK, 3), 3));
        assert_eq!(t.counters().evictions, 1);
        let d = drain(&mut t);
        assert_eq!((d[0].key, d[0].end), (key(2, 1), Some(EndReason::Evicted)));
        // Two more evictions fill the ended buffer (capacity 2) ...
        assert!(t.observe(&key(4, 1), &obs(Side::A, ACK, 4), 4));
        assert!(t.observe(&key(5, 1), &obs(Side::A, ACK, 5), 5));
        // ... so the next new flow is rejected rather than losing a record.
        assert!(!t.observe(&key(6, 1), &obs(Side::A, ACK, 6), 6));
        assert_eq!(t.counters().rejects, 1);
        assert_eq!(t.counters().evictions, 3);
        assert_eq!(drain(&mut t).len(), 4);
        assert!(t.observe(&key(6, 1), &obs(Side::A, ACK, 7), 7));
    }

    #[test]
    fn closed_flows_go_first_when_full_and_are_not_evictions() {
        let mut t = FlowTable::new(cfg(2));
        t.observe(&key(1, 1), &obs(Side::A, ACK, 0), 0);
        t.observe(&key(2, 1), &obs(Side::A, RST, 1), 1);
        t.observe(&key(3, 1), &obs(Side::A, ACK, 2), 2);
        assert_eq!(t.counters().evictions, 0);
        let d = drain(&mut t);
        assert_eq!((d[0].key, d[0].end), (key(2, 1), Some(EndReason::Rst)));
    }

    #[test]
    fn many_flows_churn_through_index() {
        let mut t = FlowTable::new(TableConfig {
            capacity: 64,
            ..cfg(64)
        });
        for round in 0..50u64 {
            for n in 0..64u16 {
                let k = key((n % 200) as u8, n + (round as u16 % 3) * 1000);
                assert!(t.observe(&k, &obs(Side::A, ACK, round), round));
            }
            let _ = drain(&mut t);
        }
        t.end_all(EndReason::Shutdown);
        let d = drain(&mut t);
        assert_eq!(t.counters().occupancy, 0);
        assert!(d.iter().all(|r| r.end.is_some()));
    }

    #[test]
    fn index_grows_with_the_flows_and_keeps_every_flow() {
        let mut t = FlowTable::new(TableConfig {
            idle_timeout_ns: 0,
            active_timeout_ns: 0,
            ..cfg(20_000)
        });
        assert_eq!(t.slots.len(), INITIAL_SLOTS);
        let k = |n: u16| {
            let mut k = key((n % 251) as u8, n);
            k.port_b = n / 251;
            k
        };
        for round in 0..2u64 {
            for n in 0..10_000u16 {
                assert!(t.observe(&k(n), &obs(Side::A, ACK, round), round));
            }
            assert_eq!(t.counters().occupancy, 10_000, "round {round}");
        }
        assert_eq!(t.slots.len(), 32_768);
        assert_eq!(t.max_slots, 65_536);
        let d = drain(&mut t);
        assert_eq!(d.len(), 10_000);
        assert!(d.iter().all(|r| r.ab.packets == 2));
        // Removal (backward shift) still finds every flow in the grown index.
        t.end_all(EndReason::Shutdown);
        assert_eq!(t.counters().occupancy, 0);
        assert!(t.slots.iter().all(|&s| s == 0));
    }

    impl EndedRecord {
        fn packets_total(&self) -> u64 {
            self.ab.packets + self.ba.packets
        }
    }
}
