//! End to end: the workspace's `netwatch-capture` binary (target/<profile>/, built by
//! `cargo build --workspace --bins`) in offline mode over the whole fixture corpus, as a user
//! runs it: CSV equal to the oracle's, JSON lines carrying the same flows, totals adding up,
//! and clear refusals with the documented exit codes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let p = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .join("netwatch-capture");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("spawn netwatch-capture")
}

fn summary(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

fn sorted_rows(csv: &str) -> Vec<String> {
    let mut v: Vec<String> = csv.lines().skip(1).map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn corpus_csv_json_and_summary_agree_with_the_oracle() {
    let mut caps: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("tests/fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    caps.sort();
    let mut checked = 0;
    for cap in caps {
        let stem = cap.file_stem().expect("stem").to_string_lossy().to_string();
        let want_sum = summary(
            &std::fs::read_to_string(cap.with_file_name(format!("{stem}.summary.txt")))
                .expect("summary"),
        );
        if want_sum["unsupported_linktype_frames"] > 0 {
            continue;
        }
        let path = cap.to_str().expect("utf-8");
        let out = run(&["--read", path]);
        assert!(
            out.status.success(),
            "{stem}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let csv = String::from_utf8(out.stdout).expect("utf-8");
        let want =
            std::fs::read_to_string(cap.with_file_name(format!("{stem}.flows.csv"))).expect("csv");
        let (got_rows, want_rows) = (sorted_rows(&csv), sorted_rows(&want));
        if let Some((g, w)) = got_rows.iter().zip(&want_rows).find(|(g, w)| g != w) {
            panic!("{stem}: first differing flow:\n  got      {g}\n  expected {w}");
        }
        assert_eq!(got_rows.len(), want_rows.len(), "{stem}: number of flows");

        let got_sum = summary(&String::from_utf8_lossy(&out.stderr));
        for k in [
            "total_frames",
            "total_bytes",
            "ip_frames",
            "non_ip_frames",
            "ip_invalid_frames",
        ] {
            assert_eq!(got_sum[k], want_sum[k], "{stem}: {k}");
        }

        // JSON lines: same flows, packets add up to the IP frames.
        let json = run(&["--read", path, "--format", "json", "--summary"]);
        assert!(json.status.success());
        let json_sum = summary(&String::from_utf8_lossy(&json.stdout));
        assert_eq!(
            json_sum, got_sum,
            "{stem}: --summary prints the same summary on stdout"
        );
        let out = run(&["--read", path, "--format", "json"]);
        let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        assert_eq!(lines.len(), got_rows.len(), "{stem}: JSON flows");
        let packets: u64 = lines
            .iter()
            .map(|v| v["packets_ab"].as_u64().unwrap_or(0) + v["packets_ba"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(
            packets, want_sum["ip_frames"],
            "{stem}: packets in flows = IP frames"
        );
        checked += 1;
    }
    assert!(checked >= 21, "only {checked} fixtures checked");
}

#[test]
fn refusals_have_documented_exit_codes() {
    let sll = fixtures().join("tcpdump_mptcp-v1.pcap");
    let out = run(&["--read", sll.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "non-Ethernet capture");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("netwatch-capture: error:") && err.contains("link type 113"),
        "{err}"
    );
    assert_eq!(
        run(&["--read", "/nonexistent/x.pcap"]).status.code(),
        Some(1)
    );
    assert_eq!(run(&["--format", "json"]).status.code(), Some(2), "no mode");
    assert_eq!(
        run(&["--read", "x", "--interface", "lo"]).status.code(),
        Some(2),
        "two modes"
    );
}
