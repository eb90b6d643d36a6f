//! Capture file formats and broken files through the real binary: pcap in both byte
//! orders and both timestamp units give the same flows; cut, corrupt, empty and foreign
//! files fail with one clear line and exit code 1, never a panic; usage errors exit 2.

mod common;

use common::{fixtures, run, temp_dir};
use std::path::Path;

fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).expect("fixture")
}

/// Rewrites a little-endian µs pcap in another byte order and/or with ns timestamps.
fn convert(le_us: &[u8], big_endian: bool, nanos: bool) -> Vec<u8> {
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let put32 = |out: &mut Vec<u8>, v: u32| {
        out.extend_from_slice(&if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    };
    let put16 = |out: &mut Vec<u8>, v: u16| {
        out.extend_from_slice(&if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    };
    assert_eq!(u32_at(le_us, 0), 0xa1b2_c3d4, "fixture must be LE µs pcap");
    let mut out = Vec::with_capacity(le_us.len());
    put32(&mut out, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    put16(&mut out, u16::from_le_bytes([le_us[4], le_us[5]]));
    put16(&mut out, u16::from_le_bytes([le_us[6], le_us[7]]));
    for at in [8, 12, 16, 20] {
        put32(&mut out, u32_at(le_us, at));
    }
    let mut pos = 24;
    while pos + 16 <= le_us.len() {
        let caplen = u32_at(le_us, pos + 8) as usize;
        put32(&mut out, u32_at(le_us, pos));
        let frac = u32_at(le_us, pos + 4);
        put32(&mut out, if nanos { frac * 1000 } else { frac });
        put32(&mut out, u32_at(le_us, pos + 8));
        put32(&mut out, u32_at(le_us, pos + 12));
        out.extend_from_slice(&le_us[pos + 16..pos + 16 + caplen]);
        pos += 16 + caplen;
    }
    out
}

fn flows_of(path: &Path) -> String {
    let out = run(&["--read", path.to_str().expect("utf-8")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn expect_error(path: &Path, needle: &str) {
    let out = run(&["--read", path.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}: {err}", path.display());
    assert!(out.stdout.is_empty(), "no flows on failure");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "{err} should mention {needle}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn byte_orders_and_timestamp_units_give_identical_flows() {
    let dir = temp_dir("formats");
    let original = read_fixture("zeek_tcp_timestamp.pcap");
    let want =
        std::fs::read_to_string(fixtures().join("zeek_tcp_timestamp.flows.csv")).expect("csv");
    for (be, ns) in [(false, false), (true, false), (false, true), (true, true)] {
        let p = dir.join(format!("be{be}-ns{ns}.pcap"));
        std::fs::write(&p, convert(&original, be, ns)).expect("write");
        assert_eq!(flows_of(&p), want, "big_endian={be} nanos={ns}");
    }
}

#[test]
fn standard_input_is_read_with_dash() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(common::bin())
        .args(["--read", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&read_fixture("zeek_http_cooper-grill-dvwa.pcapng"))
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let want = std::fs::read_to_string(fixtures().join("zeek_http_cooper-grill-dvwa.flows.csv"))
        .expect("csv");
    assert_eq!(String::from_utf8(out.stdout).expect("utf-8"), want);
}

#[test]
fn broken_files_fail_with_one_line() {
    let dir = temp_dir("broken");
    let pcap = read_fixture("zeek_http_bro.org.pcap");
    let pcapng = read_fixture("tcpdump_of13_ericsson.pcapng");

    let p = dir.join("cut-record.pcap");
    std::fs::write(&p, &pcap[..pcap.len() - 100]).expect("write");
    expect_error(&p, "cut short");

    let p = dir.join("cut-header.pcap");
    std::fs::write(&p, &pcap[..10]).expect("write");
    expect_error(&p, "cut short");

    let p = dir.join("cut-block.pcapng");
    std::fs::write(&p, &pcapng[..pcapng.len() - 7]).expect("write");
    expect_error(&p, "cut short");

    let p = dir.join("empty.pcap");
    std::fs::write(&p, b"").expect("write");
    expect_error(&p, "empty file");

    let p = dir.join("text.pcap");
    std::fs::write(&p, b"hello, this is not a capture\n").expect("write");
    expect_error(&p, "not a pcap or pcapng");

    let mut huge = pcap[..24 + 16].to_vec();
    huge[24 + 8..24 + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let p = dir.join("huge-caplen.pcap");
    std::fs::write(&p, &huge).expect("write");
    expect_error(&p, "exceeds the maximum");

    let mut bad_block = pcapng.clone();
    // Second block (after the section header): give it an absurd length.
    let shb_len = u32::from_le_bytes([pcapng[4], pcapng[5], pcapng[6], pcapng[7]]) as usize;
    bad_block[shb_len + 4..shb_len + 8].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    let p = dir.join("bad-block.pcapng");
    std::fs::write(&p, &bad_block).expect("write");
    expect_error(&p, "invalid pcapng block length");

    expect_error(&dir.join("does-not-exist.pcap"), "cannot open");
}

#[test]
fn usage_errors_exit_2() {
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["--read", "x.pcap", "--pace", "fast"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["--read", "x.pcap", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn header_only_capture_has_no_flows() {
    let dir = temp_dir("header-only");
    let p = dir.join("header-only.pcap");
    std::fs::write(&p, &read_fixture("zeek_http_bro.org.pcap")[..24]).expect("write");
    let out = run(&["--read", p.to_str().expect("utf-8"), "--summary"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("total_frames=0"));
}
