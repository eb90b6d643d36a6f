//! Live capture above `sys/`: ring geometry, opening one ring per capture thread, the
//! [`RingSource`] frame source, the capture filter and the default interface.
//!
//! Safe code only: every syscall and the shared ring memory are behind `sys/`.

use crate::source::{Frame, FrameSource, SourceError, LINKTYPE_ETHERNET};
use crate::sys::packet::{interface_index, PacketSocket, SockFilter};
use crate::sys::prefetch::prefetch_bytes;
use crate::sys::ring::{self, Ring};
use crate::sys::tpacket::{
    FrameHeader, TpacketReq3, FRAME_HEADER_LEN, PACKET_FANOUT_FLAG_DEFRAG, PACKET_FANOUT_HASH,
    TPACKET_ALIGNMENT,
};
use std::io;
use std::process::Command;

/// How far ahead of the frame being parsed the held block is prefetched, in bytes. The
/// kernel wrote the frames from another CPU, so each line is a cross-core miss (a few
/// hundred cycles); the frames of a block lie one after the other, so a cursor that keeps
/// this many bytes hinted ahead of the walk hides that latency (about 13 minimum-size
/// frames, each parsed in ~30 ns).
const STREAM_AHEAD: usize = 2048;

/// Ring geometry (`--ring-*` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes per block (multiple of the page size; a power of two wastes no kernel memory).
    pub block_size: u32,
    /// Blocks per ring.
    pub block_nr: u32,
    /// Nominal frame size (multiple of 16; V3 frames are variable-length, this only has to
    /// divide the block size).
    pub frame_size: u32,
    /// Retire timeout of a partly filled block, ms: bounds the latency of a quiet link.
    pub retire_ms: u32,
}

impl RingConfig {
    /// 4 MiB blocks: one block holds ~26,000 frames of 64 bytes (160 bytes apart in the
    /// block), or ~2,700 of 1514 bytes. The helper wakes once per retired block; on a busy
    /// link bigger blocks mean fewer wake-ups (each costs tens of microseconds of CPU on a
    /// VM), and on a quiet one the retire timeout decides anyway. Against 16 x 1 MiB at
    /// 200 kfps: 48 -> 21 wake-ups/s, 27 -> 24 ns of helper CPU per frame.
    pub const DEFAULT_BLOCK_SIZE: u32 = 4 << 20;
    /// 4 blocks = 16 MiB per ring (the seed's NETWATCH_RING_BUFFER_SIZE): ~70 ms of a
    /// 1 Gbps link of minimum-size frames, ~130 ms of full-size ones, far more than the
    /// loop's worst pause; the kernel fills three blocks while the helper walks the fourth.
    pub const DEFAULT_BLOCK_NR: u32 = 4;
    /// 2048-byte nominal frames (a full 1514-byte frame plus headers).
    pub const DEFAULT_FRAME_SIZE: u32 = 2048;
    /// 500 ms: the retire timeout of the default export interval (500 ms).
    pub const DEFAULT_RETIRE_MS: u32 = Self::retire_ms_for(crate::run::DEFAULT_EXPORT_INTERVAL_MS);

    /// The retire timeout that goes with an export interval: the interval itself
    /// (1..=1000 ms). A block that is not full then retires once per interval, and the
    /// capture loop exports on that same wake-up (it may export up to a quarter interval
    /// early, see `run`): a link that fills less than a block per interval wakes the helper
    /// about once per interval, not once per block plus once per export. Every wake-up
    /// costs tens of microseconds of CPU on a VM (40 us for a bare `poll` timeout here). A
    /// frame still reaches the server within 1.5 intervals (the dashboard's updates stay
    /// sub-second at the default 500 ms); a busy link's blocks fill before they time out.
    #[must_use]
    pub const fn retire_ms_for(export_interval_ms: u64) -> u32 {
        if export_interval_ms < 1 {
            1
        } else if export_interval_ms > 1000 {
            1000
        } else {
            // In 1..=1000 here: the cast cannot truncate.
            export_interval_ms as u32
        }
    }

