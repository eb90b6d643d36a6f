//! Issue 4, done-when 1: the real server, fixture captures replayed through the real
//! `netwatch-capture --read F --connect S --pace fast`, and the API checked against the
//! oracle's CSV: every flow (per-direction packets and bytes, first/last seen to the
//! nanosecond), the sums of `/metrics/history`, and the top-talker ranking. No root needed.

mod api_support;

use api_support::{all_flows, fixture, oracle, OracleFlow, Server};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Fixtures whose whole capture spans less than the retention window (an hour), so every
/// flow is still stored when the replay ends (longer ones expire by design).
const FIXTURES: &[&str] = &[
    "zeek_http_bro.org.pcap",
    "tcpdump_afs.pcap",
    "zeek_tls_tls-1.2-stream-keylog.pcap",
    "zeek_vlan-collisions.pcap",
    "zeek_ftp_ipv6.pcap",
    "zeek_communityid_icmp6.pcap",
    "zeek_ipv4_fragmented-3.pcap",
    "zeek_ipv6-fragmented-dns.pcap",
    "zeek_tcp_timestamp.pcap",
    "zeek_http_cooper-grill-dvwa.pcapng",
    "zeek_ntp_NTP-digest.pcap",
    "tcpdump_various_gre.pcap",
    "tcpdump_vxlan.pcap",
    "zeek_icmp_dot1q.pcap",
    "zeek_http-qinq-0.pcap",
];

fn oracle_of(pcap: &str) -> Vec<OracleFlow> {
    let stem = pcap.trim_end_matches(".pcapng").trim_end_matches(".pcap");
    oracle(&fixture(&format!("{stem}.flows.csv")))
}

/// Hosts ranked as the API promises: bytes desc, packets desc, address asc.
fn ranking(flows: &[OracleFlow]) -> Vec<(IpAddr, u64, u64)> {
    let mut hosts: BTreeMap<IpAddr, (u64, u64)> = BTreeMap::new();
    for f in flows {
        let bytes = f.ab.1 + f.ba.1;
        let packets = f.ab.0 + f.ba.0;
        for a in [f.key.addr_a, f.key.addr_b] {
            let e = hosts.entry(a).or_default();
            e.0 += bytes;
            e.1 += packets;
            if f.key.addr_a == f.key.addr_b {
                break;
            }
        }
    }
    let mut v: Vec<(IpAddr, u64, u64)> = hosts.into_iter().map(|(a, (b, p))| (a, b, p)).collect();
    v.sort_by(|x, y| y.1.cmp(&x.1).then(y.2.cmp(&x.2)).then(x.0.cmp(&y.0)));
    v
}

