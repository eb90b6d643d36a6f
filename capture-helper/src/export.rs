//! The exporter: a blocking client of the server's Unix socket, used by live capture and
//! by replay.
//!
//! ```text
//! submit(records) ──► encode FlowBatch(seq n) ──► backlog (bounded, oldest dropped and
//!                                                 counted in backlog_dropped_*)
//!                                                  │ pump(): connect (with backoff),
//!                                                  ▼ Hello, write unsent frames, read Acks
//!                                               server ──► Ack(seq) drops backlog ≤ seq
//! ```
//!
//! The socket is non-blocking and [`Exporter::pump`] never waits on it: it writes what the
//! socket takes and resumes a half-written frame at the next pump, so a slow or stalled
//! server never stalls the caller (live capture exports from its capture thread, which must
//! keep emptying the ring). Reads of Acks never wait either. A server that takes nothing
//! while the backlog overflows loses its connection (a half-written frame cannot be
//! dropped from the stream); a lost connection is reopened with backoff and everything
//! unacknowledged is resent, which the server de-duplicates by (instance, sequence). Only
//! connecting (Hello), [`Exporter::wait_acked`] and [`Exporter::close`] wait, each for a
//! bounded time. Syscalls used after setup: socket/connect, write, read, poll, close
//! (seccomp-friendly).

use netwatch_protocol::{
    codec, Bye, ByeKind, CaptureStats, CodecError, FlowBatchRef, FlowRecord, Hello, Message,
    SourceKind, MAGIC, PROTOCOL_VERSION,
};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::{debug, info, warn};

/// Records per `FlowBatch` at most; bigger submissions are split (keeps frames far below
/// `MAX_FRAME_LEN`).
pub const MAX_RECORDS_PER_BATCH: usize = 50_000;

/// Exporter settings.
#[derive(Debug, Clone)]
pub struct ExporterConfig {
    /// Server socket.
    pub socket: PathBuf,
    /// Interface name, or the capture file's name for a replay.
    pub interface: String,
    /// pcap LINKTYPE of the source.
    pub link_type: u32,
    /// Snap length of the source.
    pub snaplen: u32,
    /// Live or replay.
    pub source: SourceKind,
    /// Unacknowledged batches kept for resending (default 240: two minutes at 500 ms).
    pub backlog_batches: usize,
    /// First reconnect delay (doubles up to `backoff_max`).
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Longest wait for the socket to accept the Hello and the Bye.
    pub io_timeout: Duration,
    /// [`Exporter::submit`] reads the server's Acks when this long has passed since it last
    /// did (or when [`ACK_READ_BACKLOG`] batches wait for theirs); default
    /// [`ACK_READ_EVERY`].
    pub ack_read_every: Duration,
}

impl ExporterConfig {
    /// Defaults for a socket and a source.
    #[must_use]
    pub fn new(
        socket: PathBuf,
        interface: String,
        link_type: u32,
        snaplen: u32,
        source: SourceKind,
    ) -> Self {
        ExporterConfig {
            socket,
            interface,
            link_type,
            snaplen,
            source,
            backlog_batches: 240,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            io_timeout: Duration::from_millis(250),
            ack_read_every: ACK_READ_EVERY,
        }
    }
}

/// Counters of an exporter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExporterCounters {
    /// Batches submitted (after splitting).
    pub batches: u64,
    /// Highest sequence acknowledged by the server.
    pub acked_seq: u64,
    /// Successful connects.
    pub connects: u64,
    /// Failed connects and dropped connections.
    pub connection_failures: u64,
    /// Batches dropped from a full backlog.
    pub dropped_batches: u64,
    /// Records inside them.
    pub dropped_records: u64,
}

#[derive(Debug)]
struct Pending {
    seq: u64,
    records: u64,
    frame: Vec<u8>,
}

