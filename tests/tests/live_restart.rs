//! Restarts with counted traffic (needs root): kill -9 of the server, SIGTERM and restart of
//! the helper, a backlog too small for the outage, kill -9 of the helper. Traffic is UDP
//! datagrams of a fixed size from one source port per phase, so every phase is one flow whose
//! packets and bytes are known exactly.

mod live_support;

use live_support::*;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const SIZE: usize = 200;
/// Bytes of one datagram on the wire: Ethernet 14 + IPv4 20 + UDP 8 + payload.
const WIRE: u64 = 14 + 20 + 8 + SIZE as u64;

/// Sends `n` datagrams from `sport` in `ns_b` to A:9999, `per_tick` every `tick_ms`.
fn send_udp(pair: &VethPair, sport: u16, n: usize, per_tick: usize, tick_ms: u64) {
    let py = format!(
        "import socket,time\nu=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nu.bind(('',{sport}))\n\
         for i in range({n}):\n    u.sendto(b'z'*{SIZE},('{A4}',9999))\n    \
         if (i+1)%{per_tick}==0: time.sleep({tick})\n",
        tick = tick_ms as f64 / 1000.0
    );
    let st = std::process::Command::new("ip")
        .args(["netns", "exec", &pair.ns_b, "python3", "-c", &py])
        .status()
        .expect("python3");
    assert!(st.success());
}

/// Packets and bytes from B:sport to A:9999 as the server reports them (0 when absent).
fn counted(server: &Server, sport: u16) -> (u64, u64) {
    let b: IpAddr = B4.parse().expect("ip");
    let a: IpAddr = A4.parse().expect("ip");
    let flows = server.flows();
    // A4 (10.99.0.1) < B4 (10.99.0.2): A is the receiver, the datagrams count as B->A.
    flows
        .get(&(17, 0, (a, 9999), (b, sport)))
        .map_or((0, 0), |c| (c.2, c.3))
}

fn wait_counted(server: &Server, sport: u16, want: (u64, u64)) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = counted(server, sport);
        if got == want || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn setup() -> Option<(TempDir, VethPair, Server, Proc)> {
    if skip_unless_root() {
        return None;
    }
    require(&["ip", "setpriv", "curl", "python3"]);
    let dir = TempDir::world_writable("live");
    let pair = VethPair::new();
    let server = Server::start(&dir, None);
    let traffic = start_traffic_server(&pair, &dir);
    Some((dir, pair, server, traffic))
}

#[test]
fn server_kill9_and_restart_loses_and_doubles_nothing_needs_root() {
    let Some((dir, pair, server, _traffic)) = setup() else {
        return;
    };
    let mut helper = start_helper(&pair, &server.socket, &dir.join("helper.log"), &[], &[]);
    server.wait_helper(&pair.va, None);

    send_udp(&pair, 41001, 100, 100, 0);
    assert_eq!(
        wait_counted(&server, 41001, (100, 100 * WIRE)),
        (100, 100 * WIRE)
    );
    // Let the helper read the Acks of phase 1 (it pumps every export interval).
    std::thread::sleep(Duration::from_millis(1000));

    let port = server.port;
    let mut server = server;
    server.proc.kill9();
    // Phase 2 while the server is gone: the batches wait in the helper's backlog.
    send_udp(&pair, 41002, 150, 30, 200);
    std::thread::sleep(Duration::from_millis(600));
    let server = Server::start(&dir, Some(port));
    send_udp(&pair, 41003, 50, 50, 0);
    server.wait_helper(&pair.va, None);

    assert_eq!(
        wait_counted(&server, 41002, (150, 150 * WIRE)),
        (150, 150 * WIRE),
        "outage traffic"
    );
    assert_eq!(
        wait_counted(&server, 41003, (50, 50 * WIRE)),
        (50, 50 * WIRE),
        "traffic after restart"
    );
    let st = helper.term();
    assert!(st.success(), "helper exit {st:?}");
    // Nothing counted twice: phase 1 was acknowledged by the old server and is not resent.
    assert_eq!(
        counted(&server, 41001),
        (0, 0),
        "phase 1 resent to the new server"
    );
    assert_eq!(counted(&server, 41002), (150, 150 * WIRE));
    let h = server.get("/api/v1/health");
    assert_eq!(h["drops"]["backlog_batches"], 0, "{h}");
}

