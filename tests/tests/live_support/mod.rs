//! Support for the live-capture and privilege end-to-end tests (root only): a pair of
//! private network namespaces joined by a veth pair, the real server running as `nobody`,
//! the real helper started inside a namespace, an HTTP getter, the oracle.
//!
//! Everything is torn down on drop (also when a test panics): processes are killed, the
//! namespaces deleted (which deletes the veth pair). No address outside the namespaces or
//! loopback is used: the namespaces have no route anywhere else.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Unprivileged user the processes run as.
pub const NOBODY: &str = "nobody";

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique() -> (u32, u32) {
    (
        std::process::id() % 100_000,
        COUNTER.fetch_add(1, Ordering::SeqCst),
    )
}

// Shared with the other support modules (each test uses only some of them).
#[allow(unused_imports)]
pub use netwatch_e2e::{bin, free_port, have, is_root, workspace, TempDir};

/// Prints the skip line and returns true when not root.
#[must_use]
pub fn skip_unless_root() -> bool {
    if is_root() {
        return false;
    }
    eprintln!("SKIPPED: needs root");
    true
}

/// Panics unless every program is on PATH (.ci/install.d/30-live.sh installs them).
pub fn require(progs: &[&str]) {
    for p in progs {
        assert!(
            have(p),
            "{p} is not installed (see .ci/install.d/30-live.sh)"
        );
    }
}

/// Runs a command, panicking with its output on failure.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .expect("spawn sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces `a` and `b` joined by a veth pair (`va` in `a`, `vb` in `b`), with
/// 10.99.0.1/24 + fd00:99::1/64 on `va` and .2/::2 on `vb` (DAD off).
#[derive(Debug)]
pub struct VethPair {
    /// Namespace of the captured end.
    pub ns_a: String,
    /// Namespace of the traffic source.
    pub ns_b: String,
    /// Captured interface (in `ns_a`).
    pub va: String,
    /// Peer interface (in `ns_b`).
    pub vb: String,
}

/// IPv4 address of `va`.
pub const A4: &str = "10.99.0.1";
/// IPv4 address of `vb`.
pub const B4: &str = "10.99.0.2";
/// IPv6 address of `va`.
pub const A6: &str = "fd00:99::1";
/// IPv6 address of `vb`.
pub const B6: &str = "fd00:99::2";

impl VethPair {
    /// Creates the namespaces and the pair; deleted on drop.
    #[must_use]
    pub fn new() -> Self {
        let (p, n) = unique();
        let pair = VethPair {
            ns_a: format!("nwlive-{p}-{n}-a"),
            ns_b: format!("nwlive-{p}-{n}-b"),
            va: format!("nwa{p}x{n}"),
            vb: format!("nwb{p}x{n}"),
        };
        assert!(pair.va.len() <= 15);
        let (a, b, va, vb) = (&pair.ns_a, &pair.ns_b, &pair.va, &pair.vb);
        sh(&format!("ip netns add {a} && ip netns add {b}"));
        sh(&format!(
            "ip link add {va} netns {a} type veth peer name {vb} netns {b}"
        ));
        for (ns, dev, v4, v6) in [(a, va, A4, A6), (b, vb, B4, B6)] {
            sh(&format!(
                "ip netns exec {ns} sysctl -qw net.ipv6.conf.{dev}.accept_dad=0 net.ipv6.conf.{dev}.accept_ra=0 \
                 net.ipv6.conf.{dev}.router_solicitations=0 && \
                 ip -n {ns} addr add {v4}/24 dev {dev} && ip -n {ns} addr add {v6}/64 dev {dev} nodad && \
                 ip -n {ns} link set lo up && ip -n {ns} link set {dev} up"
            ));
        }
        pair
    }

    /// `ip netns exec NS` + a shell command.
    #[must_use]
    pub fn exec(&self, ns: &str, cmd: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, "sh", "-c", cmd]);
        c
    }
}

