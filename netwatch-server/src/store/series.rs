//! Time series: per-second totals (charts, `/metrics/history`) and per-minute buckets
//! (top talkers, protocol breakdown) over the retention window.
//!
//! A record's deltas are attributed to the second and minute of its `last_ns` (capture
//! time), clamped to the store clock when they lie in its future. Top talkers keep one
//! running host map per window ([`WINDOWS_MINUTES`]): a delta is added to every window
//! that covers its minute, and when the clock enters a new minute the bucket that leaves
//! a window is subtracted from it, so a query only ranks one map.

use super::NS;
use netwatch_protocol::FlowRecord;
use std::collections::HashMap;
use std::net::IpAddr;

/// Windows of the top-talker maps, minutes.
pub const WINDOWS_MINUTES: [u64; 3] = [5, 15, 60];

const MIN_NS: u64 = 60 * NS;

/// Bytes and packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Agg {
    /// Bytes.
    pub bytes: u64,
    /// Packets.
    pub packets: u64,
}

impl Agg {
    fn add(&mut self, b: u64, p: u64) {
        self.bytes = self.bytes.saturating_add(b);
        self.packets = self.packets.saturating_add(p);
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Second {
    sec: u64,
    bytes: u64,
    packets: u64,
    /// Bytes of TCP, UDP, ICMP (v4 and v6) and the rest.
    proto_bytes: [u64; 4],
    drops: u64,
    errors: u64,
    sampled: bool,
    cpu: f64,
    rss: u64,
    active: u64,
}

#[derive(Debug, Default)]
struct Minute {
    minute: u64,
    hosts: HashMap<IpAddr, Agg>,
    proto: Vec<Agg>,
}

/// One row of `/top-talkers` before the flow scan.
#[derive(Debug, Clone, PartialEq)]
pub struct TalkerRow {
    /// Host address.
    pub addr: IpAddr,
    /// Bytes sent plus received in the window.
    pub bytes: u64,
    /// Packets sent plus received in the window.
    pub packets: u64,
    /// Stored flows of this host seen in the window.
    pub flow_count: u64,
    /// Its biggest such flows (by total bytes).
    pub flows: Vec<super::FlowView>,
}

/// One protocol's share of a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProtocolShare {
    /// IP protocol number.
    pub proto: u8,
    /// Bytes and packets in the window.
    pub agg: Agg,
}

/// One point of `/metrics/history`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryPoint {
    /// End of the interval (exclusive), ns.
    pub end_ns: u64,
    /// Seconds in the interval.
    pub seconds: u64,
    /// Bytes in the interval.
    pub bytes: u64,
    /// Packets in the interval.
    pub packets: u64,
    /// TCP, UDP, ICMP, other bytes.
    pub proto_bytes: [u64; 4],
    /// Drops reported in the interval.
    pub drops: u64,
    /// Capture errors reported in the interval.
    pub errors: u64,
    /// Cumulative drops at the end of the interval.
    pub drops_total: u64,
    /// Cumulative capture errors at the end of the interval.
    pub errors_total: u64,
    /// Average CPU % of the samples in the interval (0 when none).
    pub cpu: f64,
    /// Average RSS of the samples in the interval.
    pub rss: u64,
    /// Active flows at the latest sample of the interval.
    pub active: u64,
}

#[derive(Debug)]
pub(super) struct Series {
    seconds: Vec<Second>,
    minutes: Vec<Minute>,
    windows: [HashMap<IpAddr, Agg>; 3],
    cur_min: u64,
    started: bool,
}

fn proto_class(p: u8) -> usize {
    match p {
        6 => 0,
        17 => 1,
        1 | 58 => 2,
        _ => 3,
    }
}

impl Series {
    pub(super) fn new(retention_s: u64) -> Series {
        let n_sec = usize::try_from(retention_s).unwrap_or(3600);
        let n_min = usize::try_from(retention_s.div_ceil(60))
            .unwrap_or(60)
            .max(60)
            + 1;
        let mut minutes = Vec::with_capacity(n_min);
        minutes.resize_with(n_min, || Minute {
            minute: u64::MAX,
            hosts: HashMap::new(),
            proto: Vec::new(),
        });
        Series {
            seconds: vec![
                Second {
                    sec: u64::MAX,
                    ..Second::default()
                };
                n_sec
            ],
            minutes,
            windows: [HashMap::new(), HashMap::new(), HashMap::new()],
            cur_min: 0,
            started: false,
        }
    }

    pub(super) fn retention_s(&self) -> u64 {
        self.seconds.len() as u64
    }

    pub(super) fn memory_estimate(&self) -> u64 {
        let hosts: usize = self
            .minutes
            .iter()
            .map(|m| m.hosts.capacity())
            .sum::<usize>()
            + self.windows.iter().map(HashMap::capacity).sum::<usize>();
        (self.seconds.len() * std::mem::size_of::<Second>()) as u64 + (hosts as u64) * 48
    }

