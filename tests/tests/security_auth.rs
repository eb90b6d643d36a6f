//! Bearer token, Origin and Host rules against the real `netwatch-server` binary.
//! No root or packages needed.

mod security_support;

use security_support::{
    assert_error_body, assert_security_headers, request, write_token, ws_headers, Server, TempDir,
    TOKEN,
};

fn server_with_token() -> Server {
    let dir = TempDir::new("tok");
    let token = write_token(&dir, TOKEN);
    let s = Server::start(&["--token-file", token.to_str().expect("utf-8 path")], &[]);
    drop(dir);
    s
}

#[test]
fn rest_needs_the_token_when_one_is_configured() {
    let s = server_with_token();
    let good = format!("Bearer {TOKEN}");
    let wrong = format!("Bearer {}", TOKEN.replace('5', "6"));
    let short = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    let long = format!("Bearer {TOKEN}0");
    for path in [
        "/api/v1/health",
        "/api/v1/flows",
        "/metrics",
        "/api/v1/no-such-route",
    ] {
        for (what, headers) in [
            ("no token", vec![]),
            ("wrong token", vec![("Authorization", wrong.as_str())]),
            (
                "token one byte short",
                vec![("Authorization", short.as_str())],
            ),
            (
                "token one byte long",
                vec![("Authorization", long.as_str())],
            ),
            ("basic auth", vec![("Authorization", "Basic dXNlcjpwYXNz")]),
            ("empty bearer", vec![("Authorization", "Bearer ")]),
        ] {
            let r = s.get(path, &headers);
            assert_eq!(r.status, 401, "{path} with {what}: {}", r.text());
            assert_error_body(&r, "UNAUTHORIZED");
            assert!(
                r.header("www-authenticate")
                    .is_some_and(|v| v.starts_with("Bearer")),
                "{path} {what}: WWW-Authenticate"
            );
            assert_security_headers(&r, &format!("401 on {path}"));
        }
    }
    let ok = s.get("/api/v1/flows", &[("Authorization", &good)]);
    assert_eq!(ok.status, 200, "{}", ok.text());
    let metrics = s.get("/metrics", &[("Authorization", &good)]);
    assert_eq!(metrics.status, 200);
    // The scheme is case-insensitive (RFC 7235).
    let lower = format!("bearer {TOKEN}");
    assert_eq!(
        s.get("/api/v1/flows", &[("Authorization", &lower)]).status,
        200
    );
}

#[test]
fn dashboard_files_are_public_with_a_token_configured() {
    // The dashboard's files hold no data; the page asks for the token and keeps it in memory.
    let s = server_with_token();
    let index = s.get("/", &[]);
    assert_eq!(index.status, 200, "{}", index.text());
}

#[test]
fn websocket_upgrade_needs_the_token_too() {
    let s = server_with_token();
    let wrong = format!("Bearer {}", TOKEN.replace('5', "6"));
    let short = format!("Bearer {}", &TOKEN[..10]);
    let wrong_proto = format!("netwatch.v1, bearer.{}", &TOKEN[..TOKEN.len() - 2]);
    for path in ["/api/v1/ws", "/ws"] {
        for (what, extra) in [
            ("no token", vec![]),
            ("wrong token", vec![("Authorization", wrong.as_str())]),
            ("short token", vec![("Authorization", short.as_str())]),
            (
                "wrong subprotocol token",
                vec![("Sec-WebSocket-Protocol", wrong_proto.as_str())],
            ),
        ] {
            let r = request(s.addr, "GET", path, &ws_headers(&extra));
            assert_eq!(r.status, 401, "{path} upgrade with {what}");
            assert!(r.header("sec-websocket-accept").is_none());
            assert_security_headers(&r, "refused upgrade");
        }
    }
    // With the token in the header (non-browser clients) the upgrade succeeds.
    let good = format!("Bearer {TOKEN}");
    let r = request(
        s.addr,
        "GET",
        "/api/v1/ws",
        &ws_headers(&[("Authorization", &good)]),
    );
    assert_eq!(r.status, 101, "{r:?}");
    // A browser carries it as a subprotocol; the server selects netwatch.v1.
    let proto = format!("netwatch.v1, bearer.{TOKEN}");
    let r = request(
        s.addr,
        "GET",
        "/api/v1/ws",
        &ws_headers(&[("Sec-WebSocket-Protocol", &proto)]),
    );
    assert_eq!(r.status, 101, "{r:?}");
    assert_eq!(r.header("sec-websocket-protocol"), Some("netwatch.v1"));
}

#[test]
fn websocket_refuses_a_foreign_origin() {
    let s = Server::start(&[], &[]);
    let host = s.addr.to_string();
    let own = format!("http://{host}");
    let r = request(
        s.addr,
        "GET",
        "/api/v1/ws",
        &ws_headers(&[("Origin", own.as_str())]),
    );
    assert_eq!(r.status, 101, "same origin: {r:?}");
    for origin in [
        "http://evil.example",
        "null",
        &format!("https://{host}"),
        "http://127.0.0.1:1",
    ] {
        let r = request(
            s.addr,
            "GET",
            "/api/v1/ws",
            &ws_headers(&[("Origin", origin)]),
        );
        assert_eq!(r.status, 403, "origin {origin}");
        assert_error_body(&r, "ORIGIN_FORBIDDEN");
        assert_security_headers(&r, "foreign origin");
    }
    // An origin allowed by configuration may connect, and gets CORS answers on the API.
    let s = Server::start(&["--allow-origin", "https://grafana.example:3000"], &[]);
    let r = request(
        s.addr,
        "GET",
        "/api/v1/ws",
        &ws_headers(&[("Origin", "https://grafana.example:3000")]),
    );
    assert_eq!(r.status, 101);
    let r = s.get(
        "/api/v1/health",
        &[("Origin", "https://grafana.example:3000")],
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://grafana.example:3000")
    );
    let r = s.get("/api/v1/health", &[("Origin", "http://evil.example")]);
    assert_eq!(r.status, 403);
    assert!(r.header("access-control-allow-origin").is_none());
}

#[test]
fn same_origin_cors_by_default() {
    let s = Server::start(&[], &[]);
    // A preflight from a foreign page is refused and carries no CORS grant.
    let r = request(
        s.addr,
        "OPTIONS",
        "/api/v1/flows",
        &[
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "authorization"),
        ],
    );
    assert_eq!(r.status, 403);
    assert!(r.header("access-control-allow-origin").is_none());
    assert_security_headers(&r, "refused preflight");
    // No CORS header on a plain same-origin answer either.
    let r = s.get("/api/v1/health", &[]);
    assert!(r.header("access-control-allow-origin").is_none());
}

#[test]
fn without_a_token_only_loopback_host_names_are_answered() {
    // DNS rebinding: a page on attacker.example resolving to 127.0.0.1 sends its own Host.
    let s = Server::start(&[], &[]);
    let r = s.get("/api/v1/health", &[("Host", "attacker.example:8080")]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_error_body(&r, "FORBIDDEN_HOST");
    for host in ["localhost", &s.addr.to_string(), "[::1]:8080"] {
        let r = s.get("/api/v1/health", &[("Host", host)]);
        assert_ne!(r.status, 403, "host {host}: {}", r.text());
    }
}
