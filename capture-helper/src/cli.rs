//! Command line: low-level arguments (clap) validated into a [`Mode`] (ripgrep style:
//! nothing below this module sees raw flags).
//!
//! | flags                              | mode                          | owner module      |
//! |------------------------------------|-------------------------------|-------------------|
//! | `--read FILE`                      | [`Mode::Offline`]: flows to stdout | `offline`    |
//! | `--read FILE --connect SOCKET`     | [`Mode::Replay`]: stream a file to the server | `replay` |
//! | `--interface IFACE [--connect S]`  | [`Mode::Live`]: AF_PACKET ring to the server | `run` |
//!
//! Flags for replay and live capture are added here by those modules' authors; each one
//! is validated in [`LowArgs::into_mode`].

use crate::flow::TableConfig;
use crate::offline::{OfflineConfig, OutputFormat, SummaryTo};
use clap::Parser;
use std::path::PathBuf;
use thiserror::Error;

/// Default server socket.
pub const DEFAULT_SOCKET: &str = "/run/netwatch/capture.sock";

/// How a replay paces the frames of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pace {
    /// Sleep so that frames are sent at their capture-time spacing.
    Realtime,
    /// As fast as possible (capture timestamps still drive the flow table).
    Fast,
}

/// The flags as typed (see `netwatch-capture --help`).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "netwatch-capture",
    version,
    about = "Netwatch capture helper: frames -> bidirectional flows",
    long_about = "Netwatch capture helper: turns Ethernet frames into bidirectional flows.\n\n\
        Offline:  netwatch-capture --read FILE [--format csv|json] [--summary]\n\
        Replay:   netwatch-capture --read FILE --connect SOCKET [--pace realtime|fast]\n\
        Live:     netwatch-capture --interface IFACE [--connect SOCKET]\n\n\
        Exit codes: 0 success, 1 input or runtime error (unreadable, corrupt, cut or\n\
        non-Ethernet capture, I/O error), 2 usage error, 3 mode not available in this build, 4 live capture without\n\
        CAP_NET_RAW."
)]
pub struct LowArgs {
    /// Read frames from a pcap or pcapng file (`-` = standard input).
    #[arg(short = 'r', long, value_name = "FILE")]
    pub read: Option<PathBuf>,

    /// Capture live from this interface (AF_PACKET).
    #[arg(short = 'i', long, value_name = "IFACE")]
    pub interface: Option<String>,

    /// Stream flows to the server's Unix socket (replay with --read; live default
    /// /run/netwatch/capture.sock).
    #[arg(long, value_name = "SOCKET")]
    pub connect: Option<PathBuf>,

    /// Replay pacing (only with --read and --connect).
    #[arg(long, value_enum, value_name = "PACE")]
    pub pace: Option<Pace>,

    /// Offline output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Csv)]
    pub format: OutputFormat,

    /// Offline: print the accounting summary on stdout instead of the flows (default:
    /// flows on stdout, summary on stderr).
    #[arg(long)]
    pub summary: bool,

    /// Capacity of the flow table (flows held at once).
    #[arg(long, value_name = "N", default_value_t = TableConfig::DEFAULT_CAPACITY)]
    pub max_flows: usize,

    /// End a flow after this many seconds without a packet (0 = never).
    #[arg(long, value_name = "SECONDS", default_value_t = TableConfig::DEFAULT_IDLE_TIMEOUT_NS / 1_000_000_000)]
    pub idle_timeout: u64,

    /// End a flow's record after this many seconds; the flow continues (0 = never).
    #[arg(long, value_name = "SECONDS", default_value_t = TableConfig::DEFAULT_ACTIVE_TIMEOUT_NS / 1_000_000_000)]
    pub active_timeout: u64,

    /// Live-capture options (see `run`).
    #[command(flatten)]
    pub live: crate::run::LiveFlags,
}

/// A flag combination that does not make sense.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Replay settings (`--read FILE --connect SOCKET`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayConfig {
    /// The capture file.
    pub path: PathBuf,
    /// The server socket.
    pub socket: PathBuf,
    /// Pacing.
    pub pace: Pace,
    /// Flow table settings.
    pub table: TableConfig,
    /// Capture time per batch, ms (`--export-interval`, default 500).
    pub export_interval_ms: u64,
}

/// Live settings (`--interface IFACE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveConfig {
    /// Interface name.
    pub interface: String,
    /// The server socket.
    pub socket: PathBuf,
    /// Flow table settings.
    pub table: TableConfig,
    /// Live-capture options.
    pub flags: crate::run::LiveFlags,
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Flows of a file to stdout.
    Offline(OfflineConfig),
    /// A file streamed to the server.
    Replay(ReplayConfig),
    /// Live capture streamed to the server.
    Live(LiveConfig),
}

