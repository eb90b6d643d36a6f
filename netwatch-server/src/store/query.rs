//! Flow queries: filters combined with AND (D-22), server-side sorting and pagination.
//!
//! A query scans the flag column and only the columns its filters use, counts every match
//! (for `total_count`) and keeps the `offset + limit` best matches in a bounded buffer, so
//! nothing sorts the whole table. Ties are broken by slot id, which is stable while the
//! flows stay stored, so pages do not overlap.

use super::{FlowStatus, FlowView, Store, TalkerRow, F_INIT_B, F_LIVE, F_V6};
use ipnet::IpNet;
use std::collections::HashMap;
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

/// Candidate buffer size for big pages.
const HEAP_MAX: usize = 1 << 16;

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

    #[inline(always)]
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

    /// The page of a query without filters: one tight loop over the flag column and the
    /// sort column(s) only.
    fn top_unfiltered(&self, q: &FlowQuery, want: usize) -> Vec<u128> {
        fn topk(
            flags: &[u8],
            a: &[u64],
            b: Option<&[u64]>,
            desc: bool,
            want: usize,
            rev: bool,
        ) -> Vec<u128> {
            let cap = want.saturating_mul(2).max(4096);
            let mut buf: Vec<u128> = Vec::with_capacity(cap);
            let mut threshold = u128::MAX;
            let mut visit = |i: usize| {
                if flags[i] & F_LIVE == 0 {
                    return;
                }
                let v = match b {
                    None => a[i],
                    Some(b) => a[i].saturating_sub(b[i]),
                };
                let v = if desc { u64::MAX - v } else { v };
                let r = (u128::from(v) << 32) | (i as u128);
                if r < threshold {
                    buf.push(r);
                    if buf.len() >= cap {
                        buf.select_nth_unstable(want - 1);
                        buf.truncate(want);
                        threshold = buf[want - 1];
                    }
                }
            };
            if rev {
                (0..flags.len()).rev().for_each(&mut visit);
            } else {
                (0..flags.len()).for_each(&mut visit);
            }
            if buf.len() > want {
                buf.select_nth_unstable(want - 1);
                buf.truncate(want);
            }
            buf.sort_unstable();
            buf
        }
        let c = &self.cols;
        let n = c.len();
        let flags = &c.flags[..n];
        let desc = q.order == SortOrder::Desc;
        let rev = desc && matches!(q.sort_by, SortBy::LastSeen | SortBy::FirstSeen);
        match q.sort_by {
            SortBy::Bytes => topk(flags, &c.bytes[..n], None, desc, want, rev),
            SortBy::Packets => topk(flags, &c.packets[..n], None, desc, want, rev),
            SortBy::FirstSeen => topk(flags, &c.first[..n], None, desc, want, rev),
            SortBy::LastSeen => topk(flags, &c.last[..n], None, desc, want, rev),
            SortBy::Duration => topk(flags, &c.last[..n], Some(&c.first[..n]), desc, want, rev),
        }
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
        } else if let Some(p) = q.port {
            let (pa, pb) = (&c.port_a[..n], &c.port_b[..n]);
            collect(flags, |i| pa[i] == p || pb[i] == p)
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
        let (ranks, total) = self.ranked(q, now);
        let mut flows = Vec::new();
        self.for_each_ranked(&ranks, q.offset, now, |f| flows.push(*f));
        FlowPage { flows, total }
    }

    /// The ranks (sort key, slot) of the best `offset + limit` matches, sorted, and the
    /// number of matches.
    fn ranked(&self, q: &FlowQuery, now: u64) -> (Vec<u128>, usize) {
        let unfiltered = q.src.is_none()
            && q.dst.is_none()
            && q.host.is_none()
            && q.proto.is_none()
            && q.port.is_none()
            && q.time_start.is_none()
            && q.time_end.is_none()
            && q.status.is_none();
        let want = q.offset.saturating_add(q.limit);
        if unfiltered && want > 0 && want <= HEAP_MAX {
            return (self.top_unfiltered(q, want), self.live);
        }
        let src = q.src.map(AddrMatch::new);
        let dst = q.dst.map(AddrMatch::new);
        let n = self.cols.len();
        let mut total = 0usize;
        // Keep the `want` smallest ranks: candidates below the current threshold go into a
        // buffer; when it fills, select_nth keeps the best `want` and tightens the
        // threshold. Linear in the matches whatever their order (a heap is not: flows
        // arrive in time order, so a `last_seen desc` scan would push every row).
        let mut ranks: Vec<u128> = Vec::new();
        if want > 0 {
            let cap = want
                .saturating_mul(2)
                .clamp(4096, HEAP_MAX.max(want.saturating_mul(2)));
            let mut threshold = u128::MAX;
            let mut buf: Vec<u128> = Vec::with_capacity(cap.min(n + 1));
            // Slots are mostly in arrival (time) order: scanning newest first for a
            // descending time sort fills the buffer with the winners early, so the
            // threshold rejects almost everything after that. The result does not depend
            // on the direction (ties break by slot id).
            let newest_first = q.order == SortOrder::Desc
                && matches!(q.sort_by, SortBy::LastSeen | SortBy::FirstSeen);
            let mut visit = |i: usize| {
                if !self.matches(i, q, &src, &dst, now) {
                    return;
                }
                total += 1;
                let r = self.rank(i, q);
                if r < threshold {
                    buf.push(r);
                    if buf.len() >= cap {
                        buf.select_nth_unstable(want - 1);
                        buf.truncate(want);
                        threshold = buf[want - 1];
                    }
                }
            };
            match self.prefilter(q, &src, &dst) {
                Some(ids) if newest_first => ids.iter().rev().for_each(|&i| visit(i as usize)),
                Some(ids) => ids.iter().for_each(|&i| visit(i as usize)),
                None if newest_first => (0..n).rev().for_each(&mut visit),
                None => (0..n).for_each(&mut visit),
            }
            if buf.len() > want {
                buf.select_nth_unstable(want - 1);
                buf.truncate(want);
            }
            buf.sort_unstable();
            ranks = buf;
        } else {
            for i in 0..n {
                if self.matches(i, q, &src, &dst, now) {
                    total += 1;
                }
            }
        }
        (ranks, total)
    }

    /// Runs a query and hands each flow of the page to `f` in order, without collecting
    /// them (the CSV export of every flow); returns the number of matches.
    pub fn query_each(&self, q: &FlowQuery, now: u64, f: impl FnMut(&FlowView)) -> usize {
        let (ranks, total) = self.ranked(q, now);
        self.for_each_ranked(&ranks, q.offset, now, f);
        total
    }

    fn for_each_ranked(
        &self,
        ranks: &[u128],
        offset: usize,
        now: u64,
        mut f: impl FnMut(&FlowView),
    ) {
        for &r in ranks.iter().skip(offset) {
            f(&self
                .cols
                .view((r & 0xffff_ffff) as usize, now, self.cfg.idle_ns));
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