/// Client of the server socket. See the module documentation.
#[derive(Debug)]
pub struct Exporter {
    cfg: ExporterConfig,
    hello: Hello,
    conn: Option<UnixStream>,
    rbuf: Vec<u8>,
    backlog: VecDeque<Pending>,
    /// Number of backlog entries (from the front) written on the current connection.
    written: usize,
    /// Bytes of `backlog[written]` already written (a frame the socket took in part).
    partial: usize,
    next_seq: u64,
    counters: ExporterCounters,
    next_attempt: Instant,
    backoff: Duration,
    /// When [`Exporter::submit`] last read the server's Acks (see [`ACK_READ_EVERY`]).
    acks_read_at: Instant,
}

/// [`Exporter::submit`] reads the server's Acks only when this long has passed since it
/// last did (`ExporterConfig::ack_read_every`), or when [`ACK_READ_BACKLOG`] batches wait
/// for theirs: a `recv` on a socket the process has not touched for half a second costs
/// 15-25 us of CPU on a VM (measured), and most would only hear "nothing yet" or one Ack.
/// Acks only trim the backlog (what a reconnect resends; the server ignores sequence
/// numbers it already has), so reading them later costs memory, never data.
/// [`Exporter::pump`], [`Exporter::wait_acked`] and [`Exporter::close`] always read them.
pub const ACK_READ_EVERY: Duration = Duration::from_secs(2);
/// See [`ACK_READ_EVERY`].
pub const ACK_READ_BACKLOG: usize = 4;

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A random instance id (std's per-process random hash keys, mixed with pid and time).
fn random_instance() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(wall_ns());
    h.write_u32(std::process::id());
    h.finish()
}

