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

use crate::collector::Collector;
use crate::flow::table::Observation;
use crate::flow::{EndedRecord, RawKey, TableConfig};
use crate::source::{FrameSource, PcapFileSource, SourceError, LINKTYPE_ETHERNET};
use netwatch_protocol::{MalformedKind, Side};
use std::collections::HashMap;
use std::fmt::Write as _;
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

/// Merges drained records by key.
#[derive(Debug, Default)]
pub struct Merger {
    flows: HashMap<RawKey, FlowTotals>,
}

impl Merger {
    /// Adds one record.
    pub fn add(&mut self, r: &EndedRecord) {
        let t = self.flows.entry(r.key).or_insert(FlowTotals {
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
        let mut v: Vec<_> = self.flows.into_iter().collect();
        v.sort_unstable_by_key(|f| f.0);
        v
    }
}

/// Frames per batch of [`collect`] (enough lookups in flight to hide a cache miss).
const BATCH: usize = 32;

/// One classified frame of a batch.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// The frame's timestamp (the clock).
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
    // Frames go through in batches: classify a batch and prefetch each flow's index slot,
    // then prefetch the entries those slots point at, then count the packets in frame
    // order (so the cache misses of a batch overlap). The prefetches are hints only: the
    // table changes, expiry and drains happen exactly as frame-by-frame.
    let mut batch = [Pending::EMPTY; BATCH];
    loop {
        let mut n = 0;
        while n < BATCH {
            let Some(frame) = source.next()? else {
                break;
            };
            let p = &mut batch[n];
            p.now = frame.ts_ns;
            p.flow = match collector.classify(&frame) {
                Some((key, obs)) => {
                    p.tag = collector.prefetch_slot(&key);
                    p.key = key;
                    p.obs = obs;
                    true
                }
                None => false,
            };
            n += 1;
        }
        for p in &batch[..n] {
            if p.flow {
                collector.prefetch_entry(p.tag);
            }
        }
        for p in &batch[..n] {
            let now = p.now;
            if p.flow {
                collector.observe(&p.key, p.tag, &p.obs, now);
            }
            if collector.pending_ended() >= drain_at {
                collector.drain_ended_with(|r| merger.add(r));
            }
            match next_expire {
                None => next_expire = Some(now.saturating_add(every)),
                Some(t) if now >= t => {
                    collector.expire(now);
                    // Open flows keep accumulating in the table; only ended records move out.
                    collector.drain_ended_with(|r| merger.add(r));
                    next_expire = Some(now.saturating_add(every));
                }
                Some(_) => {}
            }
        }
        if n < BATCH {
            break;
        }
    }
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
/// # Errors
/// I/O errors of `out`.
pub fn write_flows(
    flows: &[(RawKey, FlowTotals)],
    format: OutputFormat,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut w = io::BufWriter::with_capacity(1 << 16, out);
    let mut line = String::with_capacity(256);
    if format == OutputFormat::Csv {
        writeln!(w, "{CSV_HEADER}")?;
    }
    for (k, t) in flows {
        line.clear();
        let (a, b) = (
            fmt_addr(k.v6 != 0, &k.addr_a),
            fmt_addr(k.v6 != 0, &k.addr_b),
        );
        let r = match format {
            OutputFormat::Csv => writeln!(
                line,
                "{},{a},{},{b},{},{},{},{},{},{},{},{},{},{}",
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
            ),
            OutputFormat::Json => writeln!(
                line,
                "{{\"proto\":{},\"addr_a\":\"{a}\",\"port_a\":{},\"addr_b\":\"{b}\",\"port_b\":{},\"vlan\":{},\
                 \"packets_ab\":{},\"bytes_ab\":{},\"packets_ba\":{},\"bytes_ba\":{},\"first_ns\":{},\"last_ns\":{},\
                 \"ipbytes_ab\":{},\"ipbytes_ba\":{},\"tcp_flags_ab\":{},\"tcp_flags_ba\":{},\"initiator\":\"{}\"}}",
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
            ),
        };
        r.map_err(|_| io::Error::other("formatting failed"))?;
        w.write_all(line.as_bytes())?;
    }
    w.flush()
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
    if v6 {
        fmt_ipv6_python(&Ipv6Addr::from(*b))
    } else {
        format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
    }
}

/// IPv6 text as Python 3.11's `ipaddress.IPv6Address.__str__`: lowercase hex groups
/// without leading zeros, the longest run (the first on a tie) of at least two zero groups
/// replaced by `::`, and no dotted-quad form (IPv4-mapped `::ffff:1.2.3.4` prints as
/// `::ffff:102:304`, unlike Rust's `Display`).
#[must_use]
pub fn fmt_ipv6_python(a: &Ipv6Addr) -> String {
    let seg = a.segments();
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
    let mut s = String::with_capacity(39);
    let hex = |s: &mut String, range: &[u16]| {
        for (n, g) in range.iter().enumerate() {
            if n > 0 {
                s.push(':');
            }
            let _ = write!(s, "{g:x}");
        }
    };
    if best_len >= 2 {
        hex(&mut s, &seg[..best_start]);
        s.push_str("::");
        hex(&mut s, &seg[best_start + best_len..]);
    } else {
        hex(&mut s, &seg);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

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
