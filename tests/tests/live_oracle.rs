//! Live capture against the oracle (needs root): the real helper (seccomp on) captures one
//! end of a veth pair in private namespaces while tcpdump captures the same interface; the
//! server's flows must equal the oracle's flows of tcpdump's capture exactly.
//!
//! Both captures use the same filter, `not ip6 multicast`: it keeps every frame of the test's
//! traffic (and the unicast neighbour-discovery answers it causes) but drops the IPv6
//! multicast chatter (MLD reports, neighbour solicitations) the kernel sends on its own
//! schedule, which could fall between the start of one capture and the other.

mod live_support;

use live_support::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FILTER: &str = "not ip6 multicast";

#[test]
fn live_flows_equal_the_oracle_of_a_side_by_side_tcpdump_needs_root() {
    compare_with_oracle(&[]);
}

/// Two capture threads in a PACKET_FANOUT hash group: the merged flows are still exact.
#[test]
fn fanout_threads_flows_equal_the_oracle_needs_root() {
    compare_with_oracle(&["--threads", "2"]);
}

fn compare_with_oracle(extra: &[&str]) {
    if skip_unless_root() {
        return;
    }
    require(&[
        "ip", "tcpdump", "tshark", "python3", "ping", "setpriv", "curl",
    ]);
    let dir = TempDir::world_writable("live");
    let pair = VethPair::new();
    let server = Server::start(&dir, None);
    let _traffic_server = start_traffic_server(&pair, &dir);

    // tcpdump first, then the helper: both are running before any test traffic starts.
    let pcap = dir.join("side.pcap");
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &pair.ns_a,
            "tcpdump",
            "-i",
            &pair.va,
            "-n",
            "-s",
            "0",
            "-U",
            // Immediate mode: without it libpcap hands tcpdump a ring block only when the
            // block retires (1 s), and SIGINT ends tcpdump with the last block unwritten.
            "--immediate-mode",
            // A 64 MiB kernel buffer: veth carries 64 KiB GSO frames, and tcpdump's default
            // 2 MiB can overflow while a loaded 2-core machine starves it.
            "-B",
            "65536",
            "-w",
        ])
        .arg(&pcap)
        .arg(FILTER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    let mut tcpdump = Proc {
        child,
        what: "tcpdump".into(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&pcap).map_or(0, |m| m.len()) < 24 {
        assert!(Instant::now() < deadline, "tcpdump did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut args = vec!["--filter", FILTER];
    args.extend_from_slice(extra);
    let mut helper = start_helper(&pair, &server.socket, &dir.join("helper.log"), &args, &[]);
    server.wait_helper(&pair.va, None);
    std::thread::sleep(Duration::from_millis(300));

    // The known traffic: ICMP echo over both families, UDP datagrams of chosen sizes, a TCP
    // transfer with handshake and close over both families.
    sh(&format!(
        "ip netns exec {} ping -c 3 -i 0.2 -q {A4} >/dev/null",
        pair.ns_b
    ));
    sh(&format!(
        "ip netns exec {} ping -6 -c 3 -i 0.2 -q {A6} >/dev/null",
        pair.ns_b
    ));
    send_traffic(&pair, &dir, &[1, 100, 555, 1472], 200_000, 40_000);
    std::thread::sleep(Duration::from_millis(500));

    // Stop tcpdump (it flushes), then the helper: SIGTERM makes it end every flow, send the
    // last batch, wait for the Ack and say Bye.
    tcpdump.signal(2);
    assert!(
        tcpdump.wait_exit(Duration::from_secs(10)).is_some(),
        "tcpdump did not stop"
    );
    let st = helper.term();
    let log = std::fs::read_to_string(dir.join("helper.log")).unwrap_or_default();
    assert!(st.success(), "helper exit {st:?}\n{log}");
    assert!(
        log.contains("seccomp allowlist applied"),
        "seccomp was not on:\n{log}"
    );

    let expected = oracle(&pcap);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = server.flows();
    while got != expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        got = server.flows();
    }

    // Sanity: the capture really holds the test traffic (so equality is not trivially true).
    let udp4 = expected
        .iter()
        .find(|((p, _, a, b), _)| *p == 17 && (a.1 == 9999 || b.1 == 9999) && a.0.is_ipv4())
        .expect("IPv4 UDP flow in the capture");
    assert_eq!(udp4.1 .0 + udp4.1 .2, 4, "4 datagrams");
    let tcp6 = expected
        .iter()
        .find(|((p, _, a, b), _)| *p == 6 && (a.1 == 8888 || b.1 == 8888) && a.0.is_ipv6())
        .expect("IPv6 TCP flow in the capture");
    assert!(
        tcp6.1 .1 + tcp6.1 .3 > 200_000,
        "TCP transfer bytes: {:?}",
        tcp6.1
    );
    assert!(expected.keys().any(|(p, ..)| *p == 1), "ICMP flow");
    assert!(expected.keys().any(|(p, ..)| *p == 58), "ICMPv6 flow");

    eprintln!(
        "oracle flows: {}, server flows: {}",
        expected.len(),
        got.len()
    );
    if got != expected {
        let mut msg = String::new();
        for (k, v) in &expected {
            if got.get(k) != Some(v) {
                msg += &format!("oracle {k:?} = {v:?}, server {:?}\n", got.get(k));
            }
        }
        for (k, v) in &got {
            if !expected.contains_key(k) {
                msg += &format!("server only {k:?} = {v:?}\n");
            }
        }
        panic!("server flows differ from the oracle:\n{msg}\nhelper log:\n{log}");
    }
}
