//! `netwatch-capture`: thin binary over the `netwatch_capture` library.
//!
//! Parses the flags ([`netwatch_capture::cli::LowArgs`]), validates them into a
//! [`Mode`], and dispatches. Errors print as one line `netwatch-capture: error: ...` (the
//! whole cause chain) and map to the documented exit codes:
//! 0 success, 1 input or runtime error, 2 usage error, 3 mode not available in this build.
//! A closed stdout (e.g. `| head`) is not an error.

use anyhow::Context as _;
use clap::Parser;
use netwatch_capture::cli::{LowArgs, Mode};
use netwatch_capture::offline;
use std::io;
use std::process::ExitCode;

/// Errors that carry their own exit code.
#[derive(Debug, thiserror::Error)]
enum Exit {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    NotAvailable(&'static str),
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
        // Replay: the server engineer's `replay` module plugs in here.
        Mode::Replay(_) => Err(Exit::NotAvailable(
            "replay to a server (--read FILE --connect SOCKET) is not yet available in this build",
        )
        .into()),
        // Live capture: the live engineer's `run` module plugs in here.
        Mode::Live(_) => Err(Exit::NotAvailable(
            "live capture (--interface IFACE) is not yet available in this build",
        )
        .into()),
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