    /// The `tpacket_req3` for this geometry.
    ///
    /// # Errors
    /// A message when the geometry is invalid (checked here so the kernel's EINVAL never
    /// has to be guessed at).
    pub fn to_req(&self) -> Result<TpacketReq3, String> {
        let page = 4096u32;
        if self.block_size == 0 || self.block_size % page != 0 {
            return Err(format!(
                "ring block size {} is not a positive multiple of {page}",
                self.block_size
            ));
        }
        if self.frame_size < 64
            || self.frame_size % TPACKET_ALIGNMENT != 0
            || self.block_size % self.frame_size != 0
        {
            return Err(format!(
                "ring frame size {} must be a multiple of 16, at least 64, and divide the block size {}",
                self.frame_size, self.block_size
            ));
        }
        if self.block_nr == 0 {
            return Err("ring block count must be at least 1".into());
        }
        let frame_nr = (self.block_size / self.frame_size)
            .checked_mul(self.block_nr)
            .ok_or_else(|| "ring too large".to_string())?;
        if u64::from(self.block_size) * u64::from(self.block_nr) > 1 << 32 {
            return Err("ring larger than 4 GiB".into());
        }
        Ok(TpacketReq3 {
            tp_block_size: self.block_size,
            tp_block_nr: self.block_nr,
            tp_frame_size: self.frame_size,
            tp_frame_nr: frame_nr,
            tp_retire_blk_tov: self.retire_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        })
    }
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            block_size: Self::DEFAULT_BLOCK_SIZE,
            block_nr: Self::DEFAULT_BLOCK_NR,
            frame_size: Self::DEFAULT_FRAME_SIZE,
            retire_ms: Self::DEFAULT_RETIRE_MS,
        }
    }
}

/// Which privileged socket operation failed (each is its own startup step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenStep {
    /// `socket(AF_PACKET, SOCK_RAW)`.
    Socket,
    /// `PACKET_VERSION` = TPACKET_V3.
    Version,
    /// `PACKET_RX_RING`.
    RxRing,
    /// mmap of the ring.
    Mmap,
    /// `if_nametoindex`.
    Interface,
    /// Attaching the BPF filter.
    Filter,
    /// `bind`.
    Bind,
    /// `PACKET_ADD_MEMBERSHIP` promiscuous.
    Promisc,
    /// `PACKET_FANOUT`.
    Fanout,
    /// Moving the socket to its fixed descriptor.
    Descriptor,
}

/// A ring opening step that failed.
#[derive(Debug, thiserror::Error)]
#[error("{step:?}: {source}")]
pub struct OpenError {
    /// The step.
    pub step: OpenStep,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

/// What to open.
#[derive(Debug, Clone)]
pub struct OpenSpec<'a> {
    /// Interface name.
    pub interface: &'a str,
    /// Geometry.
    pub ring: RingConfig,
    /// Promiscuous mode.
    pub promisc: bool,
    /// Compiled capture filter.
    pub filter: Option<&'a [SockFilter]>,
    /// Fanout group id when more than one ring is opened.
    pub fanout_group: Option<u16>,
    /// Descriptor to move the socket to (live mode: `PACKET_FD_BASE + thread`), so that
    /// the seccomp policy can refuse writes to it.
    pub fd: Option<std::os::fd::RawFd>,
}

/// Opens one socket + ring, in the order the kernel needs: TPACKET_V3 before the ring, the
/// ring and mmap before bind (so no frame is queued outside the ring), the filter before bind
/// (so no unfiltered frame is ever queued), fanout after bind (the kernel requires a bound
/// socket to join a group).
///
/// # Errors
/// [`OpenError`] naming the failed step.
pub fn open_ring(spec: &OpenSpec<'_>) -> Result<RingSource, OpenError> {
    let e = |step| move |source| OpenError { step, source };
    let req = spec.ring.to_req().map_err(|m| OpenError {
        step: OpenStep::RxRing,
        source: io::Error::new(io::ErrorKind::InvalidInput, m),
    })?;
    let sock = PacketSocket::open().map_err(e(OpenStep::Socket))?;
    sock.set_tpacket_v3().map_err(e(OpenStep::Version))?;
    sock.set_rx_ring(&req).map_err(e(OpenStep::RxRing))?;
    let ring = Ring::map(&sock, &req).map_err(e(OpenStep::Mmap))?;
    let ifindex = interface_index(spec.interface).map_err(e(OpenStep::Interface))?;
    if let Some(prog) = spec.filter {
        sock.attach_filter(prog).map_err(e(OpenStep::Filter))?;
    }
    sock.bind(ifindex).map_err(e(OpenStep::Bind))?;
    if spec.promisc {
        sock.add_promisc_membership(ifindex)
            .map_err(e(OpenStep::Promisc))?;
    }
    if let Some(group) = spec.fanout_group {
        sock.join_fanout(group, PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG)
            .map_err(e(OpenStep::Fanout))?;
    }
    let sock = match spec.fd {
        Some(fd) => sock.move_to_fd(fd).map_err(e(OpenStep::Descriptor))?,
        None => sock,
    };
    Ok(RingSource::new(sock, ring))
}