fn check_fixture(pcap: &str) {
    let expected = oracle_of(pcap);
    let server = Server::start(&[]);
    server.replay(&fixture(pcap));

    // Flows: exactly the oracle's.
    let got = all_flows(&server);
    let want: BTreeMap<_, _> = expected.iter().map(|f| (f.key, *f)).collect();
    for (k, w) in &want {
        let g = got
            .get(k)
            .unwrap_or_else(|| panic!("{pcap}: flow {k:?} missing"));
        assert_eq!(g, w, "{pcap}: flow differs from the oracle");
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{pcap}: extra flows: {:?}",
        got.keys()
            .filter(|k| !want.contains_key(k))
            .collect::<Vec<_>>()
    );

    // One flow by key.
    if let Some(f) = expected.first() {
        let list = server.json("/api/v1/flows?limit=1000");
        let key = list["flows"]
            .as_array()
            .expect("flows")
            .iter()
            .find(|x| api_support::api_flow(x).key == f.key)
            .and_then(|x| x["flowKey"].as_str())
            .expect("flowKey")
            .to_string();
        let one = server.json(&format!("/api/v1/flows/{key}"));
        assert_eq!(
            api_support::api_flow(&one),
            *f,
            "{pcap}: /flows/{{flowKey}}"
        );
    }

    // History: per-second sums over the last hour equal the capture's flow totals.
    let packets: u64 = expected.iter().map(|f| f.ab.0 + f.ba.0).sum();
    let bytes: u64 = expected.iter().map(|f| f.ab.1 + f.ba.1).sum();
    let h = server.json("/api/v1/metrics/history?duration=1h&interval=1s");
    let points = h["metrics"].as_array().expect("metrics");
    assert_eq!(points.len(), 3600, "{pcap}: one point per second");
    let sum = |k: &str| points.iter().map(|p| p[k].as_u64().expect(k)).sum::<u64>();
    assert_eq!(sum("packets"), packets, "{pcap}: history packets");
    assert_eq!(sum("bytes"), bytes, "{pcap}: history bytes");
    assert_eq!(sum("packetsPerSecond"), packets, "{pcap}: 1 s rates add up");
    assert_eq!(sum("bytesPerSecond"), bytes, "{pcap}: 1 s rates add up");
    let coarse = server.json("/api/v1/metrics/history?duration=1h&interval=1m");
    let cp = coarse["metrics"].as_array().expect("metrics");
    assert_eq!(cp.len(), 60);
    assert_eq!(
        cp.iter()
            .map(|p| p["bytes"].as_u64().expect("bytes"))
            .sum::<u64>(),
        bytes
    );

    // Top talkers over 1 h: ranked as computed from the oracle.
    let rank = ranking(&expected);
    let tt = server.json("/api/v1/top-talkers?duration=1h&limit=50");
    let rows = tt["top_talkers"].as_array().expect("top_talkers");
    assert_eq!(rows.len(), rank.len().min(50), "{pcap}: talkers");
    for (i, (row, (addr, b, p))) in rows.iter().zip(&rank).enumerate() {
        let id: IpAddr = row["identifier"]
            .as_str()
            .expect("identifier")
            .parse()
            .expect("ip");
        assert_eq!(
            (id, row["totalBytes"].as_u64(), row["totalPackets"].as_u64()),
            (*addr, Some(*b), Some(*p)),
            "{pcap}: talker #{}",
            i + 1
        );
        assert_eq!(row["rank"].as_u64(), Some(i as u64 + 1));
        let n = expected
            .iter()
            .filter(|f| f.key.addr_a == *addr || f.key.addr_b == *addr)
            .count() as u64;
        assert_eq!(
            row["flowCount"].as_u64(),
            Some(n),
            "{pcap}: flowCount of {addr}"
        );
    }
    assert_eq!(tt["total_bytes"].as_u64(), Some(bytes));

    // Health: the replay helper came, sent everything and said Bye; the clock is the capture's.
    let health = server.health_when(|h| h["capture_active"] == false);
    assert_eq!(health["clock"], "replay");
    let helpers = health["helpers"].as_array().expect("helpers");
    assert_eq!(helpers.len(), 1);
    assert_eq!(helpers[0]["said_bye"], true);
    assert_eq!(health["ingest"]["invalid_records"], 0);
    assert_eq!(health["ingest"]["duplicate_batches"], 0);
    if let Some(newest) = expected.iter().map(|f| f.last_ns).max() {
        assert!(api_support::ns(health["store_time"].as_str().expect("store_time")) > newest);
    }
}

#[test]
fn replayed_fixtures_match_the_oracle_through_the_api() {
    for pcap in FIXTURES {
        check_fixture(pcap);
    }
}

#[test]
fn a_non_ethernet_capture_is_refused_and_the_store_stays_empty() {
    let server = Server::start(&[]);
    let out = std::process::Command::new(api_support::bin("netwatch-capture"))
        .arg("--read")
        .arg(fixture("tcpdump_mptcp-v1.pcap"))
        .arg("--connect")
        .arg(&server.socket)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.json("/api/v1/flows")["pagination"]["total_count"], 0);
}

#[test]
fn two_replays_make_two_helper_instances_in_health() {
    let server = Server::start(&[]);
    server.replay(&fixture("zeek_http-qinq-0.pcap"));
    server.replay(&fixture("zeek_http-qinq-0.pcap"));
    let h = server.health_when(|h| h["capture_active"] == false);
    let helpers = h["helpers"].as_array().expect("helpers");
    assert_eq!(helpers.len(), 2);
    assert_ne!(helpers[0]["instance"], helpers[1]["instance"]);
    // Each replay is a new instance: its deltas add up (the same flow twice).
    let flows = all_flows(&server);
    let o = oracle_of("zeek_http-qinq-0.pcap");
    let f = flows.get(&o[0].key).expect("flow");
    assert_eq!(f.ab.0, 2 * o[0].ab.0);
    assert_eq!(
        h["status"], "unhealthy",
        "no helper connected after the replays"
    );
}
