//! Ingest: the Unix socket the capture helpers connect to.
//!
//! One task per connection. A connection must pass the SO_PEERCRED check (uid or gid on
//! the allow list), then say `Hello` within [`HELLO_TIMEOUT`], then send `FlowBatch`es;
//! each batch is answered with an `Ack` carrying the highest sequence stored for the
//! instance (right after `Hello` too, so a reconnecting helper learns what to drop from
//! its backlog). Frames are read into a buffer that only grows once the length prefix has
//! passed [`netwatch_protocol::frame_len`] (at most `MAX_FRAME_LEN`), so an oversized
//! length is refused before anything is allocated for it. Any bad frame (too long, wrong
//! version, undecodable) or protocol violation drops the connection and is counted; the
//! store only changes when a whole batch decoded.

use crate::clock::wall_ns;
use crate::shutdown::Shutdown;
use crate::state::AppState;
use crate::store::BatchOutcome;
use netwatch_protocol::{codec, Ack, Bye, ByeKind, CodecError, Message, MAGIC, PROTOCOL_VERSION};
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{info, warn};

/// Time a new connection has to send `Hello`.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Time an `Ack` write may take before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const READ_CHUNK: usize = 64 * 1024;

/// Connection-level counters (store-level ones are in `StoreCounters`).
#[derive(Debug, Default)]
pub struct IngestCounters {
    /// Connections accepted past the peer check.
    pub connections: AtomicU64,
    /// Peers refused by the SO_PEERCRED allow list.
    pub refused_peers: AtomicU64,
    /// Connections refused because `max_helpers` were open.
    pub refused_busy: AtomicU64,
    /// Frames announcing more than `MAX_FRAME_LEN` bytes.
    pub oversized_frames: AtomicU64,
    /// Frames of another protocol version (or a Hello with another version or magic).
    pub version_mismatches: AtomicU64,
    /// Frames that did not decode.
    pub invalid_frames: AtomicU64,
    /// Messages out of order (no Hello first, a batch for another instance, an Ack).
    pub protocol_errors: AtomicU64,
    /// Connections dropped by the server for any of the above, or a timeout.
    pub dropped_connections: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Errors while setting up the socket.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// A live server already answers on the path.
    #[error("{0} is in use by a running server")]
    InUse(String),
    /// Something that is not a socket is in the way.
    #[error("{0} exists and is not a socket; refusing to remove it")]
    NotASocket(String),
    /// Any I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The socket path.
        path: String,
        /// Cause.
        source: io::Error,
    },
}

/// Binds the ingest socket: creates the parent directory if needed, removes a stale socket
/// (only a socket nobody answers on), binds and sets the permission bits.
///
/// # Errors
/// See [`BindError`].
pub fn bind(path: &Path, mode: u32) -> Result<UnixListener, BindError> {
    let shown = path.display().to_string();
    let io_err = |source| BindError::Io {
        path: shown.clone(),
        source,
    };
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() && !parent.exists() {
            std::fs::create_dir_all(parent).map_err(io_err)?;
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(BindError::InUse(shown));
            }
            info!("removing stale socket {shown}");
            std::fs::remove_file(path).map_err(io_err)?;
        }
        Ok(_) => return Err(BindError::NotASocket(shown)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    // Create the socket with no bits for others, then set the exact mode.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let listener = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = listener.map_err(io_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io_err)?;
    Ok(listener)
}

/// Accepts helpers until shutdown, then waits for every connection to say `Bye` and end.
pub async fn run(listener: UnixListener, state: AppState) {
    let mut shutdown = Shutdown::new(state.shutdown.subscribe());
    let permits = Arc::new(Semaphore::new(state.config.max_helpers));
    let mut backoff = Duration::from_millis(100);
    // The connection tasks, so that shutdown waits for each to say `Bye`: a task the runtime
    // drops mid-way would close its helper's socket without one.
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            () = shutdown.recv() => break,
        };
        let stream = match accepted {
            Ok((s, _)) => {
                backoff = Duration::from_millis(100);
                s
            }
            Err(e) => {
                warn!("ingest accept failed: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let cred = match stream.peer_cred() {
            Ok(c) => c,
            Err(e) => {
                warn!("ingest: cannot read peer credentials: {e}");
                bump(&state.ingest.refused_peers);
                continue;
            }
        };
        let (uid, gid, pid) = (cred.uid(), cred.gid(), cred.pid().unwrap_or(0));
        if !state.config.allow_uids.contains(&uid) && !state.config.allow_gids.contains(&gid) {
            warn!(uid, gid, pid, "ingest: refused peer (uid/gid not allowed)");
            bump(&state.ingest.refused_peers);
            continue;
        }
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            warn!(
                uid,
                pid, "ingest: refused peer: {} helpers already connected", state.config.max_helpers
            );
            bump(&state.ingest.refused_busy);
            continue;
        };
        bump(&state.ingest.connections);
        let st = state.clone();
        // Subscribed here, not in the task: a shutdown sent before the task first runs
        // must still reach it.
        let sd = Shutdown::new(st.shutdown.subscribe());
        conns.spawn(async move {
            let mut conn = Connection {
                stream,
                state: st.clone(),
                uid,
                gid,
                pid,
                instance: None,
                bye: false,
            };
            if let Err(e) = conn.serve(sd).await {
                bump(&st.ingest.dropped_connections);
                warn!(uid, pid, instance = ?conn.instance.map(|i| format!("{i:016x}")), "ingest: dropped helper connection: {e}");
            }
            if let Some(instance) = conn.instance {
                st.write()
                    .helper_disconnected(instance, conn.bye, wall_ns());
                info!(instance = %format!("{instance:016x}"), bye = conn.bye, "helper disconnected");
            }
            drop(permit);
        });
    }
    // Each connection answers the broadcast with `Bye` (bounded by WRITE_TIMEOUT).
    while conns.join_next().await.is_some() {}
}