/// Cumulative kernel counters of one socket (`PACKET_STATISTICS` resets on read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Frames the kernel handled for this socket (received + dropped).
    pub packets: u64,
    /// Frames dropped because the ring was full.
    pub drops: u64,
    /// Queue freezes.
    pub freezes: u64,
}

/// A [`FrameSource`] over a TPACKET_V3 ring.
///
/// `next` returns `Ok(None)` when no retired block is waiting (not the end of the capture):
/// the caller then waits with [`RingSource::wait`]. A frame borrows the held block; the block
/// goes back to the kernel when the walk moves past its last frame.
#[derive(Debug)]
pub struct RingSource {
    sock: PacketSocket,
    ring: Ring,
    /// Offset of the next frame in the held block.
    offset: usize,
    /// Frames left in the held block.
    remaining: u32,
    /// Used bytes of the held block (`blk_len`, checked against the block size).
    blk_len: usize,
    /// Prefetch cursor: the lines of the held block before this offset were hinted
    /// (a multiple of 64).
    prefetched: usize,
    /// A frame with its VLAN tag put back (the kernel strips it into the header).
    vlan_buf: Vec<u8>,
    kernel: KernelCounters,
    /// Frames lost to blocks or frame headers that failed their checks.
    ring_errors: u64,
    /// Blocks walked.
    blocks: u64,
}

impl RingSource {
    fn new(sock: PacketSocket, ring: Ring) -> Self {
        RingSource {
            sock,
            ring,
            offset: 0,
            remaining: 0,
            blk_len: 0,
            prefetched: 0,
            vlan_buf: Vec::with_capacity(2048),
            kernel: KernelCounters::default(),
            ring_errors: 0,
            blocks: 0,
        }
    }

    /// Waits up to `timeout_ms` for a block (poll). Returns early on a signal.
    ///
    /// # Errors
    /// The poll error.
    pub fn wait(&self, timeout_ms: i32) -> io::Result<()> {
        self.sock.poll_readable(timeout_ms).map(|_| ())
    }

    /// Reads the kernel counters (and adds them to the totals; the kernel resets them).
    ///
    /// # Errors
    /// The getsockopt error.
    pub fn kernel_counters(&mut self) -> io::Result<KernelCounters> {
        let st = self.sock.take_stats()?;
        self.kernel.packets = self.kernel.packets.saturating_add(u64::from(st.tp_packets));
        self.kernel.drops = self.kernel.drops.saturating_add(u64::from(st.tp_drops));
        self.kernel.freezes = self
            .kernel
            .freezes
            .saturating_add(u64::from(st.tp_freeze_q_cnt));
        Ok(self.kernel)
    }

    /// Frames lost to ring blocks that failed their checks (should stay 0).
    #[must_use]
    pub fn ring_errors(&self) -> u64 {
        self.ring_errors
    }

