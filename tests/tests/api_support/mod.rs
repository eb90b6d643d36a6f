//! Support for the API and ingest end-to-end tests: the real `netwatch-server` on a temp
//! socket and an OS-chosen port (read back from its log), the real `netwatch-capture` for
//! replays, the shared HTTP/1.1 client, a raw protocol client, and the oracle CSV.
#![allow(dead_code)]

use netwatch_protocol::{
    codec, CaptureStats, DirCounters, FlowBatch, FlowKey, FlowRecord, Hello, Message, Side,
    SourceKind, MAGIC, PROTOCOL_VERSION,
};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// Shared with the other support modules (each test uses only some of them).
#[allow(unused_imports)]
pub use netwatch_e2e::{bin, request, workspace, Response, TempDir};

/// A fixture path.
pub fn fixture(name: &str) -> PathBuf {
    workspace().join("tests/fixtures").join(name)
}

/// A running server, killed on drop.
#[derive(Debug)]
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub socket: PathBuf,
    pub dir: TempDir,
}

impl Server {
    /// Starts `netwatch-server --listen 127.0.0.1:0 --socket <tmp>` plus `extra` flags and
    /// waits for the "listening on" log line.
    pub fn start(extra: &[&str]) -> Server {
        let dir = TempDir::new("srv");
        let socket = dir.join("capture.sock");
        let log = dir.join("server.log");
        let child = Command::new(bin("netwatch-server"))
            .args(["--listen", "127.0.0.1:0", "--socket"])
            .arg(&socket)
            .args(extra)
            .env("NETWATCH_LOG", "info")
            .env("NETWATCH_LOG_FORMAT", "text")
            .env_remove("NETWATCH_CONFIG")
            .env_remove("NETWATCH_TOKEN")
            .env_remove("NETWATCH_TOKEN_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn netwatch-server");
        let mut s = Server {
            child,
            addr: "127.0.0.1:1".parse().expect("addr"),
            socket,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("netwatch-server exited ({st}): {}", s.log());
            }
            let text = s.log();
            if let Some(i) = text.find("listening on http://") {
                let rest = &text[i + "listening on http://".len()..];
                let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
                s.addr = rest[..end].parse().expect("listen address in the log");
                return s;
            }
            assert!(Instant::now() < deadline, "server did not start: {text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[])
    }

    pub fn json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    }

    pub fn health(&self) -> serde_json::Value {
        let r = self.get("/api/v1/health");
        assert!(
            r.status == 200 || r.status == 503,
            "health: {} {}",
            r.status,
            r.text()
        );
        r.json()
    }

