//! Replay: `--read FILE --connect SOCKET [--pace realtime|fast]` streams a capture's flows
//! to the server as real `FlowBatch`es, so the server can be tested without privileges.
//!
//! Frames go through the same [`Collector`] as live capture, driven by the capture's own
//! timestamps. Every [`ReplayOptions::interval_ns`] of *capture* time (`--export-interval`,
//! default 500 ms) the
//! changed flows are drained and submitted with that interval's capture-time bounds; the
//! helper announces `SourceKind::Replay`, so the server keeps the capture's time base.
//! `realtime` sleeps so that intervals leave at their capture-time spacing; `fast` sends as
//! fast as the server acknowledges (at most [`ReplayOptions::max_unacked`] batches in
//! flight). At the end every flow is ended (`Shutdown`), the last batch is sent, its Ack
//! awaited, and `Bye` sent.

use crate::cli::{Pace, ReplayConfig};
use crate::collector::Collector;
use crate::export::{Exporter, ExporterConfig};
use crate::source::{FrameSource, PcapFileSource, SourceError, LINKTYPE_ETHERNET};
use netwatch_protocol::{FlowRecord, SourceKind};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Replay tuning beyond the command line.
#[derive(Debug, Clone, Copy)]
pub struct ReplayOptions {
    /// Capture time per batch, ns (default 500 ms).
    pub interval_ns: u64,
    /// Batches in flight before `fast` waits for Acks.
    pub max_unacked: usize,
    /// How long to wait for the first connection and for the final Ack.
    pub connect_timeout: Duration,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            interval_ns: 500_000_000,
            max_unacked: 32,
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Frames read.
    pub frames: u64,
    /// Batches submitted.
    pub batches: u64,
    /// Records submitted.
    pub records: u64,
}

/// Replay errors.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// The capture could not be read.
    #[error("{path}: {source}")]
    Source {
        /// The file.
        path: String,
        /// Cause.
        source: SourceError,
    },
    /// The server never accepted the connection.
    #[error("cannot connect to the server at {0}")]
    Connect(String),
    /// The server did not acknowledge everything in time.
    #[error("the server did not acknowledge {0} batch(es) in time")]
    Unacknowledged(usize),
}

/// Runs a replay with default options and the configured export interval.
///
/// # Errors
/// See [`ReplayError`].
pub fn run(cfg: &ReplayConfig) -> Result<ReplaySummary, ReplayError> {
    let opts = ReplayOptions {
        interval_ns: cfg.export_interval_ms.saturating_mul(1_000_000),
        ..ReplayOptions::default()
    };
    run_with(cfg, opts)
}

/// Runs a replay.
///
/// # Errors
/// See [`ReplayError`].
pub fn run_with(cfg: &ReplayConfig, opts: ReplayOptions) -> Result<ReplaySummary, ReplayError> {
    let shown = cfg.path.display().to_string();
    let wrap = |source| ReplayError::Source {
        path: shown.clone(),
        source,
    };
    if cfg.path.as_os_str() == "-" {
        let stdin = std::io::stdin().lock();
        let mut src = PcapFileSource::new(stdin).map_err(wrap)?;
        replay(&mut src, cfg, opts, "stdin").map_err(|e| remap(e, &shown))
    } else {
        let mut src = PcapFileSource::open(&cfg.path).map_err(wrap)?;
        let name = cfg
            .path
            .file_name()
            .map_or_else(|| shown.clone(), |n| n.to_string_lossy().into_owned());
        replay(&mut src, cfg, opts, &name).map_err(|e| remap(e, &shown))
    }
}

fn remap(e: ReplayError, path: &str) -> ReplayError {
    match e {
        ReplayError::Source { source, .. } => ReplayError::Source {
            path: path.to_string(),
            source,
        },
        other => other,
    }
}

/// Replays any frame source (the core of [`run`], usable with an in-memory source).
///
/// # Errors
/// See [`ReplayError`].
pub fn replay<S: FrameSource>(
    src: &mut S,
    cfg: &ReplayConfig,
    opts: ReplayOptions,
    name: &str,
) -> Result<ReplaySummary, ReplayError> {
    let err = |source| ReplayError::Source {
        path: name.to_string(),
        source,
    };
    if src.link_type() != LINKTYPE_ETHERNET {
        let lt = src.link_type();
        return Err(err(SourceError::UnsupportedLinkType {
            link_type: lt,
            name: crate::source::link_type_name(lt),
        }));
    }
    let ecfg = ExporterConfig::new(
        cfg.socket.clone(),
        name.to_string(),
        src.link_type(),
        src.snaplen(),
        SourceKind::Replay,
    );
    let mut exporter = Exporter::new(ecfg);
    // Fail early when no server is there at all.
    let deadline = Instant::now() + opts.connect_timeout;
    while !exporter.is_connected() {
        exporter.pump();
        if exporter.is_connected() {
            break;
        }
        if Instant::now() >= deadline {
            return Err(ReplayError::Connect(cfg.socket.display().to_string()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let interval = opts.interval_ns.max(1);
    let mut collector = Collector::new(cfg.table);
    let mut summary = ReplaySummary::default();
    let mut records: Vec<FlowRecord> = Vec::new();
    let mut start: Option<(u64, Instant)> = None; // first capture ts, wall time then
    let mut interval_start = 0u64;
    let mut latest = 0u64;

    let flush = |collector: &mut Collector,
                 exporter: &mut Exporter,
                 records: &mut Vec<FlowRecord>,
                 from: u64,
                 to: u64,
                 summary: &mut ReplaySummary| {
        collector.expire(to);
        collector.drain_changes(records);
        summary.batches += 1;
        summary.records += records.len() as u64;
        exporter.submit(records, collector.stats(), from, to);
        records.clear();
        if cfg.pace == Pace::Fast {
            exporter.wait_acked(opts.max_unacked, opts.connect_timeout);
        }
    };

    while let Some(frame) = src.next().map_err(err)? {
        let ts = frame.ts_ns.max(latest);
        match start {
            None => {
                start = Some((ts, Instant::now()));
                interval_start = ts - ts % interval;
            }
            Some((t0, w0)) if cfg.pace == Pace::Realtime => {
                let due = w0 + Duration::from_nanos(ts - t0);
                let now = Instant::now();
                if due > now + Duration::from_millis(1) {
                    // Sleep in short steps so acks are read while waiting.
                    let mut left = due - now;
                    while left > Duration::ZERO {
                        let step = left.min(Duration::from_millis(100));
                        std::thread::sleep(step);
                        exporter.pump();
                        left = due.saturating_duration_since(Instant::now());
                    }
                }
            }
            Some(_) => {}
        }
        latest = ts;
        summary.frames += 1;
        // Close every interval that ended before this frame.
        if ts >= interval_start + interval {
            let end = interval_start + interval;
            flush(
                &mut collector,
                &mut exporter,
                &mut records,
                interval_start,
                end,
                &mut summary,
            );
            interval_start = ts - ts % interval;
        }
        collector.process(&frame, ts);
    }
    if start.is_some() {
        let end = latest + 1;
        collector.finish(&mut records);
        summary.batches += 1;
        summary.records += records.len() as u64;
        exporter.submit(
            &records,
            collector.stats(),
            interval_start,
            end.max(interval_start),
        );
    }
    if !exporter.close(opts.connect_timeout) {
        return Err(ReplayError::Unacknowledged(exporter.unacked()));
    }
    Ok(summary)
}
