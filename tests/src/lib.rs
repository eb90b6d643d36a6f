//! Helpers shared by the end-to-end tests: locating the built binaries, the workspace root,
//! the root check. The `tests/tests/*_support` modules re-export them.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

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