    /// Health once `pred` holds (the server records a helper's disconnect right after the
    /// helper process has exited, so tests wait for it); panics after 10 s.
    pub fn health_when(&self, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let h = self.health();
            if pred(&h) {
                return h;
            }
            assert!(
                Instant::now() < deadline,
                "health never reached the expected state: {h}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `netwatch-capture --read file --connect socket --pace fast`; asserts exit 0.
    pub fn replay(&self, file: &Path) {
        let out = Command::new(bin("netwatch-capture"))
            .arg("--read")
            .arg(file)
            .arg("--connect")
            .arg(&self.socket)
            .args(["--pace", "fast"])
            .output()
            .expect("run netwatch-capture");
        assert!(
            out.status.success(),
            "replay of {} failed ({}): {}",
            file.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One oracle flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OracleFlow {
    pub key: FlowKey,
    pub ab: (u64, u64),
    pub ba: (u64, u64),
    pub first_ns: u64,
    pub last_ns: u64,
}

/// Reads `X.flows.csv` of the oracle.
pub fn oracle(csv: &Path) -> Vec<OracleFlow> {
    let text = std::fs::read_to_string(csv).expect("oracle csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).expect("column");
    let (c_proto, c_a, c_pa, c_b, c_pb, c_vlan) = (
        col("proto"),
        col("addr_a"),
        col("port_a"),
        col("addr_b"),
        col("port_b"),
        col("vlan"),
    );
    let (c_pab, c_bab, c_pba, c_bba, c_first, c_last) = (
        col("packets_ab"),
        col("bytes_ab"),
        col("packets_ba"),
        col("bytes_ba"),
        col("first_ns"),
        col("last_ns"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let n = |i: usize| -> u64 { f[i].parse().expect("number") };
            let a: IpAddr = f[c_a].parse().expect("addr_a");
            let b: IpAddr = f[c_b].parse().expect("addr_b");
            OracleFlow {
                key: FlowKey {
                    addr_a: a,
                    port_a: n(c_pa) as u16,
                    addr_b: b,
                    port_b: n(c_pb) as u16,
                    proto: n(c_proto) as u8,
                    vlan: n(c_vlan) as u16,
                },
                ab: (n(c_pab), n(c_bab)),
                ba: (n(c_pba), n(c_bba)),
                first_ns: n(c_first),
                last_ns: n(c_last),
            }
        })
        .collect()
}

/// RFC 3339 text to ns since the epoch.
pub fn ns(iso: &str) -> u64 {
    let t = chrono::DateTime::parse_from_rfc3339(iso).expect("RFC 3339 time");
    u64::try_from(t.timestamp()).expect("after 1970") * 1_000_000_000
        + u64::from(t.timestamp_subsec_nanos())
}

/// A flow of the API in the oracle's shape (canonical key, per side counters).
pub fn api_flow(f: &serde_json::Value) -> OracleFlow {
    let s = |k: &str| f[k].as_str().unwrap_or_else(|| panic!("{k} in {f}"));
    let u = |k: &str| f[k].as_u64().unwrap_or_else(|| panic!("{k} in {f}"));
    let src: IpAddr = s("srcIP").parse().expect("srcIP");
    let dst: IpAddr = s("dstIP").parse().expect("dstIP");
    let (key, side) = FlowKey::from_packet(
        src,
        u("srcPort") as u16,
        dst,
        u("dstPort") as u16,
        u("protocol") as u8,
        u("vlan") as u16,
    );
    let from_src = (u("srcPackets"), u("srcBytes"));
    let from_dst = (u("dstPackets"), u("dstBytes"));
    assert_eq!(from_src.0 + from_dst.0, u("packets"), "{f}");
    assert_eq!(from_src.1 + from_dst.1, u("bytes"), "{f}");
    let (ab, ba) = if side == Side::A {
        (from_src, from_dst)
    } else {
        (from_dst, from_src)
    };
    OracleFlow {
        key,
        ab,
        ba,
        first_ns: ns(s("firstSeen")),
        last_ns: ns(s("lastSeen")),
    }
}

/// Every flow of the server, through JSON pages of 1000.
pub fn all_flows(s: &Server) -> BTreeMap<FlowKey, OracleFlow> {
    let mut out = BTreeMap::new();
    let mut offset = 0;
    loop {
        let v = s.json(&format!(
            "/api/v1/flows?limit=1000&offset={offset}&sort_by=first_seen&sort_order=asc"
        ));
        let flows = v["flows"].as_array().expect("flows");
        for f in flows {
            let o = api_flow(f);
            assert!(out.insert(o.key, o).is_none(), "flow listed twice: {f}");
        }
        offset += flows.len();
        if !v["pagination"]["has_more"].as_bool().expect("has_more") {
            assert_eq!(
                v["pagination"]["total_count"].as_u64(),
                Some(out.len() as u64)
            );
            return out;
        }
    }
}

/// A raw client of the ingest socket.
pub struct RawHelper {
    pub stream: UnixStream,
    pub instance: u64,
    buf: Vec<u8>,
}

impl RawHelper {
    pub fn connect(socket: &Path, instance: u64) -> RawHelper {
        let stream = UnixStream::connect(socket).expect("connect to the ingest socket");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        RawHelper {
            stream,
            instance,
            buf: Vec::new(),
        }
    }

    pub fn hello(&mut self) -> u64 {
        let h = Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            instance: self.instance,
            interface: "raw-test".into(),
            link_type: 1,
            snaplen: 65535,
            source: SourceKind::Replay,
            pid: std::process::id(),
            started_ns: 0,
            software: "e2e".into(),
        };
        self.send(&Message::Hello(h));
        self.ack()
    }

    pub fn send(&mut self, m: &Message) {
        let bytes = codec::encode(m).expect("encode");
        self.stream.write_all(&bytes).expect("write");
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn batch(&mut self, seq: u64, records: Vec<FlowRecord>) -> u64 {
        let end = records.iter().map(|r| r.last_ns).max().unwrap_or(0);
        self.send(&Message::FlowBatch(FlowBatch {
            instance: self.instance,
            seq,
            interval_start_ns: end.saturating_sub(500_000_000),
            interval_end_ns: end,
            records,
            stats: CaptureStats::default(),
        }));
        self.ack()
    }

    /// Reads the next Ack and returns its sequence.
    pub fn ack(&mut self) -> u64 {
        match self.next_message() {
            Some(Message::Ack(a)) => a.seq,
            Some(other) => panic!("expected Ack, got {other:?}"),
            None => panic!("server closed the connection instead of acknowledging"),
        }
    }

    /// The next message from the server (bytes already read first); `None` when the
    /// server closed the connection before a whole one arrived.
    pub fn next_message(&mut self) -> Option<Message> {
        loop {
            if let Ok((m, used)) = codec::decode(&self.buf) {
                self.buf.drain(..used);
                return Some(m);
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).expect("read from the server");
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// True when the server closed the connection (EOF or reset) within 10 s.
    pub fn closed_by_server(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// A TCP-like record: `pa` packets of 100 bytes from `src`, `pb` of 200 from `dst`.
pub fn record(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    t: u64,
    pa: u64,
    pb: u64,
) -> FlowRecord {
    let (key, side) =
        FlowKey::from_packet(IpAddr::from(src), sport, IpAddr::from(dst), dport, 6, 0);
    let a = DirCounters {
        packets: pa,
        bytes: 100 * pa,
        tcp_flags: 0x18,
    };
    let b = DirCounters {
        packets: pb,
        bytes: 200 * pb,
        tcp_flags: 0x18,
    };
    let (ab, ba) = if side == Side::A { (a, b) } else { (b, a) };
    FlowRecord {
        key,
        initiator: side,
        first_ns: t,
        last_ns: t,
        ab,
        ba,
        end: None,
    }
}
