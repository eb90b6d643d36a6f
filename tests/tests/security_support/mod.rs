//! Support for the security, Prometheus and deployment end-to-end tests: the real binaries
//! (built by `cargo build --release --bins`, or the debug ones for `cargo test` without
//! `--release`), a started server that is killed on drop, and the shared HTTP/1.1 client of
//! `netwatch_e2e::http` (so the tests see exactly the bytes the server sends).
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A token accepted by the server (32 hex digits).
pub const TOKEN: &str = "5f0c1e2d3c4b5a69788796a5b4c3d2e1";

// Shared with the other support modules (each test uses only some of them).
#[allow(unused_imports)]
pub use netwatch_e2e::{
    bin, free_port, have, is_root, request, try_request, workspace, Response, TempDir,
};

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
    ///
    /// A port from [`free_port`] was free when asked, not reserved: a test running beside
    /// this one may take it first. The server then cannot bind it and exits, while the port
    /// answers for the other test's server; such a start is retried on another port.
    #[must_use]
    pub fn start(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut last = String::new();
        for _ in 0..5 {
            let dir = TempDir::new("srv");
            let listen = format!("127.0.0.1:{}", free_port());
            match Self::try_start_in(dir, &listen, &listen, extra, env, None) {
                Ok(s) => return s,
                Err(e) => last = e,
            }
        }
        panic!("netwatch-server did not start on a free port in 5 tries; the last: {last}");
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
        Self::try_start_in(dir, listen, connect, extra, env, wrap).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Server::start_in`], with the reason as an error when the server exits early or
    /// does not listen within 20 s.
    fn try_start_in(
        dir: TempDir,
        listen: &str,
        connect: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        wrap: Option<&[&str]>,
    ) -> Result<Server, String> {
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
        s.wait_ready()?;
        Ok(s)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.check_alive()?;
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                // The port answers, but maybe for another process: a server that lost the
                // port exits as soon as its bind fails. Look again a moment later.
                std::thread::sleep(Duration::from_millis(200));
                return self.check_alive();
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "netwatch-server did not listen on {} within 20 s: {}",
                    self.addr,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// An error with the exit status and the log once the server has exited.
    fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(format!(
                "netwatch-server exited early ({status}): {}",
                self.log()
            )),
            _ => Ok(()),
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
        try_request(self.addr, "GET", path, headers).unwrap_or_else(|| {
            panic!(
                "cannot connect to {} (GET {path}); the server's log: {}",
                self.addr,
                self.log()
            )
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
