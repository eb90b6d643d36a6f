//! Offline mode: `netwatch-capture --read FILE` without `--connect`.
//!
//! Reads every frame of a capture through the same [`Collector`] as live capture (the
//! capture timestamps are the clock), merges the records of each key (the oracle has no
//! timeouts, so a flow split by a timeout, a TCP close or an eviction is one row again),
//! and writes the flows sorted in the oracle's row order as CSV (the oracle's exact
//! columns and formatting) or JSON lines, plus a `key=value` accounting summary.
//!
//! The flow table's timeouts and capacity still apply while reading (so memory stays
//! bounded by the table plus one merged row per flow); expiry runs each time the capture
//! clock has advanced by one second (or half the shortest timeout, if shorter).

use crate::collector::{Batch, Collector};
use crate::flow::table::fold_mul;
use crate::flow::{EndedRecord, RawKey, TableConfig};
use crate::source::{FrameSource, PcapFileSource, SourceError, LINKTYPE_ETHERNET};
use netwatch_protocol::{MalformedKind, Side};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hash, Hasher};
use std::io::{self, Write};
use std::net::Ipv6Addr;
use std::path::PathBuf;
use thiserror::Error;

/// Header line of the CSV output (identical to `oracle.py`).
pub const CSV_HEADER: &str =
    "proto,addr_a,port_a,addr_b,port_b,vlan,packets_ab,bytes_ab,packets_ba,bytes_ba,first_ns,last_ns,ipbytes_ab,ipbytes_ba";

/// How often (capture time) the table's timeouts are run: every second, or more often
/// when a timeout is shorter (half the shortest one).
fn expire_interval(t: &TableConfig) -> u64 {
    [t.idle_timeout_ns, t.active_timeout_ns, t.close_linger_ns]
        .into_iter()
        .filter(|&x| x > 0)
        .map(|x| x / 2)
        .fold(1_000_000_000, u64::min)
        .max(1)
}

/// Output format of the flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// The oracle's CSV (header line, one row per flow).
    #[default]
    Csv,
    /// One JSON object per line.
    Json,
}

/// Where the accounting summary goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryTo {
    /// Standard error, after the flows.
    Stderr,
    /// Standard output, instead of the flows.
    Stdout,
}

/// A validated offline configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineConfig {
    /// The capture file (`-` = standard input).
    pub path: PathBuf,
    /// Flow output format.
    pub format: OutputFormat,
    /// Where the summary goes.
    pub summary: SummaryTo,
    /// Flow table settings.
    pub table: TableConfig,
}

/// Errors of offline mode.
#[derive(Debug, Error)]
pub enum OfflineError {
    /// The capture could not be read.
    #[error("{}", .path.display())]
    Source {
        /// The capture file.
        path: PathBuf,
        /// The cause.
        source: SourceError,
    },
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(#[from] io::Error),
}

/// Merged totals of one flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowTotals {
    /// Side that initiated the flow (from its first record).
    pub initiator: Side,
    /// Packets per side (A, B).
    pub packets: [u64; 2],
    /// Wire bytes per side.
    pub bytes: [u64; 2],
    /// IP-layer bytes per side.
    pub ip_bytes: [u64; 2],
    /// Union of TCP flags per side.
    pub tcp_flags: [u8; 2],
    /// First packet, ns.
    pub first_ns: u64,
    /// Last packet, ns.
    pub last_ns: u64,
}

/// The merge map's key: a [`RawKey`] hashed as its five 64-bit words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MergeKey(RawKey);

impl Hash for MergeKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        for w in self.0.words() {
            state.write_u64(w);
        }
    }
}

/// The merge map's hash: the flow table's seeded folded multiply (much cheaper than
/// SipHash for a 40-byte key; the random seed keeps crafted captures from aiming at one
/// bucket).
#[derive(Debug, Clone, Copy)]
struct FoldState(u64);

impl Default for FoldState {
    fn default() -> Self {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x6d65_7267_6520_6b65);
        FoldState(h.finish() | 1)
    }
}

impl BuildHasher for FoldState {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher(self.0)
    }
}

/// See [`FoldState`].
#[derive(Debug)]
struct FoldHasher(u64);

impl Hasher for FoldHasher {
    #[inline]
    fn write_u64(&mut self, w: u64) {
        self.0 = fold_mul(self.0 ^ w, 0x9e37_79b9_7f4a_7c15);
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut x = [0u8; 8];
            x[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(x));
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        fold_mul(self.0, 0xff51_afd7_ed55_8ccd)
    }
}

