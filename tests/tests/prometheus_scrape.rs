//! Debian's real `prometheus` server scrapes Netwatch's `/metrics` and a PromQL query through
//! its HTTP API returns the packet and byte counters of a replayed capture, equal to the
//! capture's own totals (tests/fixtures/<x>.summary.txt, from TShark).
//!
//! Needs the `prometheus` package (.ci/install.d/50-deploy.sh); without it the test fails
//! with that message, it never passes silently. The server runs with a token, so the scrape
//! also proves Prometheus' `authorization: credentials_file` works against it.

mod security_support;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use security_support::{
    bin, free_port, have, request, run_ok, try_request, workspace, write_token, Server, TempDir,
    TOKEN,
};

const FIXTURE: &str = "tcpdump_afs";

fn summary(name: &str) -> HashMap<String, u64> {
    let p = workspace().join(format!("tests/fixtures/{name}.summary.txt"));
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter_map(|(k, v)| v.trim().parse().ok().map(|v| (k.trim().to_owned(), v)))
        .collect()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs an instant query; returns the single sample's value, if there is one.
fn query(prom: std::net::SocketAddr, promql: &str) -> Option<f64> {
    let r = try_request(
        prom,
        "GET",
        &format!("/api/v1/query?query={}", urlencode(promql)),
        &[],
    )?;
    if r.status != 200 {
        return None;
    }
    let j = r.json();
    let result = j["data"]["result"].as_array()?;
    if result.len() != 1 {
        return None;
    }
    result[0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn prometheus_scrapes_the_replayed_packet_counter() {
    assert!(
        have("prometheus"),
        "needs Debian's prometheus package (apt-get install prometheus; .ci/install.d/50-deploy.sh)"
    );
    let expected = summary(FIXTURE);
    let dir = TempDir::new("prom");
    let token = write_token(&dir, TOKEN);
    let server = Server::start(&["--token-file", token.to_str().expect("utf-8")], &[]);

    // Replay the capture into the server, as fast as possible.
    let pcap = workspace().join(format!("tests/fixtures/{FIXTURE}.pcap"));
    run_ok(
        Command::new(bin("netwatch-capture"))
            .arg("--read")
            .arg(&pcap)
            .arg("--connect")
            .arg(&server.socket)
            .args(["--pace", "fast"]),
    );

    // A scrape config pointed at Netwatch on loopback, with the bearer token from a file.
    let prom_port = free_port();
    let prom_addr: std::net::SocketAddr = format!("127.0.0.1:{prom_port}").parse().expect("addr");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
scrape_configs:\n  - job_name: netwatch\n    metrics_path: /metrics\n    authorization:\n      type: Bearer\n      credentials_file: {token}\n    static_configs:\n      - targets: ['{target}']\n",
        token = token.display(),
        target = server.addr
    );
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config).expect("write config");
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
    let _prom = Child(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    );

    let packets_q =
        format!("netwatch_capture_packets_total{{job=\"netwatch\",interface=\"{FIXTURE}.pcap\"}}");
    let bytes_q =
        format!("netwatch_capture_bytes_total{{job=\"netwatch\",interface=\"{FIXTURE}.pcap\"}}");
    let deadline = Instant::now() + Duration::from_secs(90);
    let packets = loop {
        if let Some(v) = query(prom_addr, &packets_q) {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "no sample of {packets_q} in Prometheus after 90 s; prometheus log:\n{}\nnetwatch log:\n{}",
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    #[allow(clippy::cast_precision_loss)]
    let frames = expected["total_frames"] as f64;
    assert_eq!(
        packets, frames,
        "packets counted vs {FIXTURE}.summary.txt total_frames"
    );
    #[allow(clippy::cast_precision_loss)]
    let bytes = expected["total_bytes"] as f64;
    assert_eq!(
        query(prom_addr, &bytes_q),
        Some(bytes),
        "bytes vs total_bytes"
    );
    // The target is healthy and every scrape was authorized.
    assert_eq!(query(prom_addr, "up{job=\"netwatch\"}"), Some(1.0));
    let r = request(prom_addr, "GET", "/api/v1/targets", &[]);
    let j = r.json();
    let t = &j["data"]["activeTargets"][0];
    assert_eq!(t["health"], "up", "{j}");
    assert_eq!(t["lastError"], "", "{j}");
    // Flows and the server's own HTTP metrics made it too.
    let flows = query(prom_addr, "sum(netwatch_flows{job=\"netwatch\"})").expect("flows");
    #[allow(clippy::cast_precision_loss)]
    let expected_flows = expected["flows"] as f64;
    assert_eq!(flows, expected_flows, "flows in the store vs summary flows");
    let by_proto = query(
        prom_addr,
        "sum(netwatch_flows_by_protocol{job=\"netwatch\"})",
    )
    .expect("by protocol");
    assert_eq!(by_proto, expected_flows, "flows by protocol add up");
    // Per protocol, as the oracle's flow list says (column 1: IP protocol number).
    let csv =
        std::fs::read_to_string(workspace().join(format!("tests/fixtures/{FIXTURE}.flows.csv")))
            .expect("flows.csv");
    #[allow(clippy::cast_precision_loss)]
    let udp = csv
        .lines()
        .skip(1)
        .filter(|l| l.split(',').next() == Some("17"))
        .count() as f64;
    assert!(udp > 0.0);
    assert_eq!(
        query(
            prom_addr,
            "netwatch_flows_by_protocol{job=\"netwatch\",protocol=\"udp\"}"
        ),
        Some(udp),
        "UDP flows of {FIXTURE}"
    );
    // A scrape is counted once answered, so it shows in the next scrape.
    let q = "netwatch_http_requests_total{job=\"netwatch\",route=\"/metrics\",status=\"200\"}";
    while !query(prom_addr, q).is_some_and(|v| v >= 1.0) {
        assert!(
            Instant::now() < deadline,
            "the scrapes themselves are not counted: {q}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