    /// Blocks walked so far.
    #[must_use]
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Finds the next frame in the held block (acquiring the next block when needed) and
    /// returns what `next` needs; every offset was checked against the block's used length.
    #[inline(always)]
    fn advance(&mut self) -> Option<FrameMeta> {
        loop {
            if self.remaining > 0 {
                let used = self.ring.held_block()?.get(..self.blk_len)?;
                match FrameHeader::new_checked(used, self.offset) {
                    Ok(f) => {
                        self.remaining -= 1;
                        if self.remaining > 0 {
                            let next = f.next_offset() as usize;
                            // A link shorter than a header is garbage (or a loop): the next
                            // call fails its check and the rest of the block is counted lost.
                            self.offset = if next < FRAME_HEADER_LEN {
                                usize::MAX
                            } else {
                                self.offset.saturating_add(next)
                            };
                            // Keep the lines up to STREAM_AHEAD past the next frame on
                            // their way here (hints; nothing is read from them until a
                            // frame header there is checked).
                            let want = self.offset.saturating_add(STREAM_AHEAD).min(self.blk_len);
                            if want > self.prefetched {
                                if let Some(lines) = used.get(self.prefetched..want) {
                                    prefetch_bytes(lines);
                                }
                                self.prefetched = (want + 63) & !63;
                            }
                        }
                        if f.is_loopback_outgoing() {
                            continue;
                        }
                        return Some(FrameMeta {
                            start: f.data_start(),
                            len: f.data().len(),
                            wire_len: f.wire_len(),
                            ts_ns: f.ts_ns(),
                            vlan: f.stripped_vlan(),
                        });
                    }
                    Err(_) => {
                        self.ring_errors += u64::from(self.remaining);
                        self.remaining = 0;
                        continue;
                    }
                }
            }
            // The held block (if any) is exhausted: give it back and look at the next one.
            if !self.next_block() {
                return None;
            }
        }
    }

    /// Gives the held block (if any) back and takes the next one if the kernel retired it.
    /// False when none is waiting.
    #[inline(never)]
    fn next_block(&mut self) -> bool {
        self.ring.release();
        if !self.ring.try_acquire() {
            return false;
        }
        self.blocks += 1;
        let Some(block) = self.ring.held_block() else {
            return false;
        };
        match ring::view(block) {
            Ok(v) => {
                self.offset = v.offset_to_first_pkt() as usize;
                self.remaining = v.num_pkts();
                self.blk_len = v.blk_len() as usize;
                self.prefetched = self.offset & !63;
            }
            Err(_) => {
                // A descriptor that does not check: nothing in it can be trusted, and
                // its frame count is unknown. Counted as one error.
                self.ring_errors += 1;
                self.remaining = 0;
            }
        }
        true
    }
}

/// One frame located by `advance`: a range of the held block plus its header fields.
#[derive(Debug, Clone, Copy)]
struct FrameMeta {
    start: usize,
    len: usize,
    wire_len: u32,
    ts_ns: u64,
    vlan: Option<(u16, u16)>,
}

impl FrameSource for RingSource {
    fn link_type(&self) -> u32 {
        LINKTYPE_ETHERNET
    }

    #[inline(always)]
    fn next(&mut self) -> Result<Option<Frame<'_>>, SourceError> {
        let Some(m) = self.advance() else {
            return Ok(None);
        };
        // `self.ring` and `self.vlan_buf` are disjoint fields, so the frame can borrow the
        // block while the VLAN buffer is written. The range was checked in `advance`.
        let Some(data) = self
            .ring
            .held_block()
            .and_then(|b| b.get(m.start..m.start + m.len))
        else {
            return Ok(None);
        };
        if let (Some((tpid, tci)), true) = (m.vlan, data.len() >= 12) {
            // The kernel (or the NIC) removed the 802.1Q tag; put it back after the MAC
            // addresses so the parser sees the frame as it was on the wire (as libpcap does).
            self.vlan_buf.clear();
            self.vlan_buf.extend_from_slice(&data[..12]);
            self.vlan_buf.extend_from_slice(&tpid.to_be_bytes());
            self.vlan_buf.extend_from_slice(&tci.to_be_bytes());
            self.vlan_buf.extend_from_slice(&data[12..]);
            return Ok(Some(Frame {
                data: &self.vlan_buf,
                wire_len: m.wire_len.saturating_add(4),
                ts_ns: m.ts_ns,
            }));
        }
        Ok(Some(Frame {
            data,
            wire_len: m.wire_len,
            ts_ns: m.ts_ns,
        }))
    }
}