#[test]
fn helper_sigterm_and_restart_flushes_everything_needs_root() {
    let Some((dir, pair, server, _traffic)) = setup() else {
        return;
    };
    let mut h1 = start_helper(&pair, &server.socket, &dir.join("h1.log"), &[], &[]);
    let first = server.wait_helper(&pair.va, None);
    send_udp(&pair, 42001, 100, 100, 0);
    // SIGTERM right away: what the helper holds (not yet exported) is flushed before exit.
    let st = h1.term();
    assert!(st.success(), "helper exit {st:?}");
    assert_eq!(
        counted(&server, 42001),
        (100, 100 * WIRE),
        "flushed on SIGTERM"
    );

    let mut h2 = start_helper(&pair, &server.socket, &dir.join("h2.log"), &[], &[]);
    server.wait_helper(&pair.va, Some(&first));
    send_udp(&pair, 42001, 30, 30, 0);
    send_udp(&pair, 42002, 70, 70, 0);
    let st = h2.term();
    assert!(st.success(), "helper exit {st:?}");
    assert_eq!(
        counted(&server, 42001),
        (130, 130 * WIRE),
        "same flow across two helper instances"
    );
    assert_eq!(counted(&server, 42002), (70, 70 * WIRE));
    let instances: Vec<_> = server
        .helpers()
        .iter()
        .map(|h| h["instance"].clone())
        .collect();
    assert_eq!(instances.len(), 2, "{instances:?}");
}

#[test]
fn an_outage_past_the_backlog_bound_is_reported_in_health_needs_root() {
    let Some((dir, pair, server, _traffic)) = setup() else {
        return;
    };
    let mut helper = start_helper(
        &pair,
        &server.socket,
        &dir.join("helper.log"),
        &["--instance-backlog", "3"],
        &[],
    );
    server.wait_helper(&pair.va, None);
    let port = server.port;
    let mut server = server;
    server.proc.kill9();
    // ~15 export intervals with traffic in each, against a backlog of 3 batches.
    send_udp(&pair, 43001, 300, 20, 200);
    let server = Server::start(&dir, Some(port));
    server.wait_helper(&pair.va, None);
    let st = helper.term();
    assert!(st.success(), "helper exit {st:?}");
    let h = server.get("/api/v1/health");
    let lost_batches = h["drops"]["backlog_batches"].as_u64().unwrap_or(0);
    let lost_records = h["drops"]["backlog_records"].as_u64().unwrap_or(0);
    assert!(
        lost_batches >= 5 && lost_records >= 5,
        "loss not reported: {h}"
    );
    let (packets, _) = counted(&server, 43001);
    assert!(
        packets < 300,
        "all 300 arrived although the backlog overflowed ({packets})"
    );
}

#[test]
fn helper_kill9_loses_at_most_one_interval_and_shows_a_new_instance_needs_root() {
    let Some((dir, pair, server, _traffic)) = setup() else {
        return;
    };
    let mut h1 = start_helper(&pair, &server.socket, &dir.join("h1.log"), &[], &[]);
    let first = server.wait_helper(&pair.va, None);
    send_udp(&pair, 44001, 100, 100, 0);
    // Exported at the next interval (200 ms): wait until the server has it, then kill -9.
    assert_eq!(
        wait_counted(&server, 44001, (100, 100 * WIRE)),
        (100, 100 * WIRE)
    );
    h1.kill9();
    let mut h2 = start_helper(&pair, &server.socket, &dir.join("h2.log"), &[], &[]);
    let second = server.wait_helper(&pair.va, Some(&first));
    assert_ne!(first, second);
    send_udp(&pair, 44002, 40, 40, 0);
    assert!(h2.term().success());
    assert_eq!(
        counted(&server, 44001),
        (100, 100 * WIRE),
        "exported traffic survives the kill"
    );
    assert_eq!(counted(&server, 44002), (40, 40 * WIRE));
    let helpers = server.helpers();
    assert_eq!(helpers.len(), 2, "{helpers:?}");
    let metrics = server.get_text("/metrics");
    let conns = metrics
        .lines()
        .find(|l| l.starts_with("netwatch_ingest_connections_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .expect("netwatch_ingest_connections_total in /metrics");
    assert!(
        conns >= 2.0,
        "/metrics does not show the second helper connection:\n{metrics}"
    );
}