    /// Moves the clock to `now`: buckets leaving a window are subtracted from it.
    pub(super) fn advance(&mut self, now: u64) {
        let m = now / MIN_NS;
        if !self.started {
            self.started = true;
            self.cur_min = m;
            return;
        }
        if m <= self.cur_min {
            return;
        }
        for (w, &len) in WINDOWS_MINUTES.iter().enumerate() {
            if m - self.cur_min >= len {
                self.windows[w].clear();
                continue;
            }
            // Minutes in the old window but not the new one: (cur - len, m - len].
            for leaving in (self.cur_min + 1)..=m {
                let Some(old) = leaving.checked_sub(len) else {
                    continue;
                };
                let slot = &self.minutes[(old % self.minutes.len() as u64) as usize];
                if slot.minute != old {
                    continue;
                }
                let map = &mut self.windows[w];
                for (addr, a) in &slot.hosts {
                    if let Some(e) = map.get_mut(addr) {
                        e.bytes = e.bytes.saturating_sub(a.bytes);
                        e.packets = e.packets.saturating_sub(a.packets);
                        if e.bytes == 0 && e.packets == 0 {
                            map.remove(addr);
                        }
                    }
                }
            }
        }
        self.cur_min = m;
    }

    /// Adds a record's deltas; false when it is too old for the series.
    pub(super) fn add_record(&mut self, r: &FlowRecord, now: u64) -> bool {
        let t = r.last_ns.min(now);
        let bytes = r.bytes();
        let packets = r.packets();
        if packets == 0 && bytes == 0 {
            return true;
        }
        let mut fresh = false;
        // Per second.
        let sec = t / NS;
        if sec + (self.seconds.len() as u64) > now / NS {
            let n = self.seconds.len() as u64;
            let s = &mut self.seconds[(sec % n) as usize];
            if s.sec != sec {
                *s = Second {
                    sec,
                    ..Second::default()
                };
            }
            s.bytes += bytes;
            s.packets += packets;
            s.proto_bytes[proto_class(r.key.proto)] += bytes;
            fresh = true;
        }
        // Per minute.
        let min = t / MIN_NS;
        let n = self.minutes.len() as u64;
        if min + n > self.cur_min {
            let b = &mut self.minutes[(min % n) as usize];
            if b.minute != min {
                b.minute = min;
                b.hosts.clear();
                b.proto.clear();
            }
            if b.proto.is_empty() {
                b.proto.resize(256, Agg::default());
            }
            b.proto[usize::from(r.key.proto)].add(bytes, packets);
            b.hosts.entry(r.key.addr_a).or_default().add(bytes, packets);
            if r.key.addr_b != r.key.addr_a {
                b.hosts.entry(r.key.addr_b).or_default().add(bytes, packets);
            }
            for (w, &len) in WINDOWS_MINUTES.iter().enumerate() {
                if min + len > self.cur_min {
                    let map = &mut self.windows[w];
                    map.entry(r.key.addr_a).or_default().add(bytes, packets);
                    if r.key.addr_b != r.key.addr_a {
                        map.entry(r.key.addr_b).or_default().add(bytes, packets);
                    }
                }
            }
            fresh = true;
        }
        fresh
    }

    pub(super) fn add_drops(&mut self, now: u64, drops: u64, errors: u64) {
        if drops == 0 && errors == 0 {
            return;
        }
        let s = self.second_mut(now / NS);
        s.drops += drops;
        s.errors += errors;
    }

    fn second_mut(&mut self, sec: u64) -> &mut Second {
        let n = self.seconds.len() as u64;
        let s = &mut self.seconds[(sec % n) as usize];
        if s.sec != sec {
            *s = Second {
                sec,
                ..Second::default()
            };
        }
        s
    }

    pub(super) fn sample_host(&mut self, now: u64, cpu: f64, rss: u64, active: u64) {
        let s = self.second_mut(now / NS);
        s.sampled = true;
        s.cpu = cpu;
        s.rss = rss;
        s.active = active;
    }

    fn second(&self, sec: u64) -> Option<&Second> {
        let n = self.seconds.len() as u64;
        let s = &self.seconds[(sec % n) as usize];
        (s.sec == sec).then_some(s)
    }

    pub(super) fn last_second(&self, now: u64) -> (u64, u64) {
        let sec = (now / NS).saturating_sub(1);
        self.second(sec).map_or((0, 0), |s| (s.bytes, s.packets))
    }