/// Compiles a tcpdump-syntax filter to classic BPF for Ethernet by running
/// `tcpdump -ddd -y EN10MB EXPR` (libpcap's `pcap_open_dead`: no interface is opened, no
/// privilege is used). When the helper is root, tcpdump runs as `run_as` (uid, gid) so no
/// privileged child process ever exists. Using libpcap's own compiler keeps the syntax
/// exactly tcpdump's, without linking libpcap into the privileged helper. The calling
/// thread's ambient and inheritable capability sets are cleared first, so tcpdump inherits no
/// capability either when the helper got CAP_NET_RAW as an ambient capability (systemd).
///
/// # Errors
/// A message with tcpdump's error (syntax error, tcpdump missing) or a malformed program, or
/// when the inheritable capabilities cannot be cleared.
pub fn compile_filter(expr: &str, run_as: Option<(u32, u32)>) -> Result<Vec<SockFilter>, String> {
    use std::os::unix::process::CommandExt as _;
    crate::sys::privilege::clear_inherited()
        .map_err(|e| format!("before running tcpdump to compile the filter: {e}"))?;
    let mut cmd = Command::new("tcpdump");
    cmd.args(["-ddd", "-y", "EN10MB", "--", expr])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    if let Some((uid, gid)) = run_as {
        // std also calls setgroups(0) when a root parent sets the uid: no supplementary groups.
        cmd.uid(uid).gid(gid);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("running tcpdump to compile the filter: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let msg = err
            .lines()
            .filter(|l| !l.contains("assuming Ethernet"))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(format!("invalid capture filter {expr:?}: {msg}"));
    }
    parse_ddd(&String::from_utf8_lossy(&out.stdout))
}

/// Parses `tcpdump -ddd` output: a count line, then `code jt jf k` per instruction.
///
/// # Errors
/// A message for a malformed listing.
pub fn parse_ddd(text: &str) -> Result<Vec<SockFilter>, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let n: usize = lines
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| "tcpdump -ddd: missing instruction count".to_string())?;
    if n == 0 || n > 4096 {
        return Err(format!("tcpdump -ddd: {n} instructions"));
    }
    let mut prog = Vec::with_capacity(n);
    for line in lines {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        let bad = || format!("tcpdump -ddd: bad instruction line {line:?}");
        if f.len() != 4 {
            return Err(bad());
        }
        prog.push(SockFilter {
            code: f[0].parse().map_err(|_| bad())?,
            jt: f[1].parse().map_err(|_| bad())?,
            jf: f[2].parse().map_err(|_| bad())?,
            k: f[3].parse().map_err(|_| bad())?,
        });
    }
    if prog.len() != n {
        return Err(format!(
            "tcpdump -ddd: announced {n} instructions, got {}",
            prog.len()
        ));
    }
    Ok(prog)
}

/// The interface of the IPv4 default route (`/proc/net/route`, destination 0 and mask 0,
/// lowest metric), or `None`.
#[must_use]
pub fn default_route_interface() -> Option<String> {
    let text = std::fs::read_to_string("/proc/net/route").ok()?;
    default_route_from(&text)
}

