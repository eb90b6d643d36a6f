//! Rate limits (100 requests per minute per client, 1000 for loopback), the listen check and
//! the security headers, against the real `netwatch-server` binary.
//!
//! `rate_limit_from_a_remote_client_in_a_network_namespace` needs root, `ip` (iproute2) and
//! `curl`: it runs the server in one test network namespace and the client in another, joined
//! by a veth pair (addresses 10.77.x.1/.2 that exist only inside those namespaces), with the
//! default limits. Without root it prints "SKIPPED: needs root".

mod security_support;

use std::process::Command;

use security_support::{
    assert_error_body, assert_security_headers, bin, have, is_root, request, run_ok, ws_headers,
    Server, TempDir, TOKEN,
};

fn assert_429(r: &security_support::Response, what: &str) {
    assert_eq!(r.status, 429, "{what}: {}", r.text());
    assert_error_body(r, "RATE_LIMITED");
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "{what}: Retry-After missing or not seconds: {:?}",
                r.headers
            )
        });
    assert!((1..=60).contains(&retry), "{what}: Retry-After {retry}");
    assert_security_headers(r, what);
}

#[test]
fn the_101st_request_in_a_minute_gets_429() {
    // Loopback clients get 1000 per minute by default; lowered here to the remote limit so the
    // test sends 101 requests, not 1001, through the same code path.
    let s = Server::start(&["--rate-limit-loopback", "100"], &[]);
    for i in 1..=100 {
        let r = s.get("/api/v1/flows?limit=1", &[]);
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
    }
    assert_429(&s.get("/api/v1/flows?limit=1", &[]), "101st request");
    // Every kind of request counts and is refused alike: static files, /metrics, upgrades.
    assert_429(&s.get("/", &[]), "static file after the limit");
    assert_429(&s.get("/metrics", &[]), "/metrics after the limit");
    let r = request(s.addr, "GET", "/api/v1/ws", &ws_headers(&[]));
    assert_eq!(r.status, 429, "upgrade after the limit");
}

#[test]
fn loopback_default_limit_is_1000() {
    let s = Server::start(&[], &[]);
    for i in 1..=1000 {
        let r = s.get("/api/v1/health", &[]);
        assert_ne!(r.status, 429, "request {i} of 1000 refused");
    }
    assert_429(&s.get("/api/v1/health", &[]), "1001st loopback request");
}

#[test]
fn rate_limit_from_a_remote_client_in_a_network_namespace() {
    if !is_root() {
        println!("SKIPPED: needs root (network namespaces)");
        return;
    }
    assert!(
        have("ip") && have("curl"),
        "needs iproute2 and curl (.ci/install.d/50-deploy.sh)"
    );
    let tag = std::process::id() % 100_000;
    let net = Netns::new(tag);
    let dir = TempDir::new("rl");
    let token = security_support::write_token(&dir, TOKEN);
    let listen = format!("{}:8080", net.server_ip);
    let ns_exec = ["ip", "netns", "exec", net.server.as_str()];
    let token_arg = token.to_str().expect("utf-8").to_owned();
    // The server listens on its veth address (so it needs a token) with the default limits.
    let mut server = Command::new(ns_exec[0]);
    server
        .args(&ns_exec[1..])
        .arg(bin("netwatch-server"))
        .args(["--listen", &listen, "--token-file", &token_arg])
        .arg("--socket")
        .arg(dir.join("capture.sock"))
        .env("NETWATCH_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("server.log")).expect("log"));
    let mut child = server.spawn().expect("spawn server in netns");
    let _guard = KillOnDrop(&mut child);
    let url = format!("http://{listen}/api/v1/flows?limit=1");
    let auth = format!("Authorization: Bearer {TOKEN}");
    // Wait for it from the client namespace.
    let mut up = false;
    for _ in 0..100 {
        let o = Command::new("ip")
            .args([
                "netns",
                "exec",
                &net.client,
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ])
            .args(["-H", &auth, "--max-time", "2", &url])
            .output()
            .expect("curl");
        if String::from_utf8_lossy(&o.stdout) == "200" {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        up,
        "server not reachable from the client namespace: {}",
        std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
    );
    // The probe above used one request of the minute: 99 more are allowed, then 429.
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        &net.client,
        "curl",
        "-s",
        "-H",
        &auth,
        "--max-time",
        "20",
    ]);
    for _ in 0..100 {
        cmd.args(["-o", "/dev/null", "-w", "%{http_code}\\n", &url]);
    }
    let out = run_ok(&mut cmd);
    let codes: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(codes.len(), 100, "{codes:?}");
    assert!(
        codes[..99].iter().all(|c| c == "200"),
        "first 100 requests: {codes:?}"
    );
    assert_eq!(codes[99], "429", "101st request: {codes:?}");
    // And the refusal carries Retry-After.
    let o = run_ok(Command::new("ip").args([
        "netns",
        "exec",
        &net.client,
        "curl",
        "-s",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-H",
        &auth,
        &url,
    ]));
    let head = String::from_utf8_lossy(&o.stdout).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 429"), "{head}");
    assert!(head.contains("retry-after: "), "{head}");
}

struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Two network namespaces joined by a veth pair; removed on drop.
struct Netns {
    server: String,
    client: String,
    server_ip: String,
}

impl Netns {
    fn new(tag: u32) -> Netns {
        let (server, client) = (format!("nwsrv{tag}"), format!("nwcli{tag}"));
        let third = tag % 250 + 1;
        let server_ip = format!("10.77.{third}.1");
        let client_ip = format!("10.77.{third}.2");
        let n = Netns {
            server: server.clone(),
            client: client.clone(),
            server_ip: server_ip.clone(),
        };
        let ip = |args: &[&str]| {
            run_ok(Command::new("ip").args(args));
        };
        ip(&["netns", "add", &server]);
        ip(&["netns", "add", &client]);
        let (va, vb) = (format!("nwa{tag}"), format!("nwb{tag}"));
        ip(&[
            "link", "add", &va, "netns", &server, "type", "veth", "peer", "name", &vb, "netns",
            &client,
        ]);
        ip(&[
            "-n",
            &server,
            "addr",
            "add",
            &format!("{server_ip}/30"),
            "dev",
            &va,
        ]);
        ip(&[
            "-n",
            &client,
            "addr",
            "add",
            &format!("{client_ip}/30"),
            "dev",
            &vb,
        ]);
        for (ns, dev) in [(&server, &va), (&client, &vb)] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        n
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

#[test]
fn refuses_to_listen_beyond_loopback_without_a_token() {
    for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:8080"] {
        let out = Command::new(bin("netwatch-server"))
            .args([
                "--listen",
                listen,
                "--socket",
                "/nonexistent/netwatch-test.sock",
            ])
            .env_remove("NETWATCH_TOKEN")
            .env_remove("NETWATCH_TOKEN_FILE")
            .env_remove("NETWATCH_AUTH_TOKEN")
            .output()
            .expect("run netwatch-server");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{listen}: started without a token");
        assert!(
            err.contains("refusing to listen on") && err.contains("without a token"),
            "{listen}: unclear message: {err}"
        );
        assert!(
            err.contains("--token-file"),
            "{listen}: the message says how to fix it: {err}"
        );
    }
    // With a token 0.0.0.0 is accepted (the test only connects through loopback).
    let dir = TempDir::new("any");
    let port = security_support::free_port();
    let token = security_support::write_token(&dir, TOKEN);
    let s = Server::start_in(
        dir,
        &format!("0.0.0.0:{port}"),
        &format!("127.0.0.1:{port}"),
        &["--token-file", token.to_str().expect("utf-8")],
        &[],
        None,
    );
    assert_eq!(s.get("/api/v1/flows", &[]).status, 401);
    // The seeds' example token is never accepted as a real one.
    let out = Command::new(bin("netwatch-server"))
        .args([
            "--listen",
            "0.0.0.0:0",
            "--socket",
            "/nonexistent/netwatch-test.sock",
        ])
        .env("NETWATCH_TOKEN", "development-token-change-in-production")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("example token"));
}

#[test]
fn security_headers_on_every_response() {
    let s = Server::start(&["--rate-limit-loopback", "30"], &[]);
    let cases: Vec<(&str, security_support::Response)> = vec![
        ("API 200", s.get("/api/v1/flows", &[])),
        ("API health", s.get("/api/v1/health", &[])),
        ("API 400", s.get("/api/v1/flows?limit=100000", &[])),
        ("API unknown route 404", s.get("/api/v1/nope", &[])),
        ("static 404", s.get("/no/such/file.js", &[])),
        ("metrics", s.get("/metrics", &[])),
        (
            "method not allowed",
            request(s.addr, "DELETE", "/api/v1/flows", &[]),
        ),
        (
            "forbidden host",
            s.get("/api/v1/flows", &[("Host", "evil.example")]),
        ),
    ];
    for (what, r) in &cases {
        assert_security_headers(r, what);
    }
    assert_eq!(cases[0].1.status, 200);
    assert_eq!(cases[2].1.status, 400);
    assert_eq!(cases[3].1.status, 404);
    assert_eq!(cases[4].1.status, 404);
    // The rate-limit refusal carries them too.
    let r = loop {
        let r = s.get("/api/v1/flows", &[]);
        if r.status == 429 {
            break r;
        }
    };
    assert_security_headers(&r, "429");
}

#[test]
fn security_headers_on_dashboard_and_websocket() {
    let s = Server::start(&[], &[]);
    let index = s.get("/", &[]);
    assert_eq!(index.status, 200);
    assert_security_headers(&index, "static index");
    let ws = request(s.addr, "GET", "/api/v1/ws", &ws_headers(&[]));
    assert_eq!(ws.status, 101);
    assert_security_headers(&ws, "websocket 101");
}
