//! HTTPS with `--tls-cert`/`--tls-key` against the real server. Needs `openssl` (to make a
//! throw-away certificate) and `curl` (the TLS client): .ci/install.d/50-deploy.sh.

mod security_support;

use std::io::{Read, Write};
use std::process::Command;

use security_support::{bin, have, run_ok, write_token, Server, TempDir, TOKEN};

fn self_signed(dir: &TempDir) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    (
        cert.to_str().expect("utf-8").to_owned(),
        key.to_str().expect("utf-8").to_owned(),
    )
}

/// curl over HTTPS trusting only `cert`: (status line and headers, body).
fn curl(cert: &str, url: &str, extra: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "--http1.1",
            "--max-time",
            "5",
            "--cacert",
            cert,
            "-D",
            "-",
        ])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    match text.split_once("\r\n\r\n") {
        Some((h, b)) => (h.to_ascii_lowercase(), b.to_owned()),
        None => (text.to_ascii_lowercase(), String::new()),
    }
}

#[test]
fn https_serves_the_api_with_token_and_headers() {
    assert!(
        have("openssl") && have("curl"),
        "needs openssl and curl (.ci/install.d/50-deploy.sh)"
    );
    let dir = TempDir::new("tls");
    let (cert, key) = self_signed(&dir);
    let token = write_token(&dir, TOKEN);
    let s = Server::start(
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--token-file",
            token.to_str().expect("utf-8"),
        ],
        &[],
    );
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let auth = format!("Authorization: Bearer {TOKEN}");

    let (head, body) = curl(&cert, &format!("{base}/api/v1/flows"), &["-H", &auth]);
    assert!(head.starts_with("http/1.1 200"), "{head}\n{body}");
    assert!(body.contains("\"flows\""), "{body}");
    assert!(
        head.contains("strict-transport-security: max-age="),
        "HSTS over TLS: {head}"
    );
    assert!(head.contains("x-frame-options: deny"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'self'"),
        "{head}"
    );

    let (head, _) = curl(&cert, &format!("{base}/api/v1/flows"), &[]);
    assert!(
        head.starts_with("http/1.1 401"),
        "no token over TLS: {head}"
    );

    // The WebSocket upgrade works over TLS (101), with the token.
    let (head, _) = curl(
        &cert,
        &format!("{base}/api/v1/ws"),
        &[
            "-H",
            &auth,
            "-H",
            "Connection: Upgrade",
            "-H",
            "Upgrade: websocket",
            "-H",
            "Sec-WebSocket-Version: 13",
            "-H",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "-H",
            &format!("Origin: {base}"),
        ],
    );
    assert!(head.starts_with("http/1.1 101"), "upgrade over TLS: {head}");

    // Rate limiting still sees the client (the TLS server passes the peer address on).
    let metrics = curl(&cert, &format!("{base}/metrics"), &["-H", &auth]).1;
    assert!(
        metrics.contains("netwatch_http_requests_total"),
        "{metrics}"
    );

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = std::net::TcpStream::connect(s.addr).expect("connect");
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .expect("timeout");
    plain
        .write_all(b"GET /api/v1/flows HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP served on the TLS port"
    );
}

#[test]
fn unusable_certificate_or_key_refuses_to_start() {
    assert!(have("openssl"), "needs openssl");
    let dir = TempDir::new("tlsbad");
    let (cert, _key) = self_signed(&dir);
    let other = TempDir::new("tlsother");
    let (_, other_key) = self_signed(&other);
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a pem file\n").expect("write");
    let garbage = garbage.to_str().expect("utf-8").to_owned();
    for (what, c, k, needle) in [
        ("mismatched key", cert.as_str(), other_key.as_str(), "TLS"),
        ("garbage key", cert.as_str(), garbage.as_str(), "TLS key"),
        (
            "garbage certificate",
            garbage.as_str(),
            other_key.as_str(),
            "TLS certificate",
        ),
        (
            "missing key",
            cert.as_str(),
            "/nonexistent/key.pem",
            "TLS key",
        ),
    ] {
        let out = Command::new(bin("netwatch-server"))
            .args(["--listen", "127.0.0.1:0", "--tls-cert", c, "--tls-key", k])
            .arg("--socket")
            .arg(dir.join(&format!("s-{}.sock", what.replace(' ', "-"))))
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: started");
        assert!(err.contains(needle), "{what}: {err}");
    }
    let out = Command::new(bin("netwatch-server"))
        .args(["--listen", "127.0.0.1:0", "--tls-cert", &cert])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}