/// Merges drained records by key.
#[derive(Debug, Default)]
pub struct Merger {
    flows: HashMap<MergeKey, FlowTotals, FoldState>,
}

impl Merger {
    /// Makes room for `additional` more flows (avoids rehashing while adding them).
    pub fn reserve(&mut self, additional: usize) {
        self.flows.reserve(additional);
    }

    /// Adds one record.
    pub fn add(&mut self, r: &EndedRecord) {
        let t = self.flows.entry(MergeKey(r.key)).or_insert(FlowTotals {
            initiator: r.initiator,
            packets: [0; 2],
            bytes: [0; 2],
            ip_bytes: [0; 2],
            tcp_flags: [0; 2],
            first_ns: r.first_ns,
            last_ns: r.last_ns,
        });
        t.packets[0] += r.ab.packets;
        t.packets[1] += r.ba.packets;
        t.bytes[0] += r.ab.bytes;
        t.bytes[1] += r.ba.bytes;
        t.ip_bytes[0] += r.ip_bytes[0];
        t.ip_bytes[1] += r.ip_bytes[1];
        t.tcp_flags[0] |= r.ab.tcp_flags;
        t.tcp_flags[1] |= r.ba.tcp_flags;
        if r.first_ns < t.first_ns {
            t.first_ns = r.first_ns;
            t.initiator = r.initiator;
        }
        t.last_ns = t.last_ns.max(r.last_ns);
    }

    /// The flows in the oracle's row order.
    #[must_use]
    pub fn into_sorted(self) -> Vec<(RawKey, FlowTotals)> {
        let mut v: Vec<_> = self.flows.into_iter().map(|(k, t)| (k.0, t)).collect();
        v.sort_unstable_by_key(|f| f.0);
        v
    }
}

/// Everything offline mode learned from a capture.
#[derive(Debug)]
pub struct OfflineResult {
    /// Flows in row order.
    pub flows: Vec<(RawKey, FlowTotals)>,
    /// Frame accounting.
    pub stats: netwatch_protocol::CaptureStats,
    /// Extra counters for the summary.
    pub extra: crate::collector::Extra,
}

/// Reads every frame of `source` and returns the merged flows and the accounting.
///
/// # Errors
/// The source's error (corrupt or cut file, unsupported link type, I/O).
pub fn collect<S: FrameSource>(
    source: &mut S,
    table: TableConfig,
) -> Result<OfflineResult, SourceError> {
    if source.link_type() != LINKTYPE_ETHERNET {
        let lt = source.link_type();
        return Err(SourceError::UnsupportedLinkType {
            link_type: lt,
            name: crate::source::link_type_name(lt),
        });
    }
    let mut collector = Collector::new(table);
    let mut merger = Merger::default();
    let mut next_expire: Option<u64> = None;
    // Evictions from a full table pile up as ended records; move them out well before
    // their buffer (bounded by the capacity) is full, so that nothing is ever rejected.
    let drain_at = (table.capacity / 2).max(1);
    let every = expire_interval(&table);
    // Frames go through in batches (see `Batch`): the table sees the same calls in the
    // same order as frame by frame, and expiry and drains happen between the same frames.
    let mut batch = Batch::default();
    let mut after = |c: &mut Collector, now: u64| {
        if c.pending_ended() >= drain_at {
            c.drain_ended_with(|r| merger.add(r));
        }
        match next_expire {
            None => next_expire = Some(now.saturating_add(every)),
            Some(t) if now >= t => {
                c.expire(now);
                // Open flows keep accumulating in the table; only ended records move out.
                c.drain_ended_with(|r| merger.add(r));
                next_expire = Some(now.saturating_add(every));
            }
            Some(_) => {}
        }
    };
    while let Some(frame) = source.next()? {
        let now = frame.ts_ns;
        batch.push(&mut collector, &frame, now, &mut after);
    }
    batch.flush(&mut collector, &mut after);
    // Every open flow is about to arrive: size the map once instead of doubling it.
    merger.reserve(usize::try_from(collector.stats().table_occupancy).unwrap_or(0));
    collector.finish_with(|r| merger.add(r));
    Ok(OfflineResult {
        flows: merger.into_sorted(),
        stats: collector.stats(),
        extra: collector.extra(),
    })
}

