//! Live capture: the one privileged startup, in order, then the capture loop.
//!
//! [`run`] reads top to bottom like firecracker's `Env::run`. Each step has its own
//! [`StartupError`] variant and a comment saying why it sits where it does:
//!
//! 1. prepare (no privilege used): resolve `--user`, compile the seccomp policy and the
//!    capture filter, install the SIGTERM/SIGINT flag handler, open `/proc/self/statm`, keep
//!    malloc from ever opening a file (no arena trimming);
//! 2. open one AF_PACKET socket per capture thread: TPACKET_V3, `PACKET_RX_RING`, mmap,
//!    filter, bind, promiscuous mode, fanout (the only steps that need CAP_NET_RAW);
//! 3. connect to the server socket (not fatal: the exporter retries with backoff and the
//!    ring keeps counting meanwhile);
//! 4. clear every capability set (ambient, inheritable, bounding, effective, permitted) and,
//!    when started as root, switch to `--user` (no supplementary groups);
//! 5. set `no_new_privs`;
//! 6. with `--threads N` > 1, spawn the capture threads (they wait at a barrier: nothing is
//!    captured unconfined);
//! 7. apply the seccomp allowlist to every thread (TSYNC), unless `--no-seccomp`;
//! 8. loop: every export interval the flow deltas and statistics go out as one
//!    `FlowBatch`. With one capture thread (the default) this thread captures and exports
//!    itself; with several, each hands its report to the export loop on this thread. On
//!    SIGTERM/SIGINT the flows end (`finish`), the last batch is flushed, the Ack awaited,
//!    `Bye` sent.
//!
//! When to export: at the interval, or up to a quarter interval early when a block has just
//! been read, so the export rides on that wake-up (the ring's retire timeout defaults to
//! the interval: a quiet link's blocks retire once per interval). The poll deadline then
//! allows a quarter interval late, so the next block's wake-up, not the timer, triggers the
//! next export. A wake-up costs tens of microseconds of CPU on a VM; at 50 kfps this takes
//! the helper from ~8 wake-ups a second on two threads to ~3 on one.

use crate::collector::{Batch, Collector};
use crate::flow::TableConfig;
use crate::live::{open_ring, OpenError, OpenSpec, OpenStep, RingConfig, RingSource};
use crate::source::FrameSource;
use crate::sys::packet::SockFilter;
use crate::sys::{privilege, seccomp, signal, usage};
use netwatch_protocol::{CaptureStats, FlowRecord};
use std::io;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::{debug, info, warn};

/// Exit code of the binary when CAP_NET_RAW is missing (documented in `--help`).
pub const EXIT_NO_CAPABILITY: u8 = 4;

/// Environment variable of the test-only hook: when `1`, the export loop calls a syscall
/// that is not on the allowlist (`mkdirat`) right after the first export, so a test can
/// see the kernel kill the helper with SIGSYS. Without seccomp it creates
/// `$NETWATCH_TEST_FORBIDDEN_PATH` (default `/tmp/netwatch-forbidden-syscall`) instead.
/// When `inject`, it writes a frame to the packet socket's descriptor instead (refused too:
/// a compromised helper cannot inject frames).
pub const FORBIDDEN_SYSCALL_ENV: &str = "NETWATCH_TEST_FORBIDDEN_SYSCALL";

/// Default export interval, ms: one `FlowBatch` every half second keeps the dashboard's
/// updates sub-second.
pub const DEFAULT_EXPORT_INTERVAL_MS: u64 = 500;

/// Live-capture flags (flattened into the command line by `cli`).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct LiveFlags {
    /// Capture threads: N > 1 opens N rings in a PACKET_FANOUT hash group (one flow always
    /// lands on the same thread).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: u16,
    /// Put the interface into promiscuous mode while capturing.
    #[arg(long)]
    pub promisc: bool,
    /// Capture filter in tcpdump syntax (compiled with `tcpdump -ddd`, attached in the kernel).
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Ring block size in bytes (multiple of 4096).
    #[arg(long, value_name = "BYTES", default_value_t = RingConfig::DEFAULT_BLOCK_SIZE)]
    pub ring_block_size: u32,
    /// Ring blocks per thread.
    #[arg(long, value_name = "N", default_value_t = RingConfig::DEFAULT_BLOCK_NR)]
    pub ring_blocks: u32,
    /// Nominal ring frame size (multiple of 16, divides the block size).
    #[arg(long, value_name = "BYTES", default_value_t = RingConfig::DEFAULT_FRAME_SIZE)]
    pub ring_frame_size: u32,
    /// Retire timeout of a partly filled ring block, ms [default: the export interval, at
    /// most 1000].
    #[arg(long, value_name = "MS")]
    pub ring_retire_ms: Option<u32>,
    /// Export interval in ms (one FlowBatch per interval).
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_EXPORT_INTERVAL_MS)]
    pub export_interval: u64,
    /// Unprivileged user to switch to when started as root (name or uid). Required as root.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Do not apply the seccomp allowlist (debugging only; logs a warning).
    #[arg(long)]
    pub no_seccomp: bool,
    /// Unacknowledged batches kept for resending after a reconnect; older ones are dropped
    /// and counted (backlog_dropped_*).
    #[arg(long, value_name = "BATCHES", default_value_t = 240)]
    pub instance_backlog: usize,
}

