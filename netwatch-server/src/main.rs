//! `netwatch-server`: thin binary over the `netwatch_server` library.
//!
//! Exit codes: 0 after a clean shutdown, 1 on a startup error, 2 on bad flags (clap).

use anyhow::Context;
use clap::Parser;
use netwatch_server::config::{Args, Config, LogFormat};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netwatch-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::load(args).context("configuration")?;
    let filter = EnvFilter::try_new(&config.log).context("log filter")?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(netwatch_server::server::run(
        config,
        netwatch_server::shutdown::signal(),
    ))?;
    Ok(())
}