    /// Points covering the `duration_s` seconds up to and including the second of `now`,
    /// oldest first, each `interval_s` long (the first one may be shorter when the
    /// duration is not a multiple of the interval).
    pub(super) fn history(
        &self,
        now: u64,
        duration_s: u64,
        interval_s: u64,
        drops_now: u64,
        errors_now: u64,
    ) -> Vec<HistoryPoint> {
        let end_sec = now / NS; // inclusive
        let duration_s = duration_s.min(self.seconds.len() as u64).max(1);
        let interval_s = interval_s.max(1);
        let start_sec = (end_sec + 1).saturating_sub(duration_s);
        let mut points = Vec::new();
        let mut drops_after = 0u64;
        let mut errors_after = 0u64;
        // Walk backwards so cumulative totals can be derived from the current ones.
        let mut hi = end_sec + 1; // exclusive
        while hi > start_sec {
            let lo = hi.saturating_sub(interval_s).max(start_sec);
            let mut p = HistoryPoint {
                end_ns: hi * NS,
                seconds: hi - lo,
                bytes: 0,
                packets: 0,
                proto_bytes: [0; 4],
                drops: 0,
                errors: 0,
                drops_total: drops_now.saturating_sub(drops_after),
                errors_total: errors_now.saturating_sub(errors_after),
                cpu: 0.0,
                rss: 0,
                active: 0,
            };
            let mut samples = 0u64;
            let mut cpu_sum = 0.0;
            let mut rss_sum = 0u64;
            let mut latest_active = None;
            for sec in (lo..hi).rev() {
                if let Some(s) = self.second(sec) {
                    p.bytes += s.bytes;
                    p.packets += s.packets;
                    for (a, b) in p.proto_bytes.iter_mut().zip(s.proto_bytes) {
                        *a += b;
                    }
                    p.drops += s.drops;
                    p.errors += s.errors;
                    if s.sampled {
                        samples += 1;
                        cpu_sum += s.cpu;
                        rss_sum += s.rss;
                        latest_active.get_or_insert(s.active);
                    }
                }
            }
            if samples > 0 {
                p.cpu = cpu_sum / samples as f64;
                p.rss = rss_sum / samples;
            }
            p.active = latest_active.unwrap_or(0);
            drops_after += p.drops;
            errors_after += p.errors;
            points.push(p);
            hi = lo;
        }
        points.reverse();
        points
    }

    pub(super) fn protocols(&self, now: u64, minutes: u64) -> Vec<ProtocolShare> {
        let cur = now / MIN_NS;
        let mut sums = vec![Agg::default(); 256];
        let n = self.minutes.len() as u64;
        for m in (cur + 1).saturating_sub(minutes)..=cur {
            let b = &self.minutes[(m % n) as usize];
            if b.minute != m {
                continue;
            }
            for (s, a) in sums.iter_mut().zip(&b.proto) {
                s.add(a.bytes, a.packets);
            }
        }
        let mut out: Vec<ProtocolShare> = sums
            .into_iter()
            .enumerate()
            .filter(|(_, a)| a.packets > 0 || a.bytes > 0)
            .map(|(p, agg)| ProtocolShare {
                proto: u8::try_from(p).unwrap_or(u8::MAX),
                agg,
            })
            .collect();
        out.sort_by(|a, b| b.agg.bytes.cmp(&a.agg.bytes).then(a.proto.cmp(&b.proto)));
        out
    }

    /// The `limit` hosts with the most bytes in a window (ties: more packets, then the
    /// smaller address), and the window's total bytes (each byte counted once per flow).
    pub(super) fn top_talkers(&self, minutes: u64, limit: usize) -> (Vec<TalkerRow>, u64) {
        let w = WINDOWS_MINUTES
            .iter()
            .position(|&m| m == minutes)
            .unwrap_or(0);
        let map = &self.windows[w];
        let mut all: Vec<(&IpAddr, &Agg)> = map.iter().collect();
        let cmp = |a: &(&IpAddr, &Agg), b: &(&IpAddr, &Agg)| {
            b.1.bytes
                .cmp(&a.1.bytes)
                .then(b.1.packets.cmp(&a.1.packets))
                .then(a.0.cmp(b.0))
        };
        if limit < all.len() {
            all.select_nth_unstable_by(limit, cmp);
            all.truncate(limit);
        }
        all.sort_by(cmp);
        // Total traffic: every flow counted once, from the protocol sums of the window.
        let cur = self.cur_min;
        let n = self.minutes.len() as u64;
        let mut total = 0u64;
        for m in (cur + 1).saturating_sub(minutes)..=cur {
            let b = &self.minutes[(m % n) as usize];
            if b.minute == m {
                total += b.proto.iter().map(|a| a.bytes).sum::<u64>();
            }
        }
        let rows = all
            .into_iter()
            .map(|(addr, a)| TalkerRow {
                addr: *addr,
                bytes: a.bytes,
                packets: a.packets,
                flow_count: 0,
                flows: Vec::new(),
            })
            .collect();
        (rows, total)
    }
}
