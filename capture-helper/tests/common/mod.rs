//! Helpers shared by the integration tests of `netwatch-capture`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's `tests/fixtures` directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("fixtures")
}

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_netwatch-capture")
}

/// Runs `netwatch-capture` with `args`.
pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("spawn netwatch-capture")
}

/// Parses `key=value` lines.
pub fn parse_summary(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().parse().unwrap_or(u64::MAX)))
        .collect()
}

/// Compares two flow CSVs row by row after sorting the data rows; on a mismatch panics with
/// the first differing flow (and the row counts).
pub fn assert_same_flows(name: &str, got: &str, want: &str) {
    let split = |s: &str| -> (String, Vec<String>) {
        let mut lines = s.lines();
        let header = lines.next().unwrap_or("").to_string();
        let mut rows: Vec<String> = lines
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        rows.sort();
        (header, rows)
    };
    let (gh, gr) = split(got);
    let (wh, wr) = split(want);
    assert_eq!(gh, wh, "{name}: CSV header differs");
    for (i, (g, w)) in gr.iter().zip(wr.iter()).enumerate() {
        assert_eq!(
            g, w,
            "{name}: first differing flow (sorted row {i}): got (left) vs expected (right)"
        );
    }
    assert_eq!(
        gr.len(),
        wr.len(),
        "{name}: {} flows, expected {}; first extra: {:?} / missing: {:?}",
        gr.len(),
        wr.len(),
        gr.get(wr.len()),
        wr.get(gr.len())
    );
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// In CI (CI=true) a missing tool is a failure; elsewhere the test prints SKIPPED.
pub fn require(program: &str) -> bool {
    if have(program) {
        return true;
    }
    assert!(
        std::env::var("CI").is_err(),
        "{program} is required in CI (.ci/install.d installs it)"
    );
    eprintln!("SKIPPED: needs {program}");
    false
}

/// A fresh temporary directory under the target directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let base =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("create temp dir");
    base
}