impl Default for VethPair {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end in it, and with it the peer.
        for ns in [&self.ns_a, &self.ns_b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A child process killed on drop.
#[derive(Debug)]
pub struct Proc {
    /// The child.
    pub child: Child,
    /// What it is (for messages).
    pub what: String,
}

impl Proc {
    /// Pid.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by number (kill(1), no libc).
    pub fn signal(&self, sig: i32) {
        let _ = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status();
    }

    /// Waits up to `timeout` for the exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait (up to 10 s); the exit status.
    pub fn term(&mut self) -> ExitStatus {
        self.signal(15);
        self.wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{} did not exit after SIGTERM", self.what))
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The real server, as `nobody`, socket in `dir` (a [`TempDir::world_writable`]), HTTP on a
/// free loopback port.
#[derive(Debug)]
pub struct Server {
    /// The process.
    pub proc: Proc,
    /// Its ingest socket.
    pub socket: PathBuf,
    /// Its HTTP port.
    pub port: u16,
}

impl Server {
    /// Starts the server and waits until its API answers.
    #[must_use]
    pub fn start(dir: &TempDir, port: Option<u16>) -> Self {
        let socket = dir.join("capture.sock");
        let port = port.unwrap_or_else(free_port);
        let log = std::fs::File::create(dir.join(&format!("server-{port}.log"))).expect("log");
        let child = Command::new("setpriv")
            .args([
                "--reuid",
                NOBODY,
                "--regid",
                "nogroup",
                "--clear-groups",
                "--",
            ])
            .arg(bin("netwatch-server"))
            .arg("--socket")
            .arg(&socket)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--log", "info"])
            .env_remove("NETWATCH_TOKEN")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn server");
        let s = Server {
            proc: Proc {
                child,
                what: "netwatch-server".into(),
            },
            socket,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while s.get_opt("/api/v1/health").is_none() {
            assert!(Instant::now() < deadline, "server did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    /// GET a path, the body as JSON, or None when the server does not answer.
    #[must_use]
    pub fn get_opt(&self, path: &str) -> Option<serde_json::Value> {
        let out = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "5",
                &format!("http://127.0.0.1:{}{path}", self.port),
            ])
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// GET a path as text.
    #[must_use]
    pub fn get_text(&self, path: &str) -> String {
        let out = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "5",
                &format!("http://127.0.0.1:{}{path}", self.port),
            ])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// GET a path as JSON (panics when unavailable).
    #[must_use]
    pub fn get(&self, path: &str) -> serde_json::Value {
        self.get_opt(path)
            .unwrap_or_else(|| panic!("GET {path} failed"))
    }

    /// The helpers listed in /api/v1/health.
    #[must_use]
    pub fn helpers(&self) -> Vec<serde_json::Value> {
        self.get("/api/v1/health")["helpers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until a helper for `iface` is connected; returns its instance id.
    pub fn wait_helper(&self, iface: &str, not_instance: Option<&str>) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            for h in self.helpers() {
                if h["interface"] == iface
                    && h["connected"] == true
                    && not_instance.is_none_or(|n| h["instance"].as_str() != Some(n))
                {
                    return h["instance"].as_str().unwrap_or_default().to_string();
                }
            }
            assert!(
                Instant::now() < deadline,
                "no helper connected for {iface}: {:?}",
                self.helpers()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every flow the server holds, as canonical rows.
    #[must_use]
    pub fn flows(&self) -> Flows {
        let v = self.get("/api/v1/flows?limit=1000");
        let mut out = Flows::new();
        for f in v["flows"].as_array().expect("flows array") {
            let ip = |k: &str| {
                f[k].as_str()
                    .and_then(|s| s.parse::<IpAddr>().ok())
                    .expect("ip")
            };
            let n = |k: &str| f[k].as_u64().unwrap_or_else(|| panic!("{k} in {f}"));
            let src = (ip("srcIP"), u16::try_from(n("srcPort")).expect("port"));
            let dst = (ip("dstIP"), u16::try_from(n("dstPort")).expect("port"));
            let proto = u8::try_from(n("protocol")).expect("proto");
            let vlan = u16::try_from(n("vlan")).expect("vlan");
            add_row(
                &mut out,
                proto,
                vlan,
                src,
                (n("srcPackets"), n("srcBytes")),
                dst,
                (n("dstPackets"), n("dstBytes")),
            );
        }
        assert!(v["pagination"]["has_more"] != true, "more than 1000 flows");
        out
    }
}

/// Canonical flow key: (proto, vlan, endpoint A, endpoint B), A <= B.
pub type FlowId = (u8, u16, (IpAddr, u16), (IpAddr, u16));
/// (packets A->B, bytes A->B, packets B->A, bytes B->A).
pub type Counts = (u64, u64, u64, u64);
/// Flows by canonical key.
pub type Flows = BTreeMap<FlowId, Counts>;

fn add_row(
    out: &mut Flows,
    proto: u8,
    vlan: u16,
    x: (IpAddr, u16),
    xc: (u64, u64),
    y: (IpAddr, u16),
    yc: (u64, u64),
) {
    let (id, c) = if x <= y {
        ((proto, vlan, x, y), (xc.0, xc.1, yc.0, yc.1))
    } else {
        ((proto, vlan, y, x), (yc.0, yc.1, xc.0, xc.1))
    };
    let e = out.entry(id).or_insert((0, 0, 0, 0));
    e.0 += c.0;
    e.1 += c.1;
    e.2 += c.2;
    e.3 += c.3;
}

/// Runs the oracle (tests/fixtures/tools/oracle.py, else ../shared/pcaps/oracle.py) on a
/// capture and returns its flows.
#[must_use]
pub fn oracle(pcap: &Path) -> Flows {
    let ws = workspace();
    let mut script = ws.join("tests/fixtures/tools/oracle.py");
    if !script.exists() {
        script = ws.join("../shared/pcaps/oracle.py");
    }
    let out = Command::new("python3")
        .arg(&script)
        .arg(pcap)
        .output()
        .expect("python3 oracle.py");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let (cp, caa, cpa, cab, cpb, cv) = (
        col("proto"),
        col("addr_a"),
        col("port_a"),
        col("addr_b"),
        col("port_b"),
        col("vlan"),
    );
    let (c1, c2, c3, c4) = (
        col("packets_ab"),
        col("bytes_ab"),
        col("packets_ba"),
        col("bytes_ba"),
    );
    let mut flows = Flows::new();
    for l in lines.filter(|l| !l.is_empty()) {
        let f: Vec<&str> = l.split(',').collect();
        let num = |i: usize| {
            f[i].parse::<u64>()
                .unwrap_or_else(|_| panic!("bad number in {l}"))
        };
        let ip = |i: usize| {
            f[i].parse::<IpAddr>()
                .unwrap_or_else(|_| panic!("bad address in {l}"))
        };
        add_row(
            &mut flows,
            u8::try_from(num(cp)).expect("proto"),
            u16::try_from(num(cv)).expect("vlan"),
            (ip(caa), u16::try_from(num(cpa)).expect("port")),
            (num(c1), num(c2)),
            (ip(cab), u16::try_from(num(cpb)).expect("port")),
            (num(c3), num(c4)),
        );
    }
    flows
}

/// Starts the helper in `ns` on `iface` connected to `socket`, as root switching to nobody.
#[must_use]
pub fn start_helper(
    pair: &VethPair,
    socket: &Path,
    log: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Proc {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &pair.ns_a])
        .arg(bin("netwatch-capture"))
        .args(["--interface", &pair.va, "--connect"])
        .arg(socket)
        .args(["--user", NOBODY, "--export-interval", "200"])
        .args(extra)
        .env("NETWATCH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"));
    for (k, v) in env {
        c.env(k, v);
    }
    Proc {
        child: c.spawn().expect("spawn helper"),
        what: "netwatch-capture".into(),
    }
}

/// The exit signal of a status, if it died by one.
#[must_use]
pub fn exit_signal(st: &ExitStatus) -> Option<i32> {
    st.signal()
}

/// Python traffic generator run inside a namespace: `server` (in a) answers UDP by counting
/// and TCP by reading to EOF; `client` (in b) sends the datagrams and the transfers.
pub const TRAFFIC_PY: &str = r#"
import socket, sys, time, threading
mode = sys.argv[1]
if mode == "server":
    socks = []
    for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        u = socket.socket(fam, socket.SOCK_DGRAM)
        if fam == socket.AF_INET6: u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        u.bind((addr, 9999)); socks.append(u)
        t = socket.socket(fam, socket.SOCK_STREAM)
        if fam == socket.AF_INET6: t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((addr, 8888)); t.listen(8); socks.append(t)
    def udp(u):
        while True: u.recv(65535)
    def tcp(t):
        while True:
            c, _ = t.accept()
            while c.recv(65536): pass
            c.close()
    for s in socks:
        threading.Thread(target=udp if s.type == socket.SOCK_DGRAM else tcp, args=(s,), daemon=True).start()
    open(sys.argv[2], "w").write("ready")
    time.sleep(3600)
else:
    dst4, dst6, sizes, tcp_bytes, sport_base = sys.argv[2], sys.argv[3], [int(x) for x in sys.argv[4].split(":")], int(sys.argv[5]), int(sys.argv[6])
    for i, (fam, dst) in enumerate(((socket.AF_INET, dst4), (socket.AF_INET6, dst6))):
        u = socket.socket(fam, socket.SOCK_DGRAM); u.bind(("", sport_base + i))
        for n in sizes: u.sendto(b"x" * n, (dst, 9999))
        u.close()
        t = socket.socket(fam, socket.SOCK_STREAM); t.bind(("", sport_base + 10 + i))
        t.connect((dst, 8888)); t.sendall(b"y" * tcp_bytes); t.shutdown(socket.SHUT_WR)
        while t.recv(65536): pass
        t.close()
"#;

/// Starts the traffic server in `ns_a` and waits until it listens.
#[must_use]
pub fn start_traffic_server(pair: &VethPair, dir: &TempDir) -> Proc {
    let script = dir.join("traffic.py");
    std::fs::write(&script, TRAFFIC_PY).expect("write traffic.py");
    let ready = dir.join("traffic.ready");
    let child = Command::new("ip")
        .args(["netns", "exec", &pair.ns_a, "python3"])
        .arg(&script)
        .arg("server")
        .arg(&ready)
        .stdout(Stdio::null())
        .spawn()
        .expect("python3 traffic server");
    let p = Proc {
        child,
        what: "traffic server".into(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "traffic server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    p
}

/// Sends the known traffic from `ns_b`: UDP datagrams of `sizes` and a TCP transfer of
/// `tcp_bytes`, over IPv4 and IPv6, from source ports `sport` (UDP) and `sport + 10` (TCP).
pub fn send_traffic(pair: &VethPair, dir: &TempDir, sizes: &[usize], tcp_bytes: usize, sport: u16) {
    let sizes: Vec<String> = sizes.iter().map(ToString::to_string).collect();
    let st = Command::new("ip")
        .args(["netns", "exec", &pair.ns_b, "python3"])
        .arg(dir.join("traffic.py"))
        .args([
            "client",
            A4,
            A6,
            &sizes.join(":"),
            &tcp_bytes.to_string(),
            &sport.to_string(),
        ])
        .status()
        .expect("python3 traffic client");
    assert!(st.success(), "traffic client failed");
}