/// Why a connection was dropped.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("bad frame: {0}")]
    Frame(CodecError),
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    #[error("timeout: {0}")]
    Timeout(&'static str),
    #[error("connection closed in the middle of a frame")]
    Truncated,
}

struct Connection {
    stream: UnixStream,
    state: AppState,
    uid: u32,
    gid: u32,
    pid: i32,
    instance: Option<u64>,
    bye: bool,
}

impl Connection {
    async fn serve(&mut self, mut shutdown: Shutdown) -> Result<(), ConnError> {
        let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            // Handle every complete frame already buffered.
            loop {
                let total = match codec::frame_len(&buf) {
                    Ok(t) => t,
                    Err(CodecError::Incomplete { .. }) => break,
                    Err(e) => return Err(self.bad_frame(e)),
                };
                if buf.len() < total {
                    break;
                }
                let msg = match codec::decode(&buf[..total]) {
                    Ok((m, _)) => m,
                    Err(e) => return Err(self.bad_frame(e)),
                };
                buf.drain(..total);
                if self.handle(msg).await? {
                    return Ok(());
                }
            }
            let has_hello = self.instance.is_some();
            let stream = &mut self.stream;
            let read = async {
                if has_hello {
                    stream.read(&mut chunk).await.map_err(ConnError::Io)
                } else {
                    tokio::time::timeout(HELLO_TIMEOUT, stream.read(&mut chunk))
                        .await
                        .map_err(|_| ConnError::Timeout("no Hello"))?
                        .map_err(ConnError::Io)
                }
            };
            let n = tokio::select! {
                r = read => Some(r?),
                () = shutdown.recv() => None,
            };
            let Some(n) = n else {
                let _ = self
                    .send(&Message::Bye(Bye {
                        kind: ByeKind::Shutdown,
                        reason: "server shutting down".into(),
                    }))
                    .await;
                return Ok(());
            };
            if n == 0 {
                return if buf.is_empty() {
                    Ok(())
                } else {
                    Err(ConnError::Truncated)
                };
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn bad_frame(&self, e: CodecError) -> ConnError {
        let c = &self.state.ingest;
        match e {
            CodecError::TooLong { .. } => bump(&c.oversized_frames),
            CodecError::VersionMismatch { .. } => bump(&c.version_mismatches),
            _ => bump(&c.invalid_frames),
        }
        ConnError::Frame(e)
    }

    fn violation(&self, what: &'static str) -> ConnError {
        bump(&self.state.ingest.protocol_errors);
        ConnError::Protocol(what)
    }

    async fn send(&mut self, msg: &Message) -> Result<(), ConnError> {
        let bytes = codec::encode(msg).map_err(ConnError::Frame)?;
        tokio::time::timeout(WRITE_TIMEOUT, self.stream.write_all(&bytes))
            .await
            .map_err(|_| ConnError::Timeout("helper does not read its acks"))??;
        Ok(())
    }

    /// Handles one message; true when the connection ends in order.
    async fn handle(&mut self, msg: Message) -> Result<bool, ConnError> {
        match (msg, self.instance) {
            (Message::Hello(h), None) => {
                if h.magic != MAGIC {
                    return Err(self.violation("Hello with wrong magic"));
                }
                if h.version != PROTOCOL_VERSION {
                    bump(&self.state.ingest.version_mismatches);
                    return Err(ConnError::Protocol("Hello with another protocol version"));
                }
                let highest =
                    self.state
                        .write()
                        .helper_connected(&h, self.uid, self.gid, wall_ns());
                self.instance = Some(h.instance);
                info!(
                    instance = %format!("{:016x}", h.instance), interface = %h.interface, source = ?h.source,
                    pid = self.pid, uid = self.uid, highest_seq = highest, "helper connected"
                );
                self.send(&Message::Ack(Ack {
                    instance: h.instance,
                    seq: highest,
                }))
                .await?;
                Ok(false)
            }
            (Message::Hello(_), Some(_)) => Err(self.violation("second Hello")),
            (Message::FlowBatch(b), Some(inst)) => {
                if b.instance != inst {
                    return Err(self.violation("batch for another instance"));
                }
                let outcome = self.state.write().ingest(&b, wall_ns());
                let ack = match outcome {
                    BatchOutcome::Stored { ack, invalid } => {
                        if invalid > 0 {
                            warn!(instance = %format!("{inst:016x}"), seq = b.seq, invalid, "skipped invalid records");
                        }
                        self.state.updates.send_modify(|g| *g = g.wrapping_add(1));
                        ack
                    }
                    BatchOutcome::Duplicate { ack } => ack,
                };
                self.send(&Message::Ack(Ack {
                    instance: inst,
                    seq: ack,
                }))
                .await?;
                Ok(false)
            }
            (Message::Bye(b), Some(_)) => {
                info!(reason = %b.reason, "helper said Bye");
                self.bye = true;
                Ok(true)
            }
            (Message::Bye(_), None) => Ok(true),
            (Message::Ack(_), _) => Err(self.violation("Ack from a helper")),
            (Message::FlowBatch(_), None) => Err(self.violation("batch before Hello")),
        }
    }
}