/// Runs offline mode: reads `cfg.path`, writes flows and summary.
///
/// # Errors
/// [`OfflineError::Source`] for an unreadable or invalid capture (nothing is written to
/// `out` then), [`OfflineError::Output`] when writing fails.
pub fn run(
    cfg: &OfflineConfig,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<OfflineResult, OfflineError> {
    let wrap = |source| OfflineError::Source {
        path: cfg.path.clone(),
        source,
    };
    let result = if cfg.path.as_os_str() == "-" {
        let stdin = io::stdin().lock();
        let mut src = PcapFileSource::new(stdin).map_err(wrap)?;
        collect(&mut src, cfg.table).map_err(wrap)?
    } else {
        let mut src = PcapFileSource::open(&cfg.path).map_err(wrap)?;
        collect(&mut src, cfg.table).map_err(wrap)?
    };
    match cfg.summary {
        SummaryTo::Stdout => {
            out.write_all(summary_text(&result).as_bytes())?;
        }
        SummaryTo::Stderr => {
            write_flows(&result.flows, cfg.format, out)?;
            out.flush()?;
            err.write_all(summary_text(&result).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(result)
}

/// Writes the flows in `format`.
///
/// The lines are formatted by hand into one byte buffer (decimal and hexadecimal digits,
/// no `core::fmt` and no allocation per flow): with 100k flows, `write!` and per-address
/// `String`s used to cost about as many instructions as reading the 2M packets.
///
/// # Errors
/// I/O errors of `out`.
pub fn write_flows(
    flows: &[(RawKey, FlowTotals)],
    format: OutputFormat,
    out: &mut dyn Write,
) -> io::Result<()> {
    const FLUSH_AT: usize = 60 * 1024;
    let mut buf: Vec<u8> = Vec::with_capacity(FLUSH_AT + 1024);
    if format == OutputFormat::Csv {
        buf.extend_from_slice(CSV_HEADER.as_bytes());
        buf.push(b'\n');
    }
    for (k, t) in flows {
        let v6 = k.v6 != 0;
        match format {
            OutputFormat::Csv => {
                push_dec(&mut buf, u64::from(k.proto));
                buf.push(b',');
                push_addr(&mut buf, v6, &k.addr_a);
                buf.push(b',');
                push_dec(&mut buf, u64::from(k.port_a));
                buf.push(b',');
                push_addr(&mut buf, v6, &k.addr_b);
                for v in [
                    u64::from(k.port_b),
                    u64::from(k.vlan),
                    t.packets[0],
                    t.bytes[0],
                    t.packets[1],
                    t.bytes[1],
                    t.first_ns,
                    t.last_ns,
                    t.ip_bytes[0],
                    t.ip_bytes[1],
                ] {
                    buf.push(b',');
                    push_dec(&mut buf, v);
                }
                buf.push(b'\n');
            }
            OutputFormat::Json => {
                buf.extend_from_slice(b"{\"proto\":");
                push_dec(&mut buf, u64::from(k.proto));
                buf.extend_from_slice(b",\"addr_a\":\"");
                push_addr(&mut buf, v6, &k.addr_a);
                buf.extend_from_slice(b"\",\"port_a\":");
                push_dec(&mut buf, u64::from(k.port_a));
                buf.extend_from_slice(b",\"addr_b\":\"");
                push_addr(&mut buf, v6, &k.addr_b);
                buf.push(b'"');
                for (name, v) in [
                    (&b",\"port_b\":"[..], u64::from(k.port_b)),
                    (b",\"vlan\":", u64::from(k.vlan)),
                    (b",\"packets_ab\":", t.packets[0]),
                    (b",\"bytes_ab\":", t.bytes[0]),
                    (b",\"packets_ba\":", t.packets[1]),
                    (b",\"bytes_ba\":", t.bytes[1]),
                    (b",\"first_ns\":", t.first_ns),
                    (b",\"last_ns\":", t.last_ns),
                    (b",\"ipbytes_ab\":", t.ip_bytes[0]),
                    (b",\"ipbytes_ba\":", t.ip_bytes[1]),
                    (b",\"tcp_flags_ab\":", u64::from(t.tcp_flags[0])),
                    (b",\"tcp_flags_ba\":", u64::from(t.tcp_flags[1])),
                ] {
                    buf.extend_from_slice(name);
                    push_dec(&mut buf, v);
                }
                buf.extend_from_slice(if t.initiator == Side::A {
                    b",\"initiator\":\"a\"}\n"
                } else {
                    b",\"initiator\":\"b\"}\n"
                });
            }
        }
        if buf.len() >= FLUSH_AT {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()
}

/// Appends the decimal digits of `v`.
#[inline]
fn push_dec(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        // v % 10 < 10, so the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        let d = (v % 10) as u8;
        digits[i] = b'0' + d;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends the lowercase hexadecimal digits of `v`, without leading zeros.
#[inline]
fn push_hex(out: &mut Vec<u8>, v: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut started = false;
    for shift in [12u16, 8, 4, 0] {
        let d = usize::from((v >> shift) & 0xf);
        if d != 0 || started || shift == 0 {
            started = true;
            out.push(HEX[d]);
        }
    }
}

/// Appends an address as the oracle prints it (see [`fmt_addr`]).
fn push_addr(out: &mut Vec<u8>, v6: bool, b: &[u8; 16]) {
    if !v6 {
        for (n, &octet) in b[..4].iter().enumerate() {
            if n > 0 {
                out.push(b'.');
            }
            push_dec(out, u64::from(octet));
        }
        return;
    }
    let seg = Ipv6Addr::from(*b).segments();
    let (mut best_start, mut best_len) = (usize::MAX, 0usize);
    let mut i = 0;
    while i < 8 {
        if seg[i] == 0 {
            let start = i;
            while i < 8 && seg[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                best_start = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    let hex = |out: &mut Vec<u8>, range: &[u16]| {
        for (n, &g) in range.iter().enumerate() {
            if n > 0 {
                out.push(b':');
            }
            push_hex(out, g);
        }
    };
    if best_len >= 2 {
        hex(out, &seg[..best_start]);
        out.extend_from_slice(b"::");
        hex(out, &seg[best_start + best_len..]);
    } else {
        hex(out, &seg);
    }
}

/// The accounting summary: first the oracle's keys (same meaning as in its
/// `.summary.txt`), then our own buckets, malformed kinds and table counters.
#[must_use]
pub fn summary_text(r: &OfflineResult) -> String {
    let s = &r.stats;
    let mut t = String::with_capacity(1024);
    let mut kv = |k: &str, v: u64| {
        let _ = writeln!(t, "{k}={v}");
    };
    kv("total_frames", s.frames);
    kv("total_bytes", s.bytes);
    kv("total_captured_bytes", r.extra.captured_bytes);
    kv("ip_frames", s.flow_frames);
    kv("non_ip_frames", s.non_ip_frames + s.truncated_frames);
    kv("ip_invalid_frames", s.ip_invalid_frames);
    kv("unsupported_linktype_frames", 0);
    kv("nonfirst_fragment_frames", r.extra.nonfirst_fragment_frames);
    kv("truncated_frames", r.extra.snaplen_cut_frames);
    kv("flows", r.flows.len() as u64);
    kv("bucket_flow_frames", s.flow_frames);
    kv("bucket_non_ip_frames", s.non_ip_frames);
    kv("bucket_ip_invalid_frames", s.ip_invalid_frames);
    kv("bucket_truncated_frames", s.truncated_frames);
    for kind in MalformedKind::ALL {
        let _ = writeln!(t, "malformed_{}={}", kind.name(), s.malformed.get(kind));
    }
    let _ = writeln!(t, "table_capacity={}", s.table_capacity);
    let _ = writeln!(t, "table_evictions={}", s.table_evictions);
    let _ = writeln!(t, "table_rejects={}", s.table_rejects);
    t
}

/// Formats an address as Python's `ipaddress` does (the oracle's CSV).
#[must_use]
pub fn fmt_addr(v6: bool, b: &[u8; 16]) -> String {
    let mut v = Vec::with_capacity(39);
    push_addr(&mut v, v6, b);
    String::from_utf8_lossy(&v).into_owned()
}

/// IPv6 text as Python 3.11's `ipaddress.IPv6Address.__str__`: lowercase hex groups
/// without leading zeros, the longest run (the first on a tie) of at least two zero groups
/// replaced by `::`, and no dotted-quad form (IPv4-mapped `::ffff:1.2.3.4` prints as
/// `::ffff:102:304`, unlike Rust's `Display`).
#[must_use]
pub fn fmt_ipv6_python(a: &Ipv6Addr) -> String {
    fmt_addr(true, &a.octets())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-made formatting equals what `format!` gives for the same row.
    #[test]
    fn flow_lines_equal_the_fmt_rendering() {
        let key = |v6: u8, a: &str, b: &str| {
            let (addr_a, addr_b) = if v6 == 1 {
                (
                    a.parse::<Ipv6Addr>().unwrap().octets(),
                    b.parse::<Ipv6Addr>().unwrap().octets(),
                )
            } else {
                let mut x = [0u8; 16];
                let mut y = [0u8; 16];
                x[..4].copy_from_slice(&a.parse::<std::net::Ipv4Addr>().unwrap().octets());
                y[..4].copy_from_slice(&b.parse::<std::net::Ipv4Addr>().unwrap().octets());
                (x, y)
            };
            RawKey {
                addr_a,
                addr_b,
                port_a: 0,
                port_b: 65535,
                vlan: 4094,
                proto: 255,
                v6,
            }
        };
        let t = FlowTotals {
            initiator: Side::B,
            packets: [0, 1],
            bytes: [9, u64::MAX],
            ip_bytes: [10, 1_000_000_007],
            tcp_flags: [0, 0xff],
            first_ns: 1_700_000_000_123_456_789,
            last_ns: u64::MAX - 1,
        };
        let flows = vec![
            (key(0, "0.0.0.0", "255.10.0.9"), t),
            (
                key(1, "::", "2001:db8:0:1:0:0:0:1"),
                FlowTotals {
                    initiator: Side::A,
                    ..t
                },
            ),
            (key(1, "fe80::20c:29ff:fe3a:94b1", "::ffff:1.2.3.4"), t),
        ];
        let mut csv = Vec::new();
        write_flows(&flows, OutputFormat::Csv, &mut csv).unwrap();
        let mut json = Vec::new();
        write_flows(&flows, OutputFormat::Json, &mut json).unwrap();
        let ip = |v6: u8, b: &[u8; 16]| {
            if v6 == 1 {
                let a = Ipv6Addr::from(*b);
                // Python's text (no dotted quad) for the cases above.
                match a.to_string().as_str() {
                    "::ffff:1.2.3.4" => "::ffff:102:304".to_string(),
                    "2001:db8:0:1::1" => "2001:db8:0:1::1".to_string(),
                    other => other.to_string(),
                }
            } else {
                format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
            }
        };
        let mut want_csv = format!("{CSV_HEADER}\n");
        let mut want_json = String::new();
        for (k, t) in &flows {
            let (a, b) = (ip(k.v6, &k.addr_a), ip(k.v6, &k.addr_b));
            want_csv += &format!(
                "{},{a},{},{b},{},{},{},{},{},{},{},{},{},{}\n",
                k.proto,
                k.port_a,
                k.port_b,
                k.vlan,
                t.packets[0],
                t.bytes[0],
                t.packets[1],
                t.bytes[1],
                t.first_ns,
                t.last_ns,
                t.ip_bytes[0],
                t.ip_bytes[1]
            );
            want_json += &format!(
                "{{\"proto\":{},\"addr_a\":\"{a}\",\"port_a\":{},\"addr_b\":\"{b}\",\"port_b\":{},\"vlan\":{},\
                 \"packets_ab\":{},\"bytes_ab\":{},\"packets_ba\":{},\"bytes_ba\":{},\"first_ns\":{},\"last_ns\":{},\
                 \"ipbytes_ab\":{},\"ipbytes_ba\":{},\"tcp_flags_ab\":{},\"tcp_flags_ba\":{},\"initiator\":\"{}\"}}\n",
                k.proto,
                k.port_a,
                k.port_b,
                k.vlan,
                t.packets[0],
                t.bytes[0],
                t.packets[1],
                t.bytes[1],
                t.first_ns,
                t.last_ns,
                t.ip_bytes[0],
                t.ip_bytes[1],
                t.tcp_flags[0],
                t.tcp_flags[1],
                if t.initiator == Side::A { "a" } else { "b" }
            );
        }
        assert_eq!(String::from_utf8(csv).unwrap(), want_csv);
        assert_eq!(String::from_utf8(json).unwrap(), want_json);
    }

    #[test]
    fn ipv6_text_matches_python() {
        let cases = [
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("2001:db8::1", "2001:db8::1"),
            ("2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"),
            ("2001:0:0:1:0:0:1:1", "2001::1:0:0:1:1"),
            ("1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0"),
            ("::ffff:1.2.3.4", "::ffff:102:304"),
            ("fe80::20c:29ff:fe3a:94b1", "fe80::20c:29ff:fe3a:94b1"),
        ];
        for (input, want) in cases {
            let a: Ipv6Addr = input.parse().unwrap();
            assert_eq!(fmt_ipv6_python(&a), want, "{input}");
        }
    }
}
