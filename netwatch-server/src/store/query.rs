//! Flow queries: filters combined with AND (D-22), server-side sorting and pagination.
//!
//! A query scans the flag column and only the columns its filters use, counts every match
//! (for `total_count`) and keeps the `offset + limit` best matches in a bounded heap, so
//! nothing sorts the whole table. Ties are broken by slot id, which is stable while the
//! flows stay stored, so pages do not overlap.

use super::{FlowStatus, FlowView, Store, TalkerRow, F_INIT_B, F_LIVE, F_V6};
use ipnet::IpNet;
use std::collections::BinaryHeap;
use std::net::IpAddr;

/// Sort keys of `/flows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    /// Total bytes.
    Bytes,
    /// Total packets.
    Packets,
    /// `last - first`.
    Duration,
    /// First packet.
    FirstSeen,
    /// Latest packet (the default).
    #[default]
    LastSeen,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Smallest first.
    Asc,
    /// Biggest first (the default).
    #[default]
    Desc,
}

/// Status filter (one status).
pub type StatusFilter = FlowStatus;

/// A `/flows` query.
#[derive(Debug, Clone, Default)]
pub struct FlowQuery {
    /// Initiator address (D-19) inside this network.
    pub src: Option<IpNet>,
    /// Responder address inside this network.
    pub dst: Option<IpNet>,
    /// Either endpoint inside this network (top-talker drill-down, D-20).
    pub host: Option<IpNet>,
    /// IP protocol number.
    pub proto: Option<u8>,
    /// Port on either side.
    pub port: Option<u16>,
    /// Flows active at some moment at or after this time (ns).
    pub time_start: Option<u64>,
    /// Flows active at some moment at or before this time (ns).
    pub time_end: Option<u64>,
    /// Status at `now`.
    pub status: Option<StatusFilter>,
    /// Sort key.
    pub sort_by: SortBy,
    /// Sort direction.
    pub order: SortOrder,
    /// Page size (the API allows 1..=1000; `usize::MAX` for exports).
    pub limit: usize,
    /// Matches skipped.
    pub offset: usize,
}

/// One page of results.
#[derive(Debug, Clone, Default)]
pub struct FlowPage {
    /// The flows of the page, in order.
    pub flows: Vec<FlowView>,
    /// Every match.
    pub total: usize,
}

#[derive(Debug, Clone, Copy)]
enum AddrMatch {
    V4 { net: u32, mask: u32 },
    V6(ipnet::Ipv6Net),
}

impl AddrMatch {
    fn new(n: IpNet) -> AddrMatch {
        match n {
            IpNet::V4(v) => AddrMatch::V4 {
                net: u32::from(v.network()),
                mask: u32::from(v.netmask()),
            },
            IpNet::V6(v) => AddrMatch::V6(v.trunc()),
        }
    }
}

/// Heap size above which matches are collected and selected instead.
const HEAP_MAX: usize = 1 << 16;

impl Store {
    #[inline]
    fn matches(
        &self,
        i: usize,
        q: &FlowQuery,
        src: Option<AddrMatch>,
        dst: Option<AddrMatch>,
        now: u64,
    ) -> bool {
        let c = &self.cols;
        let f = c.flags[i];
        if f & F_LIVE == 0 {
            return false;
        }
        if let Some(p) = q.proto {
            if c.proto[i] != p {
                return false;
            }
        }
        if let Some(p) = q.port {
            if c.port_a[i] != p && c.port_b[i] != p {
                return false;
            }
        }
        if let Some(t) = q.time_start {
            if c.last[i] < t {
                return false;
            }
        }
        if let Some(t) = q.time_end {
            if c.first[i] > t {
                return false;
            }
        }
        let init_b = f & F_INIT_B != 0;
        for (m, want_src) in [(src, true), (dst, false)] {
            let Some(m) = m else { continue };
            // src = the initiator's side; dst = the other side.
            let use_b = init_b == want_src;
            let ok = match m {
                AddrMatch::V4 { net, mask } => {
                    f & F_V6 == 0 && (if use_b { c.b4[i] } else { c.a4[i] }) & mask == net
                }
                AddrMatch::V6(n) => {
                    f & F_V6 != 0 && {
                        let k = &c.key[i];
                        match if use_b { k.addr_b } else { k.addr_a } {
                            IpAddr::V6(a) => n.contains(&a),
                            IpAddr::V4(_) => false,
                        }
                    }
                }
            };
            if !ok {
                return false;
            }
        }
        if let Some(h) = q.host {
            let k = &c.key[i];
            if !h.contains(&k.addr_a) && !h.contains(&k.addr_b) {
                return false;
            }
        }
        if let Some(s) = q.status {
            if c.status(i, now, self.cfg.idle_ns) != s {
                return false;
            }
        }
        true
    }

