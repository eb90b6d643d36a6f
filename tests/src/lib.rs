//! Helpers shared by the end-to-end tests: locating the built binaries, the workspace root,
//! the root check, temporary directories, free ports and a minimal HTTP/1.1 client. The
//! `tests/tests/*_support` modules re-export them.
#![forbid(unsafe_code)]

pub mod http;
pub mod tempdir;

pub use http::{request, try_request, Response};
pub use tempdir::TempDir;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The directory holding the workspace's binaries for the profile this test was built with.
#[must_use]
pub fn bin_dir() -> PathBuf {
    // target/<profile>/deps/<test-binary>
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// Path of a workspace binary; panics with the command to run when it is missing.
#[must_use]
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --bins` (with --release for release tests)",
        p.display()
    );
    p
}

/// The workspace root.
#[must_use]
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// True when running as root (tests that need it print "SKIPPED: needs root" otherwise).
#[must_use]
pub fn is_root() -> bool {
    // Without libc: the effective uid is in /proc/self/status ("Uid: real effective ...").
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// True when `prog` is on PATH.
#[must_use]
pub fn have(prog: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {prog}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A free TCP port on 127.0.0.1 (bound then released).
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}