impl LowArgs {
    /// Validates the flags into a [`Mode`].
    ///
    /// # Errors
    /// A [`UsageError`] naming the conflicting or missing flags.
    pub fn into_mode(self) -> Result<Mode, UsageError> {
        let usage = |m: &str| Err(UsageError(m.to_string()));
        if self.max_flows == 0 || self.max_flows > TableConfig::MAX_CAPACITY {
            return Err(UsageError(format!(
                "--max-flows must be between 1 and {}",
                TableConfig::MAX_CAPACITY
            )));
        }
        let secs = |s: u64| s.saturating_mul(1_000_000_000);
        let table = TableConfig {
            capacity: self.max_flows,
            idle_timeout_ns: secs(self.idle_timeout),
            active_timeout_ns: secs(self.active_timeout),
            ..TableConfig::default()
        };
        let offline_only = self.summary || self.format != OutputFormat::Csv;
        // `--connect SOCKET` alone means live capture on the default route's interface.
        let interface = match (&self.read, self.interface, &self.connect) {
            (None, None, Some(_)) => crate::live::default_route_interface(),
            (_, i, _) => i,
        };
        match (self.read, interface) {
            (Some(_), Some(_)) => usage("--read and --interface cannot be used together"),
            (None, None) => usage(
                "one of --read FILE (offline or replay) or --interface IFACE (live) is required",
            ),
            (Some(path), None) => match self.connect {
                None => {
                    if self.pace.is_some() {
                        return usage("--pace needs --connect SOCKET (replay)");
                    }
                    let summary = if self.summary {
                        SummaryTo::Stdout
                    } else {
                        SummaryTo::Stderr
                    };
                    Ok(Mode::Offline(OfflineConfig {
                        path,
                        format: self.format,
                        summary,
                        table,
                    }))
                }
                Some(socket) => {
                    if offline_only {
                        return usage("--format and --summary apply to offline mode (--read without --connect)");
                    }
                    if !(10..=60_000).contains(&self.live.export_interval) {
                        return usage("--export-interval must be between 10 and 60000 ms");
                    }
                    Ok(Mode::Replay(ReplayConfig {
                        path,
                        socket,
                        pace: self.pace.unwrap_or(Pace::Fast),
                        table,
                        export_interval_ms: self.live.export_interval,
                    }))
                }
            },
            (None, Some(interface)) => {
                if offline_only {
                    return usage(
                        "--format and --summary apply to offline mode (--read without --connect)",
                    );
                }
                if self.pace.is_some() {
                    return usage("--pace applies to replay (--read FILE --connect SOCKET)");
                }
                let socket = self
                    .connect
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
                Ok(Mode::Live(LiveConfig {
                    interface,
                    socket,
                    table,
                    flags: self.live,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(args: &[&str]) -> Result<Mode, UsageError> {
        let mut v = vec!["netwatch-capture"];
        v.extend_from_slice(args);
        LowArgs::try_parse_from(v)
            .expect("clap accepts")
            .into_mode()
    }

    #[test]
    fn dispatch() {
        assert!(matches!(mode(&["--read", "x.pcap"]), Ok(Mode::Offline(_))));
        assert!(matches!(
            mode(&["--read", "x.pcap", "--connect", "/s"]),
            Ok(Mode::Replay(_))
        ));
        match mode(&["--interface", "eth0"]) {
            Ok(Mode::Live(l)) => assert_eq!(l.socket, PathBuf::from(DEFAULT_SOCKET)),
            other => panic!("{other:?}"),
        }
        assert!(mode(&[]).is_err());
        assert!(mode(&["--read", "x", "--interface", "eth0"]).is_err());
        assert!(mode(&["--read", "x", "--pace", "fast"]).is_err());
        assert!(mode(&["--read", "x", "--connect", "/s", "--summary"]).is_err());
        assert!(mode(&["--read", "x", "--max-flows", "0"]).is_err());
        match mode(&[
            "--read",
            "x",
            "--format",
            "json",
            "--summary",
            "--idle-timeout",
            "5",
        ]) {
            Ok(Mode::Offline(o)) => {
                assert_eq!(
                    (o.format, o.summary),
                    (OutputFormat::Json, SummaryTo::Stdout)
                );
                assert_eq!(o.table.idle_timeout_ns, 5_000_000_000);
            }
            other => panic!("{other:?}"),
        }
    }
}
