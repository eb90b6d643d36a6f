//! Configuration: command-line flags, `NETWATCH_*` environment variables and a TOML file.
//!
//! Every option exists in all three forms. Precedence: flag > environment > file > default
//! (clap reads the flag or else the environment variable; the file fills what both left
//! unset). `docs/CONFIGURATION.md` lists every option.

use crate::store::{StoreConfig, NS};
use clap::Parser;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Errors while building the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// The security settings refuse to start (e.g. a non-loopback address without a token).
    #[error(transparent)]
    Security(#[from] crate::security::SecurityError),
    /// A value is out of range or malformed.
    #[error("invalid value for {option}: {message}")]
    Value {
        /// Option name.
        option: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Command line (each flag also reads its `NETWATCH_*` environment variable).
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "netwatch-server",
    version,
    about = "Netwatch server: ingest, flow store, REST API"
)]
pub struct Args {
    /// TOML configuration file.
    #[arg(long, env = "NETWATCH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Unix socket the capture helpers connect to [default: /run/netwatch/capture.sock].
    #[arg(long, env = "NETWATCH_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Permission bits of the socket, octal [default: 660].
    #[arg(long, env = "NETWATCH_SOCKET_MODE", value_name = "OCTAL")]
    pub socket_mode: Option<String>,
    /// HTTP listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "NETWATCH_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Peer uids allowed on the socket, comma separated [default: the server's uid and 0].
    #[arg(
        long,
        env = "NETWATCH_ALLOW_UIDS",
        value_delimiter = ',',
        value_name = "UID,..."
    )]
    pub allow_uids: Option<Vec<u32>>,
    /// Peer gids allowed on the socket, comma separated [default: the server's own gid].
    #[arg(
        long,
        env = "NETWATCH_ALLOW_GIDS",
        value_delimiter = ',',
        value_name = "GID,..."
    )]
    pub allow_gids: Option<Vec<u32>>,
    /// Most helper connections at once [default: 16].
    #[arg(long, env = "NETWATCH_MAX_HELPERS", value_name = "N")]
    pub max_helpers: Option<usize>,
    /// How long flows are kept after their last packet, e.g. 60m [default: 60m].
    #[arg(long, env = "NETWATCH_RETENTION", value_name = "DURATION")]
    pub retention: Option<String>,
    /// Quiet time after which a flow is idle, e.g. 10s [default: 10s].
    #[arg(long, env = "NETWATCH_IDLE_TIMEOUT", value_name = "DURATION")]
    pub idle_timeout: Option<String>,
    /// Memory ceiling of the flow store, e.g. 512MiB [default: 512MiB].
    #[arg(long, env = "NETWATCH_MEMORY_LIMIT", value_name = "SIZE")]
    pub memory_limit: Option<String>,
    /// Log filter (tracing EnvFilter syntax) [default: info].
    #[arg(long, env = "NETWATCH_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "NETWATCH_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Security flags (issue 7): token, origins, rate limits, TLS.
    #[command(flatten)]
    pub security: crate::security::SecurityArgs,
}

/// The TOML file: the same keys as the flags, with underscores.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See [`Args::socket`].
    pub socket: Option<PathBuf>,
    /// See [`Args::socket_mode`].
    pub socket_mode: Option<String>,
    /// See [`Args::listen`].
    pub listen: Option<SocketAddr>,
    /// See [`Args::allow_uids`].
    pub allow_uids: Option<Vec<u32>>,
    /// See [`Args::allow_gids`].
    pub allow_gids: Option<Vec<u32>>,
    /// See [`Args::max_helpers`].
    pub max_helpers: Option<usize>,
    /// See [`Args::retention`].
    pub retention: Option<String>,
    /// See [`Args::idle_timeout`].
    pub idle_timeout: Option<String>,
    /// See [`Args::memory_limit`].
    pub memory_limit: Option<String>,
    /// See [`Args::log`].
    pub log: Option<String>,
    /// See [`Args::log_format`].
    pub log_format: Option<String>,
    /// The `[security]` table (issue 7), see [`crate::security::SecurityFile`].
    pub security: Option<crate::security::SecurityFile>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Ingest socket path.
    pub socket: PathBuf,
    /// Ingest socket permission bits.
    pub socket_mode: u32,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Allowed peer uids.
    pub allow_uids: Vec<u32>,
    /// Allowed peer gids.
    pub allow_gids: Vec<u32>,
    /// Most helper connections at once.
    pub max_helpers: usize,
    /// Store settings (retention, idle timeout, memory ceiling).
    pub store: StoreConfig,
    /// Log filter.
    pub log: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Security settings (issue 7): tokens, rate limits, origins, TLS.
    pub security: crate::security::SecurityConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            socket: PathBuf::from("/run/netwatch/capture.sock"),
            socket_mode: 0o660,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allow_uids: default_uids(),
            // The deployed helper runs as its own user with the server's group (deploy/,
            // sysusers.d): the group that opens the 0660 socket is also the one allowed.
            allow_gids: vec![nix::unistd::getgid().as_raw()],
            max_helpers: 16,
            store: StoreConfig::default(),
            log: "info".into(),
            log_format: LogFormat::Text,
            security: crate::security::SecurityConfig::default(),
        }
    }
}

fn default_uids() -> Vec<u32> {
    let me = nix::unistd::getuid().as_raw();
    if me == 0 {
        vec![0]
    } else {
        vec![me, 0]
    }
}

