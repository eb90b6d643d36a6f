//! Support for the security, Prometheus and deployment end-to-end tests: the real binaries
//! (built by `cargo build --release --bins`, or the debug ones for `cargo test` without
//! `--release`), a started server that is killed on drop, and a tiny HTTP/1.1 client over a
//! plain `TcpStream` (so the tests see exactly the bytes the server sends).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A token accepted by the server (32 hex digits).
pub const TOKEN: &str = "5f0c1e2d3c4b5a69788796a5b4c3d2e1";

// Shared with the other support modules (each test uses only some of them).
#[allow(unused_imports)]
pub use netwatch_e2e::{bin, is_root, workspace};

/// True when `prog` is on PATH.
#[must_use]
pub fn have(prog: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {prog}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A fresh private temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `/tmp/netwatch-<tag>-<pid>-<n>`.
    #[must_use]
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "netwatch-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    /// A path inside.
    #[must_use]
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free TCP port on 127.0.0.1 (bound then released).
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Writes a token file with mode 0600.
pub fn write_token(dir: &TempDir, token: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("token");
    std::fs::write(&p, format!("{token}\n")).expect("token file");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    p
}

/// A running `netwatch-server`, killed on drop.
#[derive(Debug)]
pub struct Server {
    /// The child process.
    pub child: Child,
    /// Where it listens (what the tests connect to).
    pub addr: SocketAddr,
    /// Its ingest socket.
    pub socket: PathBuf,
    /// Its temporary directory (socket, token, logs).
    pub dir: TempDir,
}

impl Server {
    /// Starts the server listening on 127.0.0.1 (a free port) with `extra` flags and `env`
    /// variables; waits until it accepts connections.
    #[must_use]
    pub fn start(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = TempDir::new("srv");
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        Self::start_in(dir, &listen, &listen, extra, env, None)
    }

    /// Starts the server with `--listen listen`, connecting to `connect` to see it is up;
    /// `wrap` runs it under another program (e.g. `ip netns exec NS`).
    #[must_use]
    pub fn start_in(
        dir: TempDir,
        listen: &str,
        connect: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        wrap: Option<&[&str]>,
    ) -> Server {
        let socket = dir.join("capture.sock");
        let mut cmd = match wrap {
            Some(w) => {
                let mut c = Command::new(w[0]);
                c.args(&w[1..]).arg(bin("netwatch-server"));
                c
            }
            None => Command::new(bin("netwatch-server")),
        };
        cmd.arg("--listen")
            .arg(listen)
            .arg("--socket")
            .arg(&socket)
            .args(extra)
            .env_remove("NETWATCH_TOKEN")
            .env_remove("NETWATCH_TOKEN_FILE")
            .env_remove("NETWATCH_AUTH_TOKEN")
            .env("NETWATCH_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("server.log")).expect("log file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn netwatch-server");
        let addr: SocketAddr = connect.parse().expect("connect address");
        let mut s = Server {
            child,
            addr,
            socket,
            dir,
        };
        s.wait_ready();
        s
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("netwatch-server exited early ({status}): {}", self.log());
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "netwatch-server did not listen on {} within 20 s: {}",
                self.addr,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's stderr so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// `GET path` with extra headers.
    #[must_use]
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        request(self.addr, "GET", path, headers)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

/// Sends one request (`Connection: close`) and reads the response. A `101` response is
/// returned as soon as its head is read (the connection is then dropped).
#[must_use]
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    try_request(addr, method, path, headers).unwrap_or_else(|| panic!("cannot connect to {addr}"))
}

/// Like [`request`], but `None` when nothing listens (yet).
#[must_use]
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<Response> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    let upgrade = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("upgrade"));
    if !upgrade {
        req.push_str("Connection: close\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write request");
    Some(read_response(s))
}

/// The headers of a WebSocket upgrade request (plus `extra`).
#[must_use]
pub fn ws_headers<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];
    h.extend_from_slice(extra);
    h
}

fn read_response(s: TcpStream) -> Response {
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).expect("header line");
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if status == 101 || status == 204 || status == 304 {
        return resp;
    }
    if resp
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).expect("chunk size");
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .expect("chunk size hex");
            if n == 0 {
                break;
            }
            let mut chunk = vec![0u8; n];
            r.read_exact(&mut chunk).expect("chunk");
            resp.body.extend_from_slice(&chunk);
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf).expect("chunk end");
        }
    } else if let Some(n) = resp
        .header("content-length")
        .and_then(|n| n.parse::<usize>().ok())
    {
        let mut body = vec![0u8; n];
        r.read_exact(&mut body).expect("body");
        resp.body = body;
    } else {
        let _ = r.read_to_end(&mut resp.body);
    }
    resp
}

/// Runs a command to completion, panicking with its output when it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The security headers every response must carry, with their exact values.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
];

/// Asserts the security headers on a response (`what` names it in the message).
pub fn assert_security_headers(resp: &Response, what: &str) {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(
            resp.header(name),
            Some(value),
            "{what} (status {}): header {name}; headers: {:?}",
            resp.status,
            resp.headers
        );
    }
}

/// Asserts the seeds' error body (`{"error": {code, message, timestamp, requestId}}`).
pub fn assert_error_body(resp: &Response, code: &str) {
    assert_eq!(
        resp.header("content-type"),
        Some("application/json"),
        "error content type"
    );
    let j = resp.json();
    let e = &j["error"];
    assert_eq!(e["code"], code, "error code in {j}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{j}");
    assert!(
        e["timestamp"].as_str().is_some_and(|t| t.contains('T')),
        "{j}"
    );
    assert!(
        e["requestId"].as_str().is_some_and(|t| !t.is_empty()),
        "{j}"
    );
}