fn default_route_from(text: &str) -> Option<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
            if f.len() < 8 || f[1] != "00000000" || f[7] != "00000000" {
                return None;
            }
            let flags = u32::from_str_radix(f[3], 16).ok()?;
            if flags & 0x1 == 0 {
                return None; // RTF_UP
            }
            Some((f[6].parse::<u32>().unwrap_or(u32::MAX), f[0].to_string()))
        })
        .min()
        .map(|(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_geometry_is_valid_and_16_mib() {
        let r = RingConfig::default().to_req().expect("valid");
        assert_eq!(
            u64::from(r.tp_block_size) * u64::from(r.tp_block_nr),
            16 << 20
        );
        assert_eq!(r.tp_frame_nr, (4 << 20) / 2048 * 4);
        assert!(RingConfig {
            block_size: 1000,
            ..RingConfig::default()
        }
        .to_req()
        .is_err());
        assert!(RingConfig {
            frame_size: 100,
            ..RingConfig::default()
        }
        .to_req()
        .is_err());
        assert!(RingConfig {
            block_nr: 0,
            ..RingConfig::default()
        }
        .to_req()
        .is_err());
    }

    #[test]
    fn parses_tcpdump_ddd() {
        let p = parse_ddd("2\n40 0 0 12\n6 0 0 262144\n").expect("valid");
        assert_eq!(
            p[0],
            SockFilter {
                code: 40,
                jt: 0,
                jf: 0,
                k: 12
            }
        );
        assert_eq!(p.len(), 2);
        assert!(parse_ddd("3\n40 0 0 12\n").is_err());
        assert!(parse_ddd("1\n40 0 x 12\n").is_err());
        assert!(parse_ddd("").is_err());
    }

    #[test]
    fn finds_the_default_route() {
        let t =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                 eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                 eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
                 wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n";
        assert_eq!(default_route_from(t), Some("eth0".to_string()));
        assert_eq!(default_route_from("Iface\n"), None);
    }

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// Counts UDP frames to `port` in `src` for up to `max_ms` or until `want` are seen.
    fn count_udp_to(src: &mut RingSource, port: u16, want: usize, max_ms: u64) -> (usize, u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(max_ms);
        let (mut n, mut bytes) = (0, 0u64);
        while n < want && std::time::Instant::now() < deadline {
            while let Ok(Some(f)) = src.next() {
                // Ethernet (14, all-zero MACs on lo) + IPv4 (20) + UDP: dst port at 36..38.
                let d = f.data;
                if d.len() >= 42
                    && d[12..14] == [8, 0]
                    && d[23] == 17
                    && d[36..38] == port.to_be_bytes()
                {
                    n += 1;
                    bytes += u64::from(f.wire_len);
                }
            }
            src.wait(20).expect("poll");
        }
        (n, bytes)
    }

    /// Needs root (CAP_NET_RAW): opens a real ring on `lo` and sees our own datagrams, with
    /// and without a capture filter. Only loopback traffic is sent.
    #[test]
    fn ring_on_loopback_sees_datagrams_needs_root() {
        if !is_root() {
            eprintln!("SKIPPED: needs root");
            return;
        }
        // Big enough for the other loopback traffic of a busy test machine.
        let ring = RingConfig {
            block_size: 1 << 20,
            block_nr: 16,
            frame_size: 2048,
            retire_ms: 5,
        };
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = rx.local_addr().expect("addr").port();
        let other = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let other_port = other.local_addr().expect("addr").port();
        let prog = compile_filter(&format!("udp dst port {port}"), None).expect("tcpdump compiles");

        let mut all = open_ring(&OpenSpec {
            interface: "lo",
            ring,
            promisc: false,
            filter: None,
            fanout_group: None,
            fd: None,
        })
        .expect("open ring on lo");
        let mut filtered = open_ring(&OpenSpec {
            interface: "lo",
            ring,
            promisc: false,
            filter: Some(&prog),
            fanout_group: None,
            fd: None,
        })
        .expect("open filtered ring on lo");

        let tx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut want_bytes = 0u64;
        for i in 0..200usize {
            let payload = vec![0u8; 10 + i];
            tx.send_to(&payload, ("127.0.0.1", port)).expect("send");
            tx.send_to(&payload, ("127.0.0.1", other_port))
                .expect("send");
            want_bytes += (14 + 20 + 8 + 10 + i) as u64;
        }
        let (n, bytes) = count_udp_to(&mut all, port, 200, 3000);
        let drops = all.kernel_counters().map(|k| k.drops).unwrap_or(0);
        assert_eq!(
            (n, bytes),
            (200, want_bytes),
            "kernel drops on the unfiltered ring: {drops}"
        );
        let (n, bytes) = count_udp_to(&mut filtered, port, 200, 3000);
        assert_eq!((n, bytes), (200, want_bytes));
        let (n_other, _) = count_udp_to(&mut filtered, other_port, 1, 300);
        assert_eq!(n_other, 0, "the filter let another port through");
        let k = all.kernel_counters().expect("stats");
        assert!(k.packets >= 400, "kernel counted {k:?}");
        assert_eq!(drops, 0);
        assert_eq!(k.drops, 0);
        assert_eq!(all.ring_errors(), 0);
        assert!(all.blocks() > 0);
    }
}
