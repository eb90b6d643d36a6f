//! Flow queries: filters combined with AND (D-22), server-side sorting and pagination.
//!
//! A query scans the flag column and only the columns its filters use, counts every match
//! (for `total_count`) and keeps the `offset + limit` best matches in a bounded buffer, so
//! nothing sorts the whole table. Ties are broken by slot id, which is stable while the
//! flows stay stored, so pages do not overlap.

use super::{FlowStatus, FlowView, Store, TalkerRow, F_INIT_B, F_LIVE, F_V6};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

/// Sort keys of `/flows`: every column of the flow table.
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
    /// Initiator address (IPv4 as its IPv4-mapped IPv6 value, so before global IPv6).
    SrcIp,
    /// Responder address.
    DstIp,
    /// Initiator port.
    SrcPort,
    /// Responder port.
    DstPort,
    /// IP protocol number.
    Protocol,
    /// Status at `now` (active, idle, closed).
    Status,
}

impl SortBy {
    /// Every key with its API name (`sort_by=`), the default last.
    pub const NAMES: [(&'static str, SortBy); 11] = [
        ("bytes", SortBy::Bytes),
        ("packets", SortBy::Packets),
        ("duration", SortBy::Duration),
        ("first_seen", SortBy::FirstSeen),
        ("src_ip", SortBy::SrcIp),
        ("dst_ip", SortBy::DstIp),
        ("src_port", SortBy::SrcPort),
        ("dst_port", SortBy::DstPort),
        ("protocol", SortBy::Protocol),
        ("status", SortBy::Status),
        ("last_seen", SortBy::LastSeen),
    ];
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
    /// One port on either side, as `(p, p)` (`port=`).
    pub port: Option<(u16, u16)>,
    /// A port of either side inside this inclusive range (`port_min=`, `port_max=`); both
    /// port filters apply when both are given.
    pub port_range: Option<(u16, u16)>,
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

/// Candidate buffer size for big pages.
const HEAP_MAX: usize = 1 << 16;

/// Keeps the `want` smallest values offered. Values below the current threshold go into a
/// buffer; when it reaches `cap`, `select_nth` keeps the best `want` and tightens the
/// threshold. Linear in the offers whatever their order (a heap is not: flows arrive in time
/// order, so a `last_seen desc` scan would push every row).
struct Best<T> {
    buf: Vec<T>,
    want: usize,
    cap: usize,
    /// Offers at or above this are rejected (starts at the largest value of `T`).
    threshold: T,
}

impl<T: Ord + Copy> Best<T> {
    /// `want` >= 1; `cap` is raised to at least `want + 1`; `max` is the largest `T`.
    fn new(want: usize, cap: usize, max: T) -> Self {
        let cap = cap.max(want.saturating_add(1));
        Best {
            // Grows past this only for exports (`want` beyond the buffer cap).
            buf: Vec::with_capacity(cap.min(2 * HEAP_MAX)),
            want,
            cap,
            threshold: max,
        }
    }

    #[inline(always)]
    fn offer(&mut self, v: T) {
        if v >= self.threshold {
            return;
        }
        self.buf.push(v);
        if self.buf.len() >= self.cap {
            self.buf.select_nth_unstable(self.want - 1);
            self.buf.truncate(self.want);
            self.threshold = self.buf[self.want - 1];
        }
    }

    /// The best `want` (fewer when fewer were offered), sorted.
    fn into_sorted(mut self) -> Vec<T> {
        if self.buf.len() > self.want {
            self.buf.select_nth_unstable(self.want - 1);
            self.buf.truncate(self.want);
        }
        self.buf.sort_unstable();
        self.buf
    }
}

impl Store {
    #[inline(always)]
    fn matches(
        &self,
        i: usize,
        q: &FlowQuery,
        src: &Option<AddrMatch>,
        dst: &Option<AddrMatch>,
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
        // `p - lo <= hi - lo` (wrapping): one comparison per side for `lo <= p <= hi`; a
        // range with `lo > hi` is empty.
        // (Two `if let`s: a loop over the two options here made a 1 M-flow scan 2x slower.)
        if let Some((lo, hi)) = q.port {
            let w = hi.wrapping_sub(lo);
            if hi < lo || (c.port_a[i].wrapping_sub(lo) > w && c.port_b[i].wrapping_sub(lo) > w) {
                return false;
            }
        }
        if let Some((lo, hi)) = q.port_range {
            let w = hi.wrapping_sub(lo);
            if hi < lo || (c.port_a[i].wrapping_sub(lo) > w && c.port_b[i].wrapping_sub(lo) > w) {
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
        if src.is_some() || dst.is_some() {
            let init_b = f & F_INIT_B != 0;
            // src = the initiator's side (side B when F_INIT_B), dst = the other side.
            if let Some(m) = &src {
                if !self.addr_matches(i, f, m, init_b) {
                    return false;
                }
            }
            if let Some(m) = &dst {
                if !self.addr_matches(i, f, m, !init_b) {
                    return false;
                }
            }
        }
        if let Some(h) = q.host {
            // Either endpoint (top-talker drill-down).
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

    #[inline(always)]
    fn addr_matches(&self, i: usize, f: u8, m: &AddrMatch, side_b: bool) -> bool {
        let c = &self.cols;
        match m {
            AddrMatch::V4 { net, mask } => {
                f & F_V6 == 0 && (if side_b { c.b4[i] } else { c.a4[i] }) & mask == *net
            }
            AddrMatch::V6(n) => {
                f & F_V6 != 0
                    && match if side_b {
                        c.key[i].addr_b
                    } else {
                        c.key[i].addr_a
                    } {
                        IpAddr::V6(a) => n.contains(&a),
                        IpAddr::V4(_) => false,
                    }
            }
        }
    }

    /// The sort value of slot `i` for every key but the addresses (which need 128 bits),
    /// reversed for `desc`, packed with the slot id as `value << 32 | slot`.
    #[inline(always)]
    fn rank_packed(&self, i: usize, q: &FlowQuery, now: u64) -> u128 {
        let c = &self.cols;
        let src_b = c.flags[i] & F_INIT_B != 0;
        let v: u64 = match q.sort_by {
            SortBy::Bytes => c.bytes[i],
            SortBy::Packets => c.packets[i],
            SortBy::Duration => c.last[i].saturating_sub(c.first[i]),
            SortBy::FirstSeen => c.first[i],
            SortBy::LastSeen => c.last[i],
            SortBy::SrcPort => u64::from(if src_b { c.port_b[i] } else { c.port_a[i] }),
            SortBy::DstPort => u64::from(if src_b { c.port_a[i] } else { c.port_b[i] }),
            SortBy::Protocol => u64::from(c.proto[i]),
            SortBy::Status => match c.status(i, now, self.cfg.idle_ns) {
                FlowStatus::Active => 0,
                FlowStatus::Idle => 1,
                FlowStatus::Closed => 2,
            },
            SortBy::SrcIp | SortBy::DstIp => 0,
        };
        let v = match q.order {
            SortOrder::Asc => v,
            SortOrder::Desc => u64::MAX - v,
        };
        (u128::from(v) << 32) | (i as u128)
    }

    /// The sort position of slot `i` for `src_ip`/`dst_ip`: the address as a 128-bit
    /// number (IPv4 as its IPv4-mapped IPv6 address), reversed for `desc`, then the slot.
    #[inline(always)]
    fn rank_addr(&self, i: usize, q: &FlowQuery) -> (u128, u32) {
        let c = &self.cols;
        let init_b = c.flags[i] & F_INIT_B != 0;
        let side_b = if q.sort_by == SortBy::SrcIp {
            init_b
        } else {
            !init_b
        };
        let v = if c.flags[i] & F_V6 == 0 {
            u128::from(Ipv4Addr::from(if side_b { c.b4[i] } else { c.a4[i] }).to_ipv6_mapped())
        } else {
            let k = &c.key[i];
            match if side_b { k.addr_b } else { k.addr_a } {
                IpAddr::V6(a) => u128::from(a),
                IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
            }
        };
        let v = match q.order {
            SortOrder::Asc => v,
            SortOrder::Desc => u128::MAX - v,
        };
        (v, i as u32)
    }

    /// The page of a query without filters and with a numeric sort key (`None` for the
    /// other keys): one tight loop over the flag column and the sort column(s) only, ranks
    /// packed as `key << 32 | slot`.
    fn top_unfiltered(&self, q: &FlowQuery, want: usize) -> Option<Vec<u32>> {
        fn topk(
            flags: &[u8],
            a: &[u64],
            b: Option<&[u64]>,
            desc: bool,
            want: usize,
            rev: bool,
        ) -> Vec<u32> {
            let mut best = Best::new(want, want.saturating_mul(2).max(4096), u128::MAX);
            let mut visit = |i: usize| {
                if flags[i] & F_LIVE == 0 {
                    return;
                }
                let v = match b {
                    None => a[i],
                    Some(b) => a[i].saturating_sub(b[i]),
                };
                let v = if desc { u64::MAX - v } else { v };
                best.offer((u128::from(v) << 32) | (i as u128));
            };
            if rev {
                (0..flags.len()).rev().for_each(&mut visit);
            } else {
                (0..flags.len()).for_each(&mut visit);
            }
            best.into_sorted()
                .into_iter()
                .map(|r| (r & 0xffff_ffff) as u32)
                .collect()
        }
        let c = &self.cols;
        let n = c.len();
        let flags = &c.flags[..n];
        let desc = q.order == SortOrder::Desc;
        let rev = desc && matches!(q.sort_by, SortBy::LastSeen | SortBy::FirstSeen);
        Some(match q.sort_by {
            SortBy::Bytes => topk(flags, &c.bytes[..n], None, desc, want, rev),
            SortBy::Packets => topk(flags, &c.packets[..n], None, desc, want, rev),
            SortBy::FirstSeen => topk(flags, &c.first[..n], None, desc, want, rev),
            SortBy::LastSeen => topk(flags, &c.last[..n], None, desc, want, rev),
            SortBy::Duration => topk(flags, &c.last[..n], Some(&c.first[..n]), desc, want, rev),
            SortBy::SrcIp
            | SortBy::DstIp
            | SortBy::SrcPort
            | SortBy::DstPort
            | SortBy::Protocol
            | SortBy::Status => return None,
        })
    }

    /// Slots that may match, from one tight loop over the column of the most selective
    /// cheap filter (a superset: `matches` decides); `None` when the query has no such
    /// filter and every slot must be visited.
    fn prefilter(
        &self,
        q: &FlowQuery,
        src: &Option<AddrMatch>,
        dst: &Option<AddrMatch>,
    ) -> Option<Vec<u32>> {
        let c = &self.cols;
        let n = c.len();
        let flags = &c.flags[..n];
        /// The live slots passing `pred`, unless a sample says more than half pass (then
        /// visiting every slot is cheaper than building the list).
        fn collect(flags: &[u8], pred: impl Fn(usize) -> bool) -> Option<Vec<u32>> {
            let n = flags.len();
            let step = (n / 2048).max(1);
            let sampled = (0..n).step_by(step).count();
            let hits = (0..n).step_by(step).filter(|&i| pred(i)).count();
            if hits * 2 > sampled {
                return None;
            }
            let mut ids = Vec::with_capacity(n * hits / sampled.max(1) + 64);
            for (i, f) in flags.iter().enumerate() {
                if f & F_LIVE != 0 && pred(i) {
                    ids.push(i as u32);
                }
            }
            Some(ids)
        }
        let (a4, b4) = (&c.a4[..n], &c.b4[..n]);
        let v4 = |m: &Option<AddrMatch>| match m {
            Some(AddrMatch::V4 { net, mask }) => Some((*net, *mask)),
            _ => None,
        };
        if let Some((net, mask)) = v4(src).or_else(|| v4(dst)) {
            collect(flags, |i| {
                flags[i] & F_V6 == 0 && ((a4[i] & mask) == net || (b4[i] & mask) == net)
            })
        } else if let Some((lo, hi)) = q.port.or(q.port_range) {
            let (pa, pb) = (&c.port_a[..n], &c.port_b[..n]);
            collect(flags, |i| {
                (lo..=hi).contains(&pa[i]) || (lo..=hi).contains(&pb[i])
            })
        } else if let Some(p) = q.proto {
            let pr = &c.proto[..n];
            collect(flags, |i| pr[i] == p)
        } else if let Some(t) = q.time_start {
            let last = &c.last[..n];
            collect(flags, |i| last[i] >= t)
        } else if let Some(t) = q.time_end {
            let first = &c.first[..n];
            collect(flags, |i| first[i] <= t)
        } else {
            None
        }
    }

    /// Runs a query at `now` (the status filter and the returned statuses use it).
    #[must_use]
    pub fn query(&self, q: &FlowQuery, now: u64) -> FlowPage {
        let (slots, total) = self.ranked(q, now);
        let mut flows = Vec::new();
        self.for_each_ranked(&slots, q.offset, now, |f| flows.push(*f));
        FlowPage { flows, total }
    }

    /// The slots of the best `offset + limit` matches, in order, and the number of matches.
    fn ranked(&self, q: &FlowQuery, now: u64) -> (Vec<u32>, usize) {
        let unfiltered = q.src.is_none()
            && q.dst.is_none()
            && q.host.is_none()
            && q.proto.is_none()
            && q.port.is_none()
            && q.port_range.is_none()
            && q.time_start.is_none()
            && q.time_end.is_none()
            && q.status.is_none();
        let want = q.offset.saturating_add(q.limit);
        if unfiltered && want > 0 && want <= HEAP_MAX {
            if let Some(slots) = self.top_unfiltered(q, want) {
                return (slots, self.live);
            }
        }
        if want == 0 {
            let src = q.src.map(AddrMatch::new);
            let dst = q.dst.map(AddrMatch::new);
            let total = (0..self.cols.len())
                .filter(|&i| self.matches(i, q, &src, &dst, now))
                .count();
            return (Vec::new(), total);
        }
        if matches!(q.sort_by, SortBy::SrcIp | SortBy::DstIp) {
            let (best, total) = self.best_matches(q, now, want, (u128::MAX, u32::MAX), |i| {
                self.rank_addr(i, q)
            });
            (best.into_iter().map(|(_, i)| i).collect(), total)
        } else {
            let (best, total) =
                self.best_matches(q, now, want, u128::MAX, |i| self.rank_packed(i, q, now));
            let slots = best.into_iter().map(|r| (r & 0xffff_ffff) as u32).collect();
            (slots, total)
        }
    }

    /// The `want` smallest ranks of the matches, sorted, and the number of matches.
    fn best_matches<T: Ord + Copy>(
        &self,
        q: &FlowQuery,
        now: u64,
        want: usize,
        max: T,
        rank: impl Fn(usize) -> T,
    ) -> (Vec<T>, usize) {
        let src = &q.src.map(AddrMatch::new);
        let dst = &q.dst.map(AddrMatch::new);
        let n = self.cols.len();
        let cap = want
            .saturating_mul(2)
            .clamp(4096, HEAP_MAX.max(want.saturating_mul(2)));
        let mut best = Best::new(want, cap.min(n + 1), max);
        let mut total = 0usize;
        // Slots are mostly in arrival (time) order: scanning newest first for a descending
        // time sort fills the buffer with the winners early, so the threshold rejects almost
        // everything after that. The result does not depend on the direction (ties break by
        // slot id).
        let newest_first =
            q.order == SortOrder::Desc && matches!(q.sort_by, SortBy::LastSeen | SortBy::FirstSeen);
        let mut visit = |i: usize| {
            if !self.matches(i, q, src, dst, now) {
                return;
            }
            total += 1;
            best.offer(rank(i));
        };
        match self.prefilter(q, src, dst) {
            Some(ids) if newest_first => ids.iter().rev().for_each(|&i| visit(i as usize)),
            Some(ids) => ids.iter().for_each(|&i| visit(i as usize)),
            None if newest_first => (0..n).rev().for_each(&mut visit),
            None => (0..n).for_each(&mut visit),
        }
        (best.into_sorted(), total)
    }

    /// Runs a query and hands each flow of the page to `f` in order, without collecting
    /// them (the CSV export of every flow); returns the number of matches.
    pub fn query_each(&self, q: &FlowQuery, now: u64, f: impl FnMut(&FlowView)) -> usize {
        let (slots, total) = self.ranked(q, now);
        self.for_each_ranked(&slots, q.offset, now, f);
        total
    }

    fn for_each_ranked(
        &self,
        slots: &[u32],
        offset: usize,
        now: u64,
        mut f: impl FnMut(&FlowView),
    ) {
        for &i in slots.iter().skip(offset) {
            f(&self.cols.view(i as usize, now, self.cfg.idle_ns));
        }
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
        let index: HashMap<IpAddr, usize> =
            rows.iter().enumerate().map(|(i, r)| (r.addr, i)).collect();
        let mut v4: Vec<(u32, usize)> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match r.addr {
                IpAddr::V4(a) => Some((u32::from(a), i)),
                IpAddr::V6(_) => None,
            })
            .collect();
        v4.sort_unstable();
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
            // Which rows this flow belongs to: IPv4 through a sorted table of the talkers'
            // addresses (no hashing), IPv6 through the key.
            let mut found = [usize::MAX; 2];
            if f & F_V6 == 0 {
                let (a, b) = (c.a4[i], c.b4[i]);
                if let Ok(p) = v4.binary_search_by_key(&a, |e| e.0) {
                    found[0] = v4[p].1;
                }
                if b != a {
                    if let Ok(p) = v4.binary_search_by_key(&b, |e| e.0) {
                        found[1] = v4[p].1;
                    }
                }
            } else {
                let k = &c.key[i];
                found[0] = index.get(&k.addr_a).copied().unwrap_or(usize::MAX);
                if k.addr_b != k.addr_a {
                    found[1] = index.get(&k.addr_b).copied().unwrap_or(usize::MAX);
                }
            }
            for ri in found {
                if ri == usize::MAX {
                    continue;
                }
                rows[ri].flow_count += 1;
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
        for (row, mut list) in rows.iter_mut().zip(best) {
            list.sort_unstable_by(|a, b| b.cmp(a));
            row.flows = list
                .into_iter()
                .map(|(_, i)| self.cols.view(i as usize, now, self.cfg.idle_ns))
                .collect();
        }
    }
}