/// Parses a duration such as `10s`, `60m`, `1h 30m` (humantime syntax).
///
/// # Errors
/// A message when the text is not a duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| e.to_string())
}

/// Parses a size such as `512MiB`, `1GB`, `400M`, `1048576` (bytes).
///
/// # Errors
/// A message when the text is not a size.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a size"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

fn to_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Config {
    /// Reads a TOML file.
    ///
    /// # Errors
    /// `Read` or `Parse`.
    pub fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })
    }

    /// Builds the configuration from parsed flags (which already hold the environment) and
    /// the file they name, if any.
    ///
    /// # Errors
    /// A file or value error.
    pub fn load(args: Args) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(p) => Config::read_file(p)?,
            None => FileConfig::default(),
        };
        Config::merge(args, file)
    }

    /// Layers flags/environment over the file over the defaults.
    ///
    /// # Errors
    /// A value error.
    pub fn merge(a: Args, f: FileConfig) -> Result<Config, ConfigError> {
        let d = Config::default();
        let socket_mode = match a.socket_mode.or(f.socket_mode) {
            Some(s) => u32::from_str_radix(s.trim_start_matches("0o"), 8)
                .ok()
                .filter(|m| *m <= 0o777)
                .ok_or(ConfigError::Value {
                    option: "socket_mode",
                    message: format!("{s:?} is not octal permission bits"),
                })?,
            None => d.socket_mode,
        };
        let dur = |opt: &'static str, v: Option<String>, def: u64| -> Result<u64, ConfigError> {
            match v {
                Some(s) => parse_duration(&s)
                    .map(to_ns)
                    .map_err(|message| ConfigError::Value {
                        option: opt,
                        message,
                    }),
                None => Ok(def),
            }
        };
        let retention_ns = dur(
            "retention",
            a.retention.or(f.retention),
            d.store.retention_ns,
        )?;
        if !(60 * NS..=24 * 3600 * NS).contains(&retention_ns) {
            return Err(ConfigError::Value {
                option: "retention",
                message: "must be between 1m and 24h".into(),
            });
        }
        let idle_ns = dur(
            "idle_timeout",
            a.idle_timeout.or(f.idle_timeout),
            d.store.idle_ns,
        )?;
        if idle_ns < NS {
            return Err(ConfigError::Value {
                option: "idle_timeout",
                message: "must be at least 1s".into(),
            });
        }
        let memory_limit = match a.memory_limit.or(f.memory_limit) {
            Some(s) => parse_size(&s).map_err(|message| ConfigError::Value {
                option: "memory_limit",
                message,
            })?,
            None => d.store.memory_limit,
        };
        if memory_limit < 32 * 1024 * 1024 {
            return Err(ConfigError::Value {
                option: "memory_limit",
                message: "must be at least 32MiB".into(),
            });
        }
        let log_format = match a.log_format.or(f.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::Value {
                    option: "log_format",
                    message: format!("{other:?}: use text or json"),
                })
            }
        };
        let max_helpers = a.max_helpers.or(f.max_helpers).unwrap_or(d.max_helpers);
        if max_helpers == 0 {
            return Err(ConfigError::Value {
                option: "max_helpers",
                message: "must be at least 1".into(),
            });
        }
        let listen = a.listen.or(f.listen).unwrap_or(d.listen);
        // Issue 7: tokens load here, and a non-loopback `listen` without one is refused.
        let security = a
            .security
            .over(f.security)
            .build(listen, |k| std::env::var(k).ok())?;
        Ok(Config {
            socket: a.socket.or(f.socket).unwrap_or(d.socket),
            socket_mode,
            listen,
            allow_uids: a.allow_uids.or(f.allow_uids).unwrap_or(d.allow_uids),
            allow_gids: a.allow_gids.or(f.allow_gids).unwrap_or(d.allow_gids),
            max_helpers,
            store: StoreConfig {
                retention_ns,
                idle_ns,
                memory_limit,
            },
            log: a.log.or(f.log).unwrap_or(d.log),
            log_format,
            security,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_file_beats_default() {
        let args = Args {
            retention: Some("30m".into()),
            ..Args::default()
        };
        let file: FileConfig = toml::from_str(
            "retention = \"45m\"\nidle_timeout = \"20s\"\nlisten = \"127.0.0.1:9000\"\nmemory_limit = \"256MiB\"\n",
        )
        .expect("toml");
        let c = Config::merge(args, file).expect("config");
        assert_eq!(c.store.retention_ns, 30 * 60 * NS);
        assert_eq!(c.store.idle_ns, 20 * NS);
        assert_eq!(c.listen, "127.0.0.1:9000".parse().expect("addr"));
        assert_eq!(c.store.memory_limit, 256 << 20);
        assert_eq!(c.socket, PathBuf::from("/run/netwatch/capture.sock"));
        assert_eq!(c.socket_mode, 0o660);
    }

    #[test]
    fn bad_values_are_refused() {
        let bad = |a: Args| Config::merge(a, FileConfig::default()).is_err();
        assert!(bad(Args {
            retention: Some("10s".into()),
            ..Args::default()
        }));
        assert!(bad(Args {
            memory_limit: Some("12 parsecs".into()),
            ..Args::default()
        }));
        assert!(bad(Args {
            socket_mode: Some("999".into()),
            ..Args::default()
        }));
        assert!(bad(Args {
            log_format: Some("xml".into()),
            ..Args::default()
        }));
        assert!(toml::from_str::<FileConfig>("no_such_key = 1").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("42"), Ok(42));
        assert!(parse_size("").is_err());
    }
}
