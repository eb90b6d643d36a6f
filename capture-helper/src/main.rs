//! `netwatch-capture`: thin binary over the `netwatch_capture` library.
//!
//! Parses the flags ([`netwatch_capture::cli::LowArgs`]), validates them into a
//! [`Mode`], and dispatches. Errors print as one line `netwatch-capture: error: ...` (the
//! whole cause chain) and map to the documented exit codes:
//! 0 success, 1 input or runtime error, 2 usage error, 3 mode not available in this build.
//! A closed stdout (e.g. `| head`) is not an error.

use anyhow::Context as _;
use clap::Parser;
use netwatch_capture::cli::LiveConfig;
use netwatch_capture::cli::{LowArgs, Mode};
use netwatch_capture::{export, offline, run};
use std::io;
use std::process::ExitCode;

/// Errors that carry their own exit code.
#[derive(Debug, thiserror::Error)]
enum Exit {
    #[error("{0}")]
    Usage(String),
    // Exit code 3 stays documented for builds without a mode; every mode is built now.
    #[allow(dead_code)]
    #[error("{0}")]
    NotAvailable(&'static str),
    /// CAP_NET_RAW missing: exit code 4 (netwatch_capture::run::EXIT_NO_CAPABILITY).
    #[error("{0}")]
    NoCapability(String),
}

fn main() -> ExitCode {
    let args = LowArgs::parse();
    init_logging();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("netwatch-capture: error: {e:#}");
            match e.downcast_ref::<Exit>() {
                Some(Exit::Usage(_)) => ExitCode::from(2),
                Some(Exit::NotAvailable(_)) => ExitCode::from(3),
                Some(Exit::NoCapability(_)) => ExitCode::from(run::EXIT_NO_CAPABILITY),
                None => ExitCode::from(1),
            }
        }
    }
}

fn run(args: LowArgs) -> anyhow::Result<()> {
    let mode = args.into_mode().map_err(|e| Exit::Usage(e.0))?;
    match mode {
        Mode::Offline(cfg) => {
            let stdout = io::stdout();
            let stderr = io::stderr();
            offline::run(&cfg, &mut stdout.lock(), &mut stderr.lock()).context("offline mode")?;
            Ok(())
        }
        // Replay: a capture streamed to the server (`replay`).
        Mode::Replay(cfg) => {
            netwatch_capture::replay::run(&cfg).context("replay")?;
            Ok(())
        }
        // Live capture: startup order and loop in `run`, exporter in `export`.
        Mode::Live(cfg) => live(&cfg),
    }
}

fn live(cfg: &LiveConfig) -> anyhow::Result<()> {
    let run_cfg = run::RunConfig {
        interface: cfg.interface.clone(),
        socket: cfg.socket.clone(),
        table: cfg.table,
        flags: cfg.flags.clone(),
    };
    let mut ecfg = export::ExporterConfig::new(
        cfg.socket.clone(),
        cfg.interface.clone(),
        netwatch_capture::source::LINKTYPE_ETHERNET,
        run::LIVE_SNAPLEN,
        netwatch_protocol::SourceKind::Live,
    );
    ecfg.backlog_batches = cfg.flags.instance_backlog;
    match run::run(&run_cfg, move || export::Exporter::new(ecfg)) {
        Ok(_) => Ok(()),
        Err(e) if e.is_missing_capability() => Err(Exit::NoCapability(e.to_string()).into()),
        Err(e) => Err(e.into()),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NETWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .try_init();
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe))
        || e.chain().any(|c| {
            matches!(c.downcast_ref::<offline::OfflineError>(), Some(offline::OfflineError::Output(io)) if io.kind() == io::ErrorKind::BrokenPipe)
        })
}
