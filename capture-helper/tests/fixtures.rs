//! Every real capture in `tests/fixtures/` through the real binary, against the oracle's
//! expected flows (`X.flows.csv`, exact after sorting) and totals (`X.summary.txt`).

mod common;

use common::{assert_same_flows, fixtures, parse_summary, run};
use std::path::PathBuf;

/// Summary keys compared with the oracle (its `malformed_frames` is tshark's own judgement,
/// and `unsupported_linktype_frames` only applies to files we refuse).
const KEYS: [&str; 9] = [
    "total_frames",
    "total_bytes",
    "total_captured_bytes",
    "ip_frames",
    "non_ip_frames",
    "ip_invalid_frames",
    "nonfirst_fragment_frames",
    "truncated_frames",
    "flows",
];

fn captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("tests/fixtures exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    v.sort();
    v
}

fn expected(capture: &std::path::Path, ext: &str) -> String {
    let stem = capture
        .file_stem()
        .expect("stem")
        .to_string_lossy()
        .to_string();
    std::fs::read_to_string(capture.with_file_name(format!("{stem}.{ext}")))
        .expect("expected file beside the capture")
}

#[test]
fn every_ethernet_fixture_matches_the_oracle() {
    let caps = captures();
    let mut checked = 0;
    for cap in &caps {
        let name = cap.file_name().expect("name").to_string_lossy().to_string();
        let want_summary = parse_summary(&expected(cap, "summary.txt"));
        if want_summary
            .get("unsupported_linktype_frames")
            .copied()
            .unwrap_or(0)
            > 0
        {
            continue; // negative fixtures: see below
        }
        let out = run(&["--read", cap.to_str().expect("utf-8 path")]);
        assert!(
            out.status.success(),
            "{name}: exit {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let csv = String::from_utf8(out.stdout).expect("utf-8 CSV");
        assert_same_flows(&name, &csv, &expected(cap, "flows.csv"));
        let got = parse_summary(&String::from_utf8_lossy(&out.stderr));
        for k in KEYS {
            assert_eq!(got.get(k), want_summary.get(k), "{name}: summary {k}");
        }
        // Our own buckets add up.
        let b = |k: &str| got[k];
        assert_eq!(
            b("total_frames"),
            b("bucket_flow_frames")
                + b("bucket_non_ip_frames")
                + b("bucket_ip_invalid_frames")
                + b("bucket_truncated_frames"),
            "{name}: buckets"
        );
        checked += 1;
    }
    assert!(
        checked >= 21,
        "expected at least 21 Ethernet fixtures, found {checked}"
    );
}

#[test]
fn non_ethernet_fixture_is_refused_clearly() {
    let cap = fixtures().join("tcpdump_mptcp-v1.pcap");
    let out = run(&["--read", cap.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no flows on a refused file");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("unsupported link type 113"), "{err}");
}

#[test]
fn summary_flag_prints_the_summary_on_stdout() {
    let cap = fixtures().join("zeek_icmp_dot1q.pcap");
    let out = run(&["--read", cap.to_str().expect("utf-8 path"), "--summary"]);
    assert!(out.status.success());
    let got = parse_summary(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        (got["total_frames"], got["ip_frames"], got["non_ip_frames"]),
        (15, 9, 6)
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn json_lines_carry_the_same_flows() {
    let cap = fixtures().join("zeek_vlan-collisions.pcap");
    let path = cap.to_str().expect("utf-8 path");
    let csv = String::from_utf8(run(&["--read", path]).stdout).expect("utf-8");
    let out = run(&["--read", path, "--format", "json"]);
    assert!(out.status.success());
    let json = String::from_utf8(out.stdout).expect("utf-8");
    let rows: Vec<String> = csv.lines().skip(1).map(str::to_string).collect();
    let cols: Vec<&str> = csv.lines().next().expect("header").split(',').collect();
    assert_eq!(json.lines().count(), rows.len());
    for (line, row) in json.lines().zip(&rows) {
        let v: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
        for (c, cell) in cols.iter().zip(row.split(',')) {
            let field = &v[*c];
            let text = field
                .as_str()
                .map_or_else(|| field.to_string(), str::to_string);
            assert_eq!(text, cell, "column {c}");
        }
        assert!(v["initiator"] == "a" || v["initiator"] == "b");
    }
}