impl Exporter {
    /// An exporter; it connects on the first [`Exporter::submit`] or [`Exporter::pump`].
    #[must_use]
    pub fn new(cfg: ExporterConfig) -> Exporter {
        let hello = Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            instance: random_instance(),
            interface: cfg.interface.clone(),
            link_type: cfg.link_type,
            snaplen: cfg.snaplen,
            source: cfg.source,
            pid: std::process::id(),
            started_ns: wall_ns(),
            software: concat!("netwatch-capture/", env!("CARGO_PKG_VERSION")).to_string(),
        };
        let backoff = cfg.backoff_min;
        Exporter {
            cfg,
            hello,
            conn: None,
            rbuf: Vec::new(),
            backlog: VecDeque::new(),
            written: 0,
            partial: 0,
            next_seq: 1,
            counters: ExporterCounters::default(),
            next_attempt: Instant::now(),
            backoff,
            acks_read_at: Instant::now(),
        }
    }

    /// The instance id sent in `Hello`.
    #[must_use]
    pub fn instance(&self) -> u64 {
        self.hello.instance
    }

    /// Counters.
    #[must_use]
    pub fn counters(&self) -> ExporterCounters {
        self.counters
    }

    /// Batches submitted but not acknowledged yet.
    #[must_use]
    pub fn unacked(&self) -> usize {
        self.backlog.len()
    }

    /// True while connected.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Fills the exporter's own counters (`backlog_dropped_*`) into `stats`.
    pub fn fill_stats(&self, stats: &mut CaptureStats) {
        stats.backlog_dropped_batches = self.counters.dropped_batches;
        stats.backlog_dropped_records = self.counters.dropped_records;
    }

    /// Queues one interval's records (deltas) as one or more batches and tries to send.
    /// The records are encoded where they lie (the caller keeps its buffer for the next
    /// interval).
    pub fn submit(
        &mut self,
        records: &[FlowRecord],
        stats: CaptureStats,
        interval_start_ns: u64,
        interval_end_ns: u64,
    ) {
        // An interval without records is still one batch (its statistics); `chunks` of an
        // empty slice yields nothing.
        let empty = records.is_empty().then_some(records);
        for chunk in empty
            .into_iter()
            .chain(records.chunks(MAX_RECORDS_PER_BATCH))
        {
            let mut stats = stats;
            self.fill_stats(&mut stats);
            let n = chunk.len() as u64;
            let batch = FlowBatchRef {
                instance: self.hello.instance,
                seq: self.next_seq,
                interval_start_ns,
                interval_end_ns,
                records: chunk,
                stats,
            };
            let mut frame = Vec::new();
            match codec::encode_flow_batch_into(&batch, &mut frame) {
                Ok(()) => {
                    self.backlog.push_back(Pending {
                        seq: self.next_seq,
                        records: n,
                        frame,
                    });
                    self.next_seq += 1;
                    self.counters.batches += 1;
                }
                Err(e) => {
                    warn!("cannot encode a batch of {n} records: {e}");
                    self.counters.dropped_batches += 1;
                    self.counters.dropped_records += n;
                }
            }
            while self.backlog.len() > self.cfg.backlog_batches.max(1) {
                if self.front_half_written() {
                    // The oldest batch is half-written to a server that reads nothing: the
                    // connection cannot carry on without it, so it goes (and is reopened).
                    self.drop_conn("the server reads nothing and the backlog is full");
                }
                if let Some(p) = self.backlog.pop_front() {
                    self.counters.dropped_batches += 1;
                    self.counters.dropped_records += p.records;
                    self.written = self.written.saturating_sub(1);
                }
            }
        }
        let read_acks = self.backlog.len() >= ACK_READ_BACKLOG
            || self.acks_read_at.elapsed() >= self.cfg.ack_read_every;
        self.pump_with(read_acks);
    }

    /// Connects when due, reads Acks, writes what the socket takes of what is unsent. Waits
    /// only while connecting (the Hello, at most `io_timeout`).
    pub fn pump(&mut self) {
        self.pump_with(true);
    }

    /// [`Exporter::pump`], reading the Acks only when `read_acks` is set.
    fn pump_with(&mut self, read_acks: bool) {
        if self.conn.is_none() && Instant::now() >= self.next_attempt {
            self.connect();
        }
        if self.conn.is_none() {
            return;
        }
        if read_acks {
            self.acks_read_at = Instant::now();
            if let Err(e) = self.read_acks() {
                self.drop_conn(&format!("reading acks: {e}"));
                return;
            }
        }
        while self.has_unsent() {
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            let frame = &self.backlog[self.written].frame;
            match conn.write(&frame[self.partial..]) {
                Ok(0) => {
                    self.drop_conn("writing a batch: socket closed");
                    return;
                }
                Ok(n) => {
                    self.partial += n;
                    if self.partial == frame.len() {
                        self.written += 1;
                        self.partial = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The socket is full: the rest goes at the next pump.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.drop_conn(&format!("writing a batch: {e}"));
                    return;
                }
            }
        }
    }

    /// Whether the oldest batch is partly written on this connection: the stream owes the
    /// rest of it, so it can be neither dropped nor acknowledged away.
    fn front_half_written(&self) -> bool {
        self.written == 0 && self.partial > 0
    }

    /// Whether some submitted batch is not (completely) written to the server yet.
    #[must_use]
    pub fn has_unsent(&self) -> bool {
        self.written < self.backlog.len()
    }

    fn connect(&mut self) {
        let attempt = UnixStream::connect(&self.cfg.socket).and_then(|s| {
            s.set_nonblocking(true)?;
            Ok(s)
        });
        match attempt {
            Ok(mut s) => {
                let hello = match codec::encode(&Message::Hello(self.hello.clone())) {
                    Ok(h) => h,
                    Err(e) => {
                        warn!("cannot encode Hello: {e}");
                        return;
                    }
                };
                if let Err(e) = write_all_timeout(&mut s, &hello, self.cfg.io_timeout) {
                    self.fail(&format!("sending Hello: {e}"));
                    return;
                }
                info!(socket = %self.cfg.socket.display(), instance = %format!("{:016x}", self.hello.instance), "connected to the server");
                self.counters.connects += 1;
                self.conn = Some(s);
                self.rbuf.clear();
                self.written = 0;
                self.partial = 0;
            }
            Err(e) => self.fail(&format!("connecting to {}: {e}", self.cfg.socket.display())),
        }
    }

    fn fail(&mut self, why: &str) {
        self.counters.connection_failures += 1;
        if self.counters.connection_failures <= 3 || self.counters.connection_failures % 100 == 0 {
            warn!("exporter: {why}; retrying in {:?}", self.backoff);
        } else {
            debug!("exporter: {why}");
        }
        self.next_attempt = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(self.cfg.backoff_max);
    }

    fn drop_conn(&mut self, why: &str) {
        self.conn = None;
        self.written = 0;
        self.partial = 0;
        self.rbuf.clear();
        self.fail(why);
    }

    /// Reads every buffered message without waiting; handles Acks and Bye.
    fn read_acks(&mut self) -> io::Result<()> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let mut chunk = [0u8; 4096];
        loop {
            match conn.read(&mut chunk) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "server closed the connection",
                    ))
                }
                Ok(n) => {
                    self.rbuf.extend_from_slice(&chunk[..n]);
                    if n < chunk.len() {
                        // The queue is drained: no second read just to hear EAGAIN.
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if self.rbuf.len() > 1 << 20 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "server sent too much",
                ));
            }
        }
        loop {
            match codec::decode(&self.rbuf) {
                Ok((msg, used)) => {
                    self.rbuf.drain(..used);
                    match msg {
                        Message::Ack(a) if a.instance == self.hello.instance => self.acked(a.seq),
                        Message::Ack(_) => {}
                        Message::Bye(b) => {
                            return Err(io::Error::new(
                                io::ErrorKind::ConnectionAborted,
                                format!("server said Bye: {}", b.reason),
                            ))
                        }
                        other => {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("unexpected message {other:?}"),
                            ))
                        }
                    }
                }
                Err(CodecError::Incomplete { .. }) => return Ok(()),
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            }
        }
    }

    fn acked(&mut self, seq: u64) {
        self.counters.acked_seq = self.counters.acked_seq.max(seq);
        self.backoff = self.cfg.backoff_min;
        while self.backlog.front().is_some_and(|p| p.seq <= seq) {
            // The server may know a batch from an earlier connection (its Ack after Hello),
            // but a half-written one stays until its last byte is out: the stream owes it.
            if self.front_half_written() {
                break;
            }
            self.backlog.pop_front();
            self.written = self.written.saturating_sub(1);
        }
    }

    /// Waits (pumping) until at most `max_unacked` batches are unacknowledged, or `timeout`.
    /// True when the condition was reached. For replay, which may wait.
    pub fn wait_acked(&mut self, max_unacked: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            self.pump();
            if self.backlog.len() <= max_unacked {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let wait = (deadline - now).min(Duration::from_millis(50));
            match self.conn.as_ref() {
                Some(c) => {
                    let mut events = PollFlags::POLLIN;
                    if self.has_unsent() {
                        events |= PollFlags::POLLOUT;
                    }
                    let mut fds = [PollFd::new(c.as_fd(), events)];
                    let ms = u16::try_from(wait.as_millis()).unwrap_or(50);
                    let _ = nix::poll::poll(&mut fds, PollTimeout::from(ms));
                }
                None => std::thread::sleep(
                    wait.min(self.next_attempt.saturating_duration_since(now))
                        .max(Duration::from_millis(1)),
                ),
            }
        }
    }

    /// Shutdown: waits up to `timeout` for the Ack of everything submitted, then sends
    /// `Bye`. True when everything was acknowledged.
    pub fn close(&mut self, timeout: Duration) -> bool {
        let all = self.wait_acked(0, timeout);
        if !all {
            warn!(
                unacked = self.backlog.len(),
                "closing with unacknowledged batches"
            );
        }
        if let Some(mut c) = self.conn.take() {
            if let Ok(bye) = codec::encode(&Message::Bye(Bye {
                kind: ByeKind::Shutdown,
                reason: "helper stopping".into(),
            })) {
                let _ = write_all_timeout(&mut c, &bye, self.cfg.io_timeout);
            }
            let _ = c.flush();
        }
        all
    }
}

