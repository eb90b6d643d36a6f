//! Graceful shutdown: on SIGTERM the server says `Bye` to connected helpers, stops, removes
//! its socket and exits 0. A replay paced in real time gives the same flows as a fast one.

mod api_support;

use api_support::{all_flows, fixture, oracle, RawHelper, Server};
use netwatch_protocol::Message;
use std::time::{Duration, Instant};

#[test]
fn sigterm_says_bye_to_helpers_removes_the_socket_and_exits_0() {
    let mut s = Server::start(&[]);
    // Several helpers, so that the server stops while many connection tasks are live: each
    // must still get its Bye (the runtime once dropped them before they wrote it).
    let mut helpers: Vec<RawHelper> = (0..4)
        .map(|i| RawHelper::connect(&s.socket, 77 + i))
        .collect();
    for h in &mut helpers {
        h.hello();
    }
    let pid = s.child.id().to_string();
    let st = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(st.success());
    // Every helper gets Bye, then EOF.
    for h in &mut helpers {
        let instance = h.instance;
        let bye = h.next_message();
        assert!(bye.is_some(), "helper {instance:x} closed without Bye");
        assert!(matches!(bye, Some(Message::Bye(_))), "{bye:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = s.child.try_wait().expect("wait") {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "server did not stop: {}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{}", s.log());
    assert!(!s.socket.exists(), "socket removed");
}

#[test]
fn realtime_pace_gives_the_same_flows_as_fast() {
    let s = Server::start(&[]);
    let out = std::process::Command::new(api_support::bin("netwatch-capture"))
        .arg("--read")
        .arg(fixture("zeek_vlan-collisions.pcap"))
        .arg("--connect")
        .arg(&s.socket)
        .args(["--pace", "realtime"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = all_flows(&s);
    let want = oracle(&fixture("zeek_vlan-collisions.flows.csv"));
    assert_eq!(got.len(), want.len());
    for w in &want {
        assert_eq!(got.get(&w.key), Some(w));
    }
}

#[test]
fn the_export_interval_changes_batches_not_flows() {
    let s = Server::start(&[]);
    let out = std::process::Command::new(api_support::bin("netwatch-capture"))
        .arg("--read")
        .arg(fixture("tcpdump_afs.pcap"))
        .arg("--connect")
        .arg(&s.socket)
        .args(["--pace", "fast", "--export-interval", "50"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = all_flows(&s);
    let want = oracle(&fixture("tcpdump_afs.flows.csv"));
    assert_eq!(got.len(), want.len());
    for w in &want {
        assert_eq!(got.get(&w.key), Some(w));
    }
    // Shorter intervals: more batches than the default 500 ms for the same flows.
    let h = s.health_when(|h| h["capture_active"] == false);
    let fine = h["ingest"]["batches"].as_u64().unwrap_or(0);
    let d = Server::start(&[]);
    d.replay(&fixture("tcpdump_afs.pcap"));
    let hd = d.health_when(|h| h["capture_active"] == false);
    let coarse = hd["ingest"]["batches"].as_u64().unwrap_or(0);
    assert!(
        fine > coarse && coarse > 0,
        "50 ms: {fine} batches, 500 ms: {coarse}"
    );
    assert_eq!(all_flows(&d), got);
}