impl Default for LiveFlags {
    fn default() -> Self {
        LiveFlags {
            threads: 1,
            promisc: false,
            filter: None,
            ring_block_size: RingConfig::DEFAULT_BLOCK_SIZE,
            ring_blocks: RingConfig::DEFAULT_BLOCK_NR,
            ring_frame_size: RingConfig::DEFAULT_FRAME_SIZE,
            ring_retire_ms: None,
            export_interval: DEFAULT_EXPORT_INTERVAL_MS,
            user: None,
            no_seccomp: false,
            instance_backlog: 240,
        }
    }
}

impl LiveFlags {
    /// The ring geometry.
    #[must_use]
    pub fn ring(&self) -> RingConfig {
        RingConfig {
            block_size: self.ring_block_size,
            block_nr: self.ring_blocks,
            frame_size: self.ring_frame_size,
            retire_ms: self
                .ring_retire_ms
                .unwrap_or_else(|| RingConfig::retire_ms_for(self.export_interval)),
        }
    }
}

/// Everything the live mode needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Interface to capture on.
    pub interface: String,
    /// Server socket.
    pub socket: PathBuf,
    /// Flow table of each capture thread.
    pub table: TableConfig,
    /// The live flags.
    pub flags: LiveFlags,
}

/// One variant per startup step (and one for the loop).
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A flag value is unusable.
    #[error("{0}")]
    Config(String),
    /// `--user` does not resolve.
    #[error("--user: {0}")]
    User(String),
    /// The process is root and no `--user` was given.
    #[error("running as root needs --user NAME: the helper never keeps uid 0 after startup")]
    RootWithoutUser,
    /// The seccomp policy does not compile.
    #[error("seccomp policy: {0}")]
    SeccompPolicy(#[source] seccomp::SeccompError),
    /// The capture filter does not compile.
    #[error("{0}")]
    Filter(String),
    /// The signal handlers could not be installed.
    #[error("installing SIGTERM/SIGINT handlers: {0}")]
    Signals(#[source] io::Error),
    /// No CAP_NET_RAW: the socket cannot be opened.
    #[error(
        "cannot open AF_PACKET socket on {interface}: {source}; needs CAP_NET_RAW: run \
         `sudo setcap cap_net_raw,cap_setpcap+ep {exe}` or use the systemd unit \
         (deploy/netwatch-capture.service)"
    )]
    NoCapability {
        /// Interface.
        interface: String,
        /// This executable.
        exe: String,
        /// The EPERM.
        #[source]
        source: io::Error,
    },
    /// Another step of opening the ring failed.
    #[error("opening the capture ring on {interface}: {source}")]
    OpenRing {
        /// Interface.
        interface: String,
        /// The step and OS error.
        #[source]
        source: OpenError,
    },
    /// Dropping capabilities or switching user failed.
    #[error("dropping privileges: {0}")]
    Privilege(#[source] privilege::PrivilegeError),
    /// Setting no_new_privs failed.
    #[error("setting no_new_privs: {0}")]
    NoNewPrivs(#[source] privilege::PrivilegeError),
    /// A capture thread could not be spawned.
    #[error("spawning capture thread: {0}")]
    Spawn(#[source] io::Error),
    /// The kernel refused the seccomp filter.
    #[error("applying seccomp: {0}")]
    ApplySeccomp(#[source] seccomp::SeccompError),
    /// The capture loop failed (poll error, a capture thread died).
    #[error("capture loop: {0}")]
    Loop(String),
}

impl StartupError {
    /// Whether this is the missing-CAP_NET_RAW case (exit code [`EXIT_NO_CAPABILITY`]).
    #[must_use]
    pub fn is_missing_capability(&self) -> bool {
        matches!(self, StartupError::NoCapability { .. })
    }
}

/// Where batches go: the exporter (server socket client with backlog and reconnect).
///
/// `submit` never blocks for long: it queues the batch and tries to send; a missing server
/// only grows the backlog (bounded, loss counted into `backlog_dropped_*`).
pub trait BatchSink {
    /// Queues and tries to send one batch (records are deltas; the caller keeps the
    /// buffer for the next interval).
    fn submit(
        &mut self,
        records: &[FlowRecord],
        stats: CaptureStats,
        interval_start_ns: u64,
        interval_end_ns: u64,
    );
    /// Fills the exporter's own counters (`backlog_dropped_*`) into `stats`.
    fn fill_stats(&self, stats: &mut CaptureStats);
    /// Shutdown: waits up to `timeout` for the Ack of everything sent, then sends Bye.
    fn close(&mut self, timeout: Duration);
    /// Tries to connect (and say Hello) right away, without waiting for the first batch.
    /// Not fatal when the server is absent: `submit` keeps retrying with backoff.
    fn connect_now(&mut self) {}
}

impl BatchSink for crate::export::Exporter {
    fn submit(
        &mut self,
        records: &[FlowRecord],
        stats: CaptureStats,
        interval_start_ns: u64,
        interval_end_ns: u64,
    ) {
        crate::export::Exporter::submit(self, records, stats, interval_start_ns, interval_end_ns);
    }
    fn fill_stats(&self, stats: &mut CaptureStats) {
        crate::export::Exporter::fill_stats(self, stats);
    }
    fn close(&mut self, timeout: Duration) {
        if !crate::export::Exporter::close(self, timeout) {
            warn!("closing with batches the server has not acknowledged");
        }
    }
    fn connect_now(&mut self) {
        crate::export::Exporter::pump(self);
        if !crate::export::Exporter::is_connected(self) {
            warn!("server socket not reachable yet; retrying with backoff while capturing");
        }
    }
}

/// Snap length of live capture: the ring holds whole frames (TPACKET_V3 frames are
/// variable-length, bounded by the block size).
pub const LIVE_SNAPLEN: u32 = 262_144;

/// What a finished run did (logged by the binary).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Frames seen by the parsers.
    pub frames: u64,
    /// Frames the kernel dropped.
    pub kernel_drops: u64,
    /// Batches handed to the exporter.
    pub batches: u64,
}

fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A capture thread's report for one export interval.
#[derive(Debug)]
struct Report {
    worker: usize,
    records: Vec<FlowRecord>,
    stats: CaptureStats,
    last: bool,
}

/// Runs live capture until SIGTERM/SIGINT. `connect` builds the exporter (step 3) once the
/// rings are open; it gets the instance's interface name.
///
/// # Errors
/// [`StartupError`] for the first step that fails.
pub fn run<S: BatchSink>(
    cfg: &RunConfig,
    connect: impl FnOnce() -> S,
) -> Result<RunSummary, StartupError> {
    let flags = &cfg.flags;
    if flags.threads == 0 || flags.threads > 16 {
        return Err(StartupError::Config(
            "--threads must be between 1 and 16".into(),
        ));
    }
    if flags.export_interval < 10 || flags.export_interval > 60_000 {
        return Err(StartupError::Config(
            "--export-interval must be between 10 and 60000 ms".into(),
        ));
    }
    let ring = flags.ring();
    ring.to_req().map_err(StartupError::Config)?;

    // Step 1, prepare. Resolve the user first: a root start without a usable --user must
    // fail before anything privileged happens.
    let root = nix::unistd::geteuid().is_root();
    let user = match &flags.user {
        Some(u) => Some(privilege::lookup_user(u).map_err(StartupError::User)?),
        None => None,
    };
    if root && user.is_none_or(|(uid, _)| uid == 0) {
        return Err(StartupError::RootWithoutUser);
    }
    // The policy is compiled while everything is still possible, so a broken policy file
    // fails the start rather than the capture.
    let policy = seccomp::compile().map_err(StartupError::SeccompPolicy)?;
    // tcpdump compiles the filter unprivileged (as --user when we are root).
    let filter: Option<Vec<SockFilter>> = match &flags.filter {
        Some(expr) => Some(
            crate::live::compile_filter(expr, if root { user } else { None })
                .map_err(StartupError::Filter)?,
        ),
        None => None,
    };
    // Handlers before seccomp: sigaction is not on the allowlist, rt_sigreturn is.
    signal::install_stop_handlers().map_err(StartupError::Signals)?;
    // /proc/self/statm is opened now: under seccomp there is no open(), only pread().
    let usage = usage::Usage::open();
    // Nor may malloc open a file later (glibc does when it first shrinks a thread's arena).
    if !seccomp::keep_allocator_off_the_file_system() {
        warn!("mallopt(M_TRIM_THRESHOLD) refused: a shrinking malloc arena may trip seccomp");
    }

    // Step 2, the rings: the only steps that need CAP_NET_RAW, so they come first and the
    // capability can go right after. Filter before bind, fanout after bind (see open_ring).
    let fanout_group = (flags.threads > 1).then(|| (std::process::id() & 0xffff) as u16);
    let mut sources = Vec::with_capacity(usize::from(flags.threads));
    for i in 0..flags.threads {
        let spec = OpenSpec {
            interface: &cfg.interface,
            ring,
            promisc: flags.promisc,
            filter: filter.as_deref(),
            fanout_group,
            // A fixed descriptor the seccomp policy refuses writes to: no frame injection.
            fd: Some(crate::sys::packet::PACKET_FD_BASE + i32::from(i)),
        };
        let src = open_ring(&spec).map_err(|e| open_error(&cfg.interface, e))?;
        sources.push(src);
    }
    info!(interface = %cfg.interface, threads = flags.threads, ring_bytes = u64::from(ring.block_size) * u64::from(ring.block_nr), "rings open");

    // Step 3, the server connection: opened while we may still reach any path; a server
    // that is not up yet is not fatal (the exporter reconnects with backoff, as the user we
    // switch to, so the socket must be group-accessible to it).
    let mut sink = connect();
    sink.connect_now();

    // Step 4, capabilities and user: after every privileged open, before anything that
    // reads untrusted bytes (the ring) runs.
    let report = privilege::drop_all(user).map_err(StartupError::Privilege)?;
    if report.bounding_kept {
        warn!("bounding set kept: CAP_SETPCAP was not available to clear it (harmless once no_new_privs is set; give the helper cap_setpcap to clear it)");
    }
    if let Some((uid, gid)) = report.switched_to {
        info!(uid, gid, "switched user");
    }

    // Step 5, no_new_privs: before the threads exist so they inherit it, and required for an
    // unprivileged seccomp filter.
    privilege::set_no_new_privs().map_err(StartupError::NoNewPrivs)?;

    // Step 6, capture threads: spawned now so clone() need not be on the allowlist; they wait
    // at the barrier until the filter covers them.
    // Two barriers: `ready` once a thread has finished its own setup (name, signal stack,
    // malloc arena, flow table: syscalls the allowlist need not carry), `go` once the filter
    // is on.
    let interval = Duration::from_millis(flags.export_interval);
    let drain_grace = Duration::from_millis(u64::from(ring.retire_ms) * 2 + 20);
    if sources.len() == 1 {
        // One capture thread: this thread captures and exports, so an export needs no
        // hand-over to another thread (no extra wake-up: each costs tens of microseconds on
        // a VM). The flow table is allocated before seccomp, as on a spawned thread.
        let src = sources.pop().ok_or(StartupError::Loop("no ring".into()))?;
        let collector = Collector::new(cfg.table);
        apply_seccomp(flags, &policy)?;
        let mut step = ExportStep::new(1, &usage, &mut sink);
        let res = capture_thread(0, src, collector, interval, drain_grace, &mut |r| {
            let spare = step.take(r);
            step.export();
            Some(spare)
        });
        let summary = step.close();
        return res.map(|()| summary).map_err(StartupError::Loop);
    }
    let ready = Arc::new(Barrier::new(sources.len() + 1));
    let go = Arc::new(Barrier::new(sources.len() + 1));
    let (tx, rx) = mpsc::sync_channel::<Report>(sources.len() * 4);
    let mut handles = Vec::with_capacity(sources.len());
    for (i, src) in sources.into_iter().enumerate() {
        let (r, g, t, table) = (Arc::clone(&ready), Arc::clone(&go), tx.clone(), cfg.table);
        let h = std::thread::Builder::new()
            .name(format!("capture-{i}"))
            .spawn(move || {
                let collector = Collector::new(table);
                r.wait();
                g.wait();
                capture_thread(i, src, collector, interval, drain_grace, &mut |rep| {
                    t.send(rep).is_ok().then(Vec::new)
                })
            })
            .map_err(StartupError::Spawn)?;
        handles.push(h);
    }
    drop(tx);

    ready.wait();

    // Step 7, seccomp on every thread (TSYNC) before any frame is read.
    apply_seccomp(flags, &policy)?;
    go.wait();

    // Step 8, the export loop.
    let summary = export_loop(
        &rx,
        ExportStep::new(handles.len(), &usage, &mut sink),
        interval,
    );
    for h in handles {
        if h.join().is_err() {
            warn!("a capture thread panicked");
        }
    }
    summary
}

fn apply_seccomp(flags: &LiveFlags, policy: &seccompiler::BpfProgram) -> Result<(), StartupError> {
    if flags.no_seccomp {
        warn!("--no-seccomp: the seccomp allowlist is NOT applied; use this for debugging only");
    } else {
        seccomp::apply(policy).map_err(StartupError::ApplySeccomp)?;
        info!("seccomp allowlist applied");
    }
    Ok(())
}

fn open_error(interface: &str, e: OpenError) -> StartupError {
    if e.step == OpenStep::Socket && e.source.kind() == io::ErrorKind::PermissionDenied {
        let exe = std::env::current_exe()
            .map_or_else(|_| "netwatch-capture".into(), |p| p.display().to_string());
        return StartupError::NoCapability {
            interface: interface.to_string(),
            exe,
            source: e.source,
        };
    }
    StartupError::OpenRing {
        interface: interface.to_string(),
        source: e,
    }
}

/// Frames handled between two looks at the clock and the stop flag.
const FRAMES_PER_CHECK: u32 = 4096;

/// One capture thread's loop: frames into the collector, and every interval a [`Report`]
/// to `report`, which returns an empty buffer for the next drain when the report was
/// delivered and `None` when nobody takes reports any more (the thread then ends).
fn capture_thread(
    worker: usize,
    mut src: RingSource,
    mut collector: Collector,
    interval: Duration,
    drain_grace: Duration,
    report: &mut dyn FnMut(Report) -> Option<Vec<FlowRecord>>,
) -> Result<(), String> {
    let interval_ns = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
    // An export may ride on a block wake-up that comes up to a quarter interval early, so
    // a busy ring (whose blocks retire once per interval) needs no wake-up of its own for
    // exporting; the poll deadline then allows the same quarter late.
    let slack = interval_ns / 4;
    let mut due = realtime_ns().saturating_add(interval_ns);
    let mut block_paced = false;
    let mut batch = Batch::default();
    // The drain buffer: handed over with each report and handed back empty (with its
    // capacity) when the report was delivered, so a steady flow count allocates nothing.
    let mut records: Vec<FlowRecord> = Vec::new();
    loop {
        let stop = signal::stop_requested();
        if stop {
            // Frames the kernel holds in a partly filled block reach user space only when
            // the block retires: keep reading for two retire timeouts so what was on the
            // wire before SIGTERM is counted and flushed.
            drain_until(
                &mut src,
                &mut collector,
                &mut batch,
                Instant::now() + drain_grace,
            );
        }
        let mut n = 0u32;
        loop {
            match src.next() {
                Ok(Some(frame)) => {
                    let ts = frame.ts_ns;
                    batch.push(&mut collector, &frame, ts, |_, _| {});
                    n += 1;
                    if n >= FRAMES_PER_CHECK {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    signal::request_stop();
                    return Err(e.to_string());
                }
            }
        }
        // Nothing stays queued across a tick, a drain or a wait.
        batch.flush(&mut collector, |_, _| {});
        let drained = n < FRAMES_PER_CHECK;
        let now = realtime_ns();
        let rides = drained && n > 0 && now.saturating_add(slack) >= due;
        if now >= due || rides || stop {
            collector.expire(now);
            if stop {
                collector.finish(&mut records);
            } else {
                collector.drain_changes(&mut records);
            }
            let mut stats = collector.stats();
            match src.kernel_counters() {
                Ok(k) => {
                    stats.kernel_drops = k.drops;
                    stats.kernel_freezes = k.freezes;
                }
                Err(e) => warn!(worker, "PACKET_STATISTICS: {e}"),
            }
            let back = report(Report {
                worker,
                records: std::mem::take(&mut records),
                stats,
                last: stop,
            });
            let delivered = back.is_some();
            records = back.unwrap_or_default();
            if !delivered || stop {
                debug!(
                    worker,
                    ring_errors = src.ring_errors(),
                    blocks = src.blocks(),
                    "capture thread ends"
                );
                return Ok(());
            }
            block_paced = n > 0;
            due = now.saturating_add(interval_ns);
        }
        if drained {
            // Nothing (more) waiting: sleep in poll until a block retires, the export is due
            // or a signal arrives (poll returns EINTR: no SA_RESTART). No shorter timeout:
            // every wake-up costs tens of microseconds of CPU on a VM, and a signal that
            // lands on another thread is seen at the deadline (then the drain still reads
            // the ring).
            let deadline = if block_paced {
                due.saturating_add(slack)
            } else {
                due
            };
            let wait_ms = deadline.saturating_sub(realtime_ns()).div_ceil(1_000_000);
            let wait_ms = i32::try_from(wait_ms.clamp(1, 1000)).unwrap_or(1000);
            if let Err(e) = src.wait(wait_ms) {
                signal::request_stop();
                return Err(format!("poll: {e}"));
            }
        }
    }
}

/// Processes frames until `deadline` (stop path: the ring's last blocks).
fn drain_until(
    src: &mut RingSource,
    collector: &mut Collector,
    batch: &mut Batch,
    deadline: Instant,
) {
    while Instant::now() < deadline {
        while let Ok(Some(frame)) = src.next() {
            let ts = frame.ts_ns;
            batch.push(collector, &frame, ts, |_, _| {});
        }
        batch.flush(collector, |_, _| {});
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_millis();
        if left == 0 || src.wait(i32::try_from(left.min(20)).unwrap_or(20)).is_err() {
            break;
        }
    }
}

/// The export side: adds up the capture threads' statistics, samples CPU and RSS and hands
/// one interval's records to the sink. Driven by the export loop (several capture threads)
/// or inline by the one capture thread.
struct ExportStep<'a, S: BatchSink> {
    usage: &'a usage::Usage,
    sink: &'a mut S,
    per_worker: Vec<CaptureStats>,
    pending: Vec<FlowRecord>,
    interval_start: u64,
    summary: RunSummary,
    hook: String,
    /// The last CPU/RSS sample and when it was taken (see [`USAGE_EVERY_NS`]).
    usage_sample: Option<(u64, usage::Sample)>,
    /// A capture thread sent its last report: the next export is the final one.
    finishing: bool,
}

/// CPU time and RSS are sampled (`getrusage` and a `pread` of statm) at most this often,
/// and for the final batch; batches in between repeat the last sample. Both are cumulative
/// or slow-moving figures, while the two system calls, on a process that slept since the
/// last export, cost 12-18 us of CPU per export on a VM (measured).
const USAGE_EVERY_NS: u64 = 2_000_000_000;

/// Whether an export at `now` (wall clock) takes a new CPU/RSS sample, the last one having
/// been taken at `last` (None: never): the first export, the final one, every
/// [`USAGE_EVERY_NS`], and after the clock stepped back (which restarts the period).
fn usage_due(last: Option<u64>, now: u64, finishing: bool) -> bool {
    match last {
        None => true,
        Some(at) => finishing || now < at || now - at >= USAGE_EVERY_NS,
    }
}

impl<'a, S: BatchSink> ExportStep<'a, S> {
    fn new(workers: usize, usage: &'a usage::Usage, sink: &'a mut S) -> Self {
        ExportStep {
            usage,
            sink,
            per_worker: vec![CaptureStats::default(); workers],
            pending: Vec::new(),
            interval_start: realtime_ns(),
            summary: RunSummary::default(),
            hook: std::env::var(FORBIDDEN_SYSCALL_ENV).unwrap_or_default(),
            usage_sample: None,
            finishing: false,
        }
    }

    /// Takes one thread's report (its records join the next export) and returns an
    /// empty buffer for the thread's next drain: the one the last export emptied when the
    /// report's records could simply take its place, so the two buffers alternate and keep
    /// their capacity.
    fn take(&mut self, mut r: Report) -> Vec<FlowRecord> {
        if self.pending.is_empty() {
            std::mem::swap(&mut self.pending, &mut r.records);
        } else {
            self.pending.append(&mut r.records);
        }
        self.per_worker[r.worker] = r.stats;
        self.finishing |= r.last;
        r.records
    }

    /// Sends one batch: the records taken since the last export and the summed statistics.
    fn export(&mut self) {
        let now = realtime_ns();
        let mut stats = CaptureStats::default();
        for s in &self.per_worker {
            stats += s;
        }
        let u = match self.usage_sample {
            Some((at, u)) if !usage_due(Some(at), now, self.finishing) => u,
            _ => {
                let u = self.usage.sample();
                self.usage_sample = Some((now, u));
                u
            }
        };
        stats.cpu_user_ns = u.user_ns;
        stats.cpu_system_ns = u.system_ns;
        stats.rss_bytes = u.rss_bytes;
        self.sink.fill_stats(&mut stats);
        // Records are deltas: the server adds up every record of a key, so two threads'
        // records of one key (fanout keeps a flow on one thread, but e.g. a fragment may
        // land elsewhere) need no merging here.
        self.summary.frames = stats.frames;
        self.summary.kernel_drops = stats.kernel_drops;
        self.summary.batches += 1;
        self.sink
            .submit(&self.pending, stats, self.interval_start, now);
        self.pending.clear();
        self.interval_start = now;
        if self.hook == "1" {
            // Test-only hook: see FORBIDDEN_SYSCALL_ENV. Under seccomp the kernel kills
            // the process here with SIGSYS.
            let path = std::env::var("NETWATCH_TEST_FORBIDDEN_PATH")
                .unwrap_or_else(|_| "/tmp/netwatch-forbidden-syscall".into());
            let c = std::ffi::CString::new(path).unwrap_or_default();
            let r = seccomp::forbidden_syscall(&c);
            warn!("forbidden syscall returned {r:?} (seccomp is off)");
        } else if self.hook == "inject" {
            // Test-only hook: a write to the packet socket (frame injection) is refused.
            let r = seccomp::write_to_packet_socket();
            warn!("write to the packet socket returned {r:?} (seccomp is off)");
        }
    }

    /// Shutdown: flushes the sink and logs the totals.
    fn close(self) -> RunSummary {
        self.sink.close(Duration::from_secs(2));
        let summary = self.summary;
        info!(
            frames = summary.frames,
            kernel_drops = summary.kernel_drops,
            batches = summary.batches,
            "capture stopped"
        );
        summary
    }
}

/// Several capture threads: every export interval each hands its report over the channel;
/// one batch goes out once all have reported (or two intervals passed: a stalled thread
/// does not stop the others' exports).
fn export_loop<S: BatchSink>(
    rx: &mpsc::Receiver<Report>,
    mut step: ExportStep<'_, S>,
    interval: Duration,
) -> Result<RunSummary, StartupError> {
    let workers = step.per_worker.len();
    let mut reported = vec![false; workers];
    let mut finished = vec![false; workers];
    let mut last_export = Instant::now();
    let mut failure = None;
    loop {
        // Reports drive the exports (every interval); the timeout only catches a stalled
        // capture thread (the `due` rule below), so it does not wake this thread between
        // reports.
        match rx.recv_timeout(interval * 2) {
            Ok(r) => {
                reported[r.worker] = true;
                finished[r.worker] |= r.last;
                step.take(r);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                if !finished.iter().all(|f| *f) {
                    failure = Some("a capture thread ended without its final report".to_string());
                }
                finished.iter_mut().for_each(|f| *f = true);
            }
        }
        let all_done = finished.iter().all(|f| *f);
        let due = reported.iter().all(|r| *r) || last_export.elapsed() >= interval * 2;
        if due || all_done {
            step.export();
            last_export = Instant::now();
            reported.iter_mut().for_each(|r| *r = false);
        }
        if all_done {
            break;
        }
    }
    let summary = step.close();
    match failure {
        Some(f) => Err(StartupError::Loop(f)),
        None => Ok(summary),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_default_to_a_valid_ring_and_half_second_exports() {
        let f = LiveFlags::default();
        assert!(f.ring().to_req().is_ok());
        assert_eq!(f.export_interval, 500);
        // The retire timeout follows the export interval unless given.
        assert_eq!(f.ring().retire_ms, RingConfig::DEFAULT_RETIRE_MS);
        assert_eq!(RingConfig::DEFAULT_RETIRE_MS, 500);
        let fast = LiveFlags {
            export_interval: 100,
            ..LiveFlags::default()
        };
        assert_eq!(fast.ring().retire_ms, 100);
        let slow = LiveFlags {
            export_interval: 60_000,
            ..LiveFlags::default()
        };
        assert_eq!(slow.ring().retire_ms, 1000);
        let given = LiveFlags {
            ring_retire_ms: Some(20),
            ..fast
        };
        assert_eq!(given.ring().retire_ms, 20);
    }

    #[test]
    fn cpu_and_rss_are_sampled_first_last_and_every_two_seconds() {
        let t = 1_700_000_000_000_000_000u64;
        assert!(usage_due(None, t, false));
        assert!(!usage_due(Some(t), t + 500_000_000, false));
        assert!(!usage_due(Some(t), t + USAGE_EVERY_NS - 1, false));
        assert!(usage_due(Some(t), t + USAGE_EVERY_NS, false));
        // The final batch carries a fresh sample, however recent the last one.
        assert!(usage_due(Some(t), t + 1, true));
        // A wall clock that stepped back (say by an hour) samples at once, rather than
        // repeating an old sample until it has caught up.
        assert!(usage_due(Some(t), t - 3_600_000_000_000, false));
    }

    /// Records the batches it is handed.
    #[derive(Default)]
    struct Collect(Vec<Vec<FlowRecord>>);

    impl BatchSink for Collect {
        fn submit(&mut self, records: &[FlowRecord], _: CaptureStats, _: u64, _: u64) {
            self.0.push(records.to_vec());
        }
        fn fill_stats(&self, _: &mut CaptureStats) {}
        fn close(&mut self, _: Duration) {}
    }

    fn record(port: u16) -> FlowRecord {
        use netwatch_protocol::{DirCounters, FlowKey, Side};
        use std::net::{IpAddr, Ipv4Addr};
        FlowRecord {
            key: FlowKey {
                addr_a: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                addr_b: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                port_a: port,
                port_b: 9,
                proto: 17,
                vlan: 0,
            },
            initiator: Side::A,
            first_ns: 1,
            last_ns: 2,
            ab: DirCounters {
                packets: 1,
                bytes: 64,
                tcp_flags: 0,
            },
            ba: DirCounters::default(),
            end: None,
        }
    }

    #[test]
    fn export_step_sends_each_interval_and_hands_the_drain_buffers_back() {
        let usage = usage::Usage::open();
        let mut sink = Collect::default();
        let mut step = ExportStep::new(2, &usage, &mut sink);
        let report = |worker, records: Vec<FlowRecord>| Report {
            worker,
            records,
            stats: CaptureStats::default(),
            last: false,
        };
        // Interval 1: one thread's records; the buffer it gets back is empty.
        let mut first = Vec::with_capacity(64);
        first.extend([record(1), record(2)]);
        let first_ptr = first.as_ptr();
        let spare = step.take(report(0, first));
        assert!(spare.is_empty());
        step.export();
        // Interval 2: the records of two threads go out together, in order, and the thread
        // whose records replaced the emptied buffer gets that buffer back (capacity kept):
        // two buffers alternate, so steady intervals allocate nothing.
        let back = step.take(report(0, vec![record(3)]));
        assert!(back.is_empty());
        assert_eq!((back.as_ptr(), back.capacity()), (first_ptr, 64));
        let other = step.take(report(1, vec![record(4), record(5)]));
        assert!(other.is_empty());
        step.export();
        // Interval 3: nothing changed; still one batch (the statistics).
        step.export();
        let ports = |b: &Vec<FlowRecord>| b.iter().map(|r| r.key.port_a).collect::<Vec<_>>();
        let sent: Vec<Vec<u16>> = sink.0.iter().map(ports).collect();
        assert_eq!(sent, vec![vec![1, 2], vec![3, 4, 5], vec![]]);
    }

    #[test]
    fn a_root_start_without_user_is_refused_before_anything_opens() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: needs root");
            return;
        }
        let cfg = RunConfig {
            interface: "lo".into(),
            socket: "/nonexistent".into(),
            table: TableConfig::default(),
            flags: LiveFlags::default(),
        };
        struct Never;
        impl BatchSink for Never {
            fn submit(&mut self, _: &[FlowRecord], _: CaptureStats, _: u64, _: u64) {
                unreachable!("no batch before startup")
            }
            fn fill_stats(&self, _: &mut CaptureStats) {}
            fn close(&mut self, _: Duration) {}
        }
        let r = run(&cfg, || Never);
        assert!(matches!(r, Err(StartupError::RootWithoutUser)), "{r:?}");
    }
}