    #[inline]
    fn rank(&self, i: usize, q: &FlowQuery) -> u128 {
        let c = &self.cols;
        let v = match q.sort_by {
            SortBy::Bytes => c.bytes[i],
            SortBy::Packets => c.packets[i],
            SortBy::Duration => c.last[i].saturating_sub(c.first[i]),
            SortBy::FirstSeen => c.first[i],
            SortBy::LastSeen => c.last[i],
        };
        let v = match q.order {
            SortOrder::Asc => v,
            SortOrder::Desc => u64::MAX - v,
        };
        (u128::from(v) << 32) | (i as u128)
    }

    /// Runs a query at `now` (the status filter and the returned statuses use it).
    #[must_use]
    pub fn query(&self, q: &FlowQuery, now: u64) -> FlowPage {
        let src = q.src.map(AddrMatch::new);
        let dst = q.dst.map(AddrMatch::new);
        let want = q.offset.saturating_add(q.limit);
        let n = self.cols.len();
        let mut total = 0usize;
        let ranks: Vec<u128> = if want <= HEAP_MAX {
            let mut heap: BinaryHeap<u128> = BinaryHeap::with_capacity(want.min(n) + 1);
            for i in 0..n {
                if !self.matches(i, q, src, dst, now) {
                    continue;
                }
                total += 1;
                if want == 0 {
                    continue;
                }
                let r = self.rank(i, q);
                if heap.len() < want {
                    heap.push(r);
                } else if heap.peek().is_some_and(|&top| r < top) {
                    heap.pop();
                    heap.push(r);
                }
            }
            heap.into_sorted_vec()
        } else {
            let mut all = Vec::new();
            for i in 0..n {
                if self.matches(i, q, src, dst, now) {
                    all.push(self.rank(i, q));
                }
            }
            total = all.len();
            if want < all.len() {
                all.select_nth_unstable(want);
                all.truncate(want);
            }
            all.sort_unstable();
            all
        };
        let flows = ranks
            .iter()
            .skip(q.offset)
            .map(|&r| {
                self.cols
                    .view((r & 0xffff_ffff) as usize, now, self.cfg.idle_ns)
            })
            .collect();
        FlowPage { flows, total }
    }

    /// Fills `flow_count` and `flows` of top-talker rows: one scan over the flows seen since
    /// `window_start`, with a 64 Ki-bit filter on the addresses' low 16 bits in front of the
    /// exact comparison.
    pub(super) fn talker_flows(
        &self,
        rows: &mut [TalkerRow],
        window_start: u64,
        now: u64,
        flows_each: usize,
    ) {
        if rows.is_empty() {
            return;
        }
        fn low16(a: &IpAddr) -> usize {
            match a {
                IpAddr::V4(v) => usize::from(u16::from_be_bytes([v.octets()[2], v.octets()[3]])),
                IpAddr::V6(v) => usize::from(u16::from_be_bytes([v.octets()[14], v.octets()[15]])),
            }
        }
        let mut bits = vec![0u64; 1024];
        for r in rows.iter() {
            let b = low16(&r.addr);
            bits[b / 64] |= 1 << (b % 64);
        }
        let hit = |b: usize| bits[b / 64] & (1 << (b % 64)) != 0;
        let mut best: Vec<Vec<(u64, u32)>> = vec![Vec::new(); rows.len()];
        let c = &self.cols;
        for i in 0..c.len() {
            let f = c.flags[i];
            if f & F_LIVE == 0 || c.last[i] < window_start {
                continue;
            }
            let (la, lb) = if f & F_V6 == 0 {
                ((c.a4[i] & 0xffff) as usize, (c.b4[i] & 0xffff) as usize)
            } else {
                (low16(&c.key[i].addr_a), low16(&c.key[i].addr_b))
            };
            if !hit(la) && !hit(lb) {
                continue;
            }
            let k = &c.key[i];
            for (ri, row) in rows.iter_mut().enumerate() {
                if row.addr == k.addr_a || row.addr == k.addr_b {
                    row.flow_count += 1;
                    let list = &mut best[ri];
                    let entry = (c.bytes[i], i as u32);
                    if list.len() < flows_each {
                        list.push(entry);
                    } else if let Some(min_pos) = (0..list.len()).min_by_key(|&j| list[j]) {
                        if list[min_pos] < entry {
                            list[min_pos] = entry;
                        }
                    }
                }
            }
        }
        for (row, mut list) in rows.iter_mut().zip(best) {
            list.sort_unstable_by(|a, b| b.cmp(a));
            row.flows = list
                .into_iter()
                .map(|(_, i)| self.cols.view(i as usize, now, self.cfg.idle_ns))
                .collect();
        }
    }
}
