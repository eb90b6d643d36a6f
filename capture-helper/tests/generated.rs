//! Synthetic captures from `tests/fixtures/tools/make_bench_pcap.py` (generated here, never
//! committed): three seeds against the generator's own ground truth, and one seed against
//! the independent oracle (`oracle.py`, i.e. tshark).

mod common;

use common::{assert_same_flows, fixtures, parse_summary, require, run, temp_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

const PACKETS: &str = "20000";
const FLOWS: &str = "3000";

fn generate(dir: &Path, seed: u32) -> (PathBuf, PathBuf) {
    let pcap = dir.join(format!("bench-{seed}.pcap"));
    let truth = dir.join(format!("bench-{seed}.flows.csv"));
    let status = Command::new("python3")
        .arg(fixtures().join("tools").join("make_bench_pcap.py"))
        .arg(&pcap)
        .args([
            "--packets",
            PACKETS,
            "--flows",
            FLOWS,
            "--seed",
            &seed.to_string(),
            "--truth",
        ])
        .arg(&truth)
        .status()
        .expect("run python3");
    assert!(status.success(), "make_bench_pcap.py failed");
    (pcap, truth)
}

fn ours(pcap: &Path) -> (String, String) {
    let out = run(&["--read", pcap.to_str().expect("utf-8")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).expect("utf-8"),
        String::from_utf8(out.stderr).expect("utf-8"),
    )
}

#[test]
fn three_seeds_match_the_generators_truth() {
    if !require("python3") {
        return;
    }
    let dir = temp_dir("generated-truth");
    for seed in [3, 11, 2024] {
        let (pcap, truth) = generate(&dir, seed);
        let (csv, summary) = ours(&pcap);
        assert_same_flows(
            &format!("seed {seed}"),
            &csv,
            &std::fs::read_to_string(&truth).expect("truth"),
        );
        let s = parse_summary(&summary);
        assert_eq!(s["total_frames"], 20_000);
        assert_eq!(s["ip_frames"], 20_000);
    }
}

#[test]
fn one_seed_matches_the_tshark_oracle() {
    if !require("python3") || !require("tshark") {
        return;
    }
    let dir = temp_dir("generated-oracle");
    let (pcap, _) = generate(&dir, 77);
    let (csv, summary) = ours(&pcap);
    let oracle = |extra: &[&str]| run_oracle(&pcap, extra);
    assert_same_flows("seed 77 vs oracle", &csv, &oracle(&[]));
    let want = parse_summary(&oracle(&["--summary"]));
    let got = parse_summary(&summary);
    for k in [
        "total_frames",
        "total_bytes",
        "ip_frames",
        "non_ip_frames",
        "ip_invalid_frames",
        "flows",
    ] {
        assert_eq!(got.get(k), want.get(k), "summary {k}");
    }
}

/// Runs the tshark oracle (`tests/fixtures/tools/oracle.py`) on `pcap` with `extra` flags;
/// asserts it succeeds and returns its stdout.
fn run_oracle(pcap: &Path, extra: &[&str]) -> String {
    let out = Command::new("python3")
        .arg(fixtures().join("tools").join("oracle.py"))
        .arg(pcap)
        .args(extra)
        .output()
        .expect("run oracle.py");
    assert!(
        out.status.success(),
        "oracle.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Thousands of hand-made corner cases (every snap-length cut of every transport over IPv4
/// with options and IPv6 with extension chains, fragments, VLAN stacks, 802.3/LLC, bad
/// versions and lengths) from `make_edge_pcap.py`: the same flows and totals as the oracle.
#[test]
fn edge_cases_match_the_tshark_oracle() {
    if !require("python3") || !require("tshark") {
        return;
    }
    let dir = temp_dir("edge-oracle");
    let pcap = dir.join("edge.pcap");
    let status = Command::new("python3")
        .arg(fixtures().join("tools").join("make_edge_pcap.py"))
        .arg(&pcap)
        .args(["--random", "0"])
        .status()
        .expect("run python3");
    assert!(status.success(), "make_edge_pcap.py failed");
    let (csv, summary) = ours(&pcap);
    let oracle = |extra: &[&str]| run_oracle(&pcap, extra);
    assert_same_flows("edge cases vs oracle", &csv, &oracle(&[]));
    let want = parse_summary(&oracle(&["--summary"]));
    let got = parse_summary(&summary);
    assert!(got["total_frames"] > 5000);
    for k in [
        "total_frames",
        "total_bytes",
        "total_captured_bytes",
        "ip_frames",
        "non_ip_frames",
        "ip_invalid_frames",
        "nonfirst_fragment_frames",
        "truncated_frames",
        "flows",
    ] {
        assert_eq!(got.get(k), want.get(k), "summary {k}");
    }
}

/// A table far smaller than the number of flows (even a single entry, no timeouts):
/// flows are evicted while reading, and offline mode must still merge
/// every record back into exactly the ground truth (nothing rejected, nothing lost).
#[test]
fn tiny_tables_still_give_exact_flows() {
    if !require("python3") {
        return;
    }
    let dir = temp_dir("generated-tiny");
    let (pcap, truth) = generate(&dir, 5);
    let path = pcap.to_str().expect("utf-8");
    let want = std::fs::read_to_string(&truth).expect("truth");
    for args in [
        &["--max-flows", "200"][..],
        &[
            "--max-flows",
            "1",
            "--idle-timeout",
            "0",
            "--active-timeout",
            "0",
        ][..],
    ] {
        let mut all = vec!["--read", path];
        all.extend_from_slice(args);
        let out = run(&all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_same_flows(
            &format!("{args:?}"),
            &String::from_utf8(out.stdout).expect("utf-8"),
            &want,
        );
        let s = parse_summary(&String::from_utf8_lossy(&out.stderr));
        assert_eq!(s["table_rejects"], 0, "{args:?}");
        if args.contains(&"--max-flows") {
            assert!(
                s["table_evictions"] > 0,
                "{args:?}: the small table must have evicted"
            );
        }
    }
}

/// The same through the library with timeouts of microseconds (the CLI takes seconds and
/// the generated capture lasts ~60 ms): idle expiry, active-timeout splits and TCP closes
/// all happen while reading, and the merged flows still equal the ground truth.
#[test]
fn microsecond_timeouts_still_give_exact_flows() {
    use netwatch_capture::flow::TableConfig;
    use netwatch_capture::offline::{collect, write_flows, OutputFormat};
    use netwatch_capture::source::PcapFileSource;
    if !require("python3") {
        return;
    }
    let dir = temp_dir("generated-timeouts");
    let (pcap, truth) = generate(&dir, 9);
    let table = TableConfig {
        capacity: 1000,
        idle_timeout_ns: 50_000,
        active_timeout_ns: 200_000,
        close_linger_ns: 1_000,
        recency_granularity_ns: 10_000,
    };
    let mut src = PcapFileSource::open(&pcap).expect("open");
    let result = collect(&mut src, table).expect("read");
    let mut csv = Vec::new();
    write_flows(&result.flows, OutputFormat::Csv, &mut csv).expect("write");
    let want = std::fs::read_to_string(&truth).expect("truth");
    assert_same_flows(
        "µs timeouts",
        &String::from_utf8(csv).expect("utf-8"),
        &want,
    );
    assert_eq!(result.stats.table_rejects, 0);
}