/// Writes all of `buf` to a non-blocking stream, waiting in `poll` at most `timeout` in
/// total.
fn write_all_timeout(s: &mut UnixStream, mut buf: &[u8], timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    while !buf.is_empty() {
        match s.write(buf) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "socket closed")),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "server does not read",
                    ));
                }
                let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
                let mut fds = [PollFd::new(s.as_fd(), PollFlags::POLLOUT)];
                nix::poll::poll(&mut fds, PollTimeout::from(ms)).map_err(io::Error::from)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use netwatch_protocol::{Ack, DirCounters, FlowKey};
    use std::net::{IpAddr, Ipv4Addr};
    use std::os::unix::net::UnixListener;

    fn rec(port: u16) -> FlowRecord {
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let (key, side) = FlowKey::from_packet(a, port, b, 80, 6, 0);
        FlowRecord {
            key,
            initiator: side,
            first_ns: 1,
            last_ns: 2,
            ab: DirCounters {
                packets: 1,
                bytes: 60,
                tcp_flags: 2,
            },
            ba: DirCounters::default(),
            end: None,
        }
    }

    fn read_msg(s: &mut UnixStream, buf: &mut Vec<u8>) -> Message {
        loop {
            if let Ok((m, used)) = codec::decode(buf) {
                buf.drain(..used);
                return m;
            }
            let mut chunk = [0u8; 65536];
            let n = s.read(&mut chunk).expect("read");
            assert!(n > 0, "eof");
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn cfg(path: PathBuf, backlog: usize) -> ExporterConfig {
        let mut c = ExporterConfig::new(path, "test".into(), 1, 65535, SourceKind::Replay);
        c.backlog_batches = backlog;
        c.backoff_min = Duration::from_millis(1);
        c.backoff_max = Duration::from_millis(5);
        c
    }

    #[test]
    fn backlog_is_bounded_and_counted_while_the_server_is_away() {
        let dir = std::env::temp_dir().join(format!("nw-export-{}-a", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let mut e = Exporter::new(cfg(dir.join("none.sock"), 3));
        for i in 0..5 {
            e.submit(&[rec(i), rec(i + 100)], CaptureStats::default(), 0, 1);
        }
        assert!(!e.is_connected());
        assert_eq!(e.unacked(), 3);
        let mut s = CaptureStats::default();
        e.fill_stats(&mut s);
        assert_eq!(
            (s.backlog_dropped_batches, s.backlog_dropped_records),
            (2, 4)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn resends_unacked_batches_after_reconnect_and_ends_with_bye() {
        let (dir, path, listener) = listen("b");
        let mut e = Exporter::new(cfg(path.clone(), 100));
        let instance = e.instance();
        e.submit(&[rec(1)], CaptureStats::default(), 0, 1);
        e.submit(&[rec(2)], CaptureStats::default(), 1, 2);
        // First connection: read Hello + 2 batches, ack only seq 1, then hang up.
        let (mut c1, _) = listener.accept().expect("accept");
        let mut buf = Vec::new();
        assert!(matches!(read_msg(&mut c1, &mut buf), Message::Hello(h) if h.instance == instance));
        let seqs: Vec<u64> = (0..2)
            .map(|_| match read_msg(&mut c1, &mut buf) {
                Message::FlowBatch(b) => b.seq,
                m => panic!("{m:?}"),
            })
            .collect();
        assert_eq!(seqs, vec![1, 2]);
        send_ack(&mut c1, instance, 1);
        e.wait_acked(1, Duration::from_secs(5));
        assert_eq!(e.unacked(), 1);
        drop(c1);
        // The exporter notices on the next pump, reconnects and resends seq 2.
        e.submit(&[rec(3)], CaptureStats::default(), 2, 3);
        pump_until_connected(&mut e, Duration::from_secs(5));
        let (mut c2, _) = listener.accept().expect("accept 2");
        let mut buf = Vec::new();
        assert!(matches!(read_msg(&mut c2, &mut buf), Message::Hello(h) if h.instance == instance));
        let mut got = Vec::new();
        while got.len() < 2 {
            e.pump();
            match read_msg(&mut c2, &mut buf) {
                Message::FlowBatch(b) => got.push(b.seq),
                m => panic!("{m:?}"),
            }
        }
        assert_eq!(got, vec![2, 3]);
        send_ack(&mut c2, instance, 3);
        assert!(e.close(Duration::from_secs(5)));
        assert!(matches!(read_msg(&mut c2, &mut buf), Message::Bye(_)));
        assert_eq!(e.counters().acked_seq, 3);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn submit_reads_acks_when_enough_batches_wait_or_enough_time_passed() {
        let (dir, path, listener) = listen("lazy");
        let mut c = cfg(path, 100);
        c.ack_read_every = Duration::from_millis(300);
        let mut e = Exporter::new(c);
        let instance = e.instance();
        e.submit(&[rec(1)], CaptureStats::default(), 0, 1);
        let (mut c1, _) = listener.accept().expect("accept");
        let mut buf = Vec::new();
        assert!(matches!(read_msg(&mut c1, &mut buf), Message::Hello(_)));
        // The server acknowledges every batch at once; submit leaves the Acks unread while
        // fewer than ACK_READ_BACKLOG batches wait and the last read is recent.
        let port = |seq: u64| u16::try_from(seq).expect("small");
        // The server's side of one batch: read batch `seq`, acknowledge it at once.
        let mut serve = |seq: u64| {
            assert!(matches!(read_msg(&mut c1, &mut buf), Message::FlowBatch(b) if b.seq == seq));
            send_ack(&mut c1, instance, seq);
        };
        let mut seq = 1u64;
        loop {
            serve(seq);
            std::thread::sleep(Duration::from_millis(20));
            if seq + 1 == ACK_READ_BACKLOG as u64 {
                break;
            }
            seq += 1;
            e.submit(&[rec(port(seq))], CaptureStats::default(), 0, 1);
            assert_eq!(e.unacked() as u64, seq, "Acks read too early");
        }
        // The batch that makes ACK_READ_BACKLOG: the Acks of all before it are read.
        seq += 1;
        e.submit(&[rec(port(seq))], CaptureStats::default(), 0, 1);
        assert_eq!(e.counters().acked_seq, seq - 1);
        assert_eq!(e.unacked(), 1);
        // The clock rule: one batch waits, but the last read is older than ack_read_every.
        serve(seq);
        std::thread::sleep(Duration::from_millis(350));
        seq += 1;
        e.submit(&[rec(port(seq))], CaptureStats::default(), 0, 1);
        assert_eq!(e.counters().acked_seq, seq - 1);
        assert_eq!(e.unacked(), 1);
        // pump (and so wait_acked and close) always reads.
        serve(seq);
        assert!(e.wait_acked(0, Duration::from_secs(5)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// ~260 KB encoded: more than one socket buffer's worth, so the socket takes it in parts.
    fn big_batch(base: u16) -> Vec<FlowRecord> {
        (0..10_000).map(|i| rec(base.wrapping_add(i))).collect()
    }

    /// A fresh directory `nw-export-<pid>-<tag>` with a listening server socket in it.
    fn listen(tag: &str) -> (PathBuf, PathBuf, UnixListener) {
        let dir = std::env::temp_dir().join(format!("nw-export-{}-{tag}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind");
        (dir, path, listener)
    }

    /// Writes the server's Ack of `seq` for `instance` to `s`.
    fn send_ack(s: &mut UnixStream, instance: u64, seq: u64) {
        s.write_all(&codec::encode(&Message::Ack(Ack { instance, seq })).expect("enc"))
            .expect("ack");
    }

    /// Pumps until the exporter is connected (at most `limit`).
    fn pump_until_connected(e: &mut Exporter, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !e.is_connected() && Instant::now() < deadline {
            e.pump();
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Pumps until every submitted batch is written (at most 10 s).
    fn pump_until_sent(e: &mut Exporter) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while e.has_unsent() && Instant::now() < deadline {
            e.pump();
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The whole messages at the start of `bytes`, and what is left after them.
    fn whole_messages(mut bytes: &[u8]) -> (Vec<Message>, &[u8]) {
        let mut msgs = Vec::new();
        while let Ok((m, used)) = codec::decode(bytes) {
            msgs.push(m);
            bytes = &bytes[used..];
        }
        (msgs, bytes)
    }

    /// Reads `n` FlowBatches (after the Hello) and returns their sequence numbers.
    fn read_batches(c: &mut UnixStream, n: usize) -> Vec<u64> {
        let mut buf = Vec::new();
        assert!(matches!(read_msg(c, &mut buf), Message::Hello(_)));
        (0..n)
            .map(|_| match read_msg(c, &mut buf) {
                Message::FlowBatch(b) => {
                    assert_eq!(b.records.len(), 10_000);
                    b.seq
                }
                m => panic!("{m:?}"),
            })
            .collect()
    }

    #[test]
    fn a_server_that_does_not_read_never_blocks_submit_and_gets_whole_frames_later() {
        let (dir, path, listener) = listen("c");
        let mut e = Exporter::new(cfg(path.clone(), 100));
        // Twelve batches are many times what the socket buffers.
        for i in 0..12 {
            e.submit(&big_batch(i), CaptureStats::default(), 0, 1);
        }
        // Every submit returned with the rest still queued (nothing waits for the server).
        assert!(e.is_connected());
        assert!(e.has_unsent());
        let (mut c, _) = listener.accept().expect("accept");
        let reader = std::thread::spawn(move || read_batches(&mut c, 12));
        pump_until_sent(&mut e);
        // Resumed half-written frames arrive whole and in order.
        assert_eq!(
            reader.join().expect("reader"),
            (1..=12).collect::<Vec<u64>>()
        );
        assert_eq!(e.counters().connection_failures, 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_full_backlog_behind_a_half_written_frame_drops_the_connection_not_the_framing() {
        let (dir, path, listener) = listen("d");
        // A backoff long enough that no reconnect happens while the batches are submitted.
        let mut c = cfg(path.clone(), 2);
        c.backoff_min = Duration::from_millis(300);
        let mut e = Exporter::new(c);
        e.submit(&big_batch(0), CaptureStats::default(), 0, 1);
        let (mut c1, _) = listener.accept().expect("accept");
        for i in 1..6 {
            e.submit(&big_batch(i), CaptureStats::default(), 0, 1);
        }
        assert!(e.counters().connection_failures >= 1);
        let mut s = CaptureStats::default();
        e.fill_stats(&mut s);
        assert_eq!((s.backlog_dropped_batches, e.unacked()), (4, 2));
        // The first connection carried the Hello, whole batches, then a cut one and EOF: the
        // server discards the cut frame, and nothing after it was interleaved.
        let mut bytes = Vec::new();
        c1.read_to_end(&mut bytes).expect("read to eof");
        let (msgs, rest) = whole_messages(&bytes);
        assert!(msgs
            .iter()
            .all(|m| matches!(m, Message::Hello(_) | Message::FlowBatch(_))));
        let whole = msgs.len();
        assert!(
            whole >= 1 && !rest.is_empty(),
            "{whole} messages, {} bytes left",
            rest.len()
        );
        assert!(matches!(
            codec::decode(rest),
            Err(CodecError::Incomplete { .. })
        ));
        // Reconnected, it resends the two batches it kept, whole.
        pump_until_connected(&mut e, Duration::from_secs(10));
        let (mut c2, _) = listener.accept().expect("accept 2");
        let reader = std::thread::spawn(move || read_batches(&mut c2, 2));
        pump_until_sent(&mut e);
        assert_eq!(reader.join().expect("reader"), vec![5, 6]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_ack_covering_a_half_written_batch_keeps_it_until_it_is_out() {
        let (dir, path, listener) = listen("e");
        let mut e = Exporter::new(cfg(path.clone(), 100));
        let instance = e.instance();
        for i in 0..12 {
            e.submit(&big_batch(i), CaptureStats::default(), 0, 1);
        }
        assert!(e.has_unsent());
        // The server claims every batch (as after a reconnect, from an earlier connection)
        // while one is half-written: that one is finished, not dropped mid-stream.
        let (mut c, _) = listener.accept().expect("accept");
        send_ack(&mut c, instance, 12);
        let reader = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            c.read_to_end(&mut bytes).expect("read to eof");
            bytes
        });
        pump_until_sent(&mut e);
        drop(e);
        let bytes = reader.join().expect("reader");
        let (msgs, rest) = whole_messages(&bytes);
        let seqs: Vec<u64> = msgs
            .iter()
            .filter_map(|m| match m {
                Message::FlowBatch(b) => Some(b.seq),
                _ => None,
            })
            .collect();
        assert!(rest.is_empty(), "{} bytes of a cut frame", rest.len());
        assert_eq!(seqs, (1..=12).collect::<Vec<u64>>());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
