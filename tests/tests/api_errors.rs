//! Issue 4, done-when 3: every bad parameter is a 400 with the seeds' error body naming the
//! parameter; unknown routes 404, wrong methods 405; every response has a request id.

mod api_support;

use api_support::{request, Server};

fn assert_error(server: &Server, path: &str, status: u16, param: Option<&str>) {
    let r = server.get(path);
    assert_eq!(r.status, status, "GET {path}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
    let v = r.json();
    let e = &v["error"];
    for k in ["code", "message", "timestamp", "requestId"] {
        assert!(e[k].is_string(), "{path}: error.{k} missing: {v}");
    }
    assert!(e["details"].is_object(), "{path}: error.details: {v}");
    assert_eq!(
        r.header("x-request-id"),
        e["requestId"].as_str(),
        "{path}: the body's requestId is the header's"
    );
    if let Some(p) = param {
        assert_eq!(e["code"], "INVALID_PARAMETER", "{path}: {v}");
        assert_eq!(e["details"]["parameter"], p, "{path}: {v}");
        assert!(
            e["message"].as_str().unwrap_or_default().contains(p),
            "{path}: message names {p}: {v}"
        );
    }
}

#[test]
fn bad_parameters_are_400_naming_the_parameter() {
    let s = Server::start(&[]);
    let cases: &[(&str, &str)] = &[
        ("/api/v1/flows?src_ip=10.0.0.0/33", "src_ip"),
        ("/api/v1/flows?src_ip=300.1.1.1", "src_ip"),
        ("/api/v1/flows?dst_ip=not-an-ip", "dst_ip"),
        ("/api/v1/flows?dst_ip=10.0.0.0/8/8", "dst_ip"),
        ("/api/v1/flows?port=70000", "port"),
        ("/api/v1/flows?port=-1", "port"),
        ("/api/v1/flows?port=http", "port"),
        ("/api/v1/flows?port=1000-2000", "port"),
        ("/api/v1/flows?port_min=65536", "port_min"),
        ("/api/v1/flows?port_max=x", "port_max"),
        ("/api/v1/flows?protocol=bogus", "protocol"),
        ("/api/v1/flows?protocol=256", "protocol"),
        ("/api/v1/flows?protocol=", "protocol"),
        (
            "/api/v1/flows?time_start=2024-01-02T00:00:00Z&time_end=2024-01-01T00:00:00Z",
            "time_start",
        ),
        ("/api/v1/flows?time_start=yesterday", "time_start"),
        ("/api/v1/flows?time_end=2024-13-01T00:00:00Z", "time_end"),
        ("/api/v1/flows?limit=0", "limit"),
        ("/api/v1/flows?limit=1001", "limit"),
        ("/api/v1/flows?limit=1000000000", "limit"),
        ("/api/v1/flows?limit=1e9", "limit"),
        ("/api/v1/flows?offset=-5", "offset"),
        ("/api/v1/flows?sort_by=foo", "sort_by"),
        ("/api/v1/flows?sort_by=lastSeen", "sort_by"),
        ("/api/v1/flows?sort_order=up", "sort_order"),
        ("/api/v1/flows?status=running", "status"),
        ("/api/v1/flows?format=xml", "format"),
        ("/api/v1/flows?limit=5&limit=6", "limit"),
        ("/api/v1/top-talkers?limit=51", "limit"),
        ("/api/v1/top-talkers?limit=0", "limit"),
        ("/api/v1/top-talkers?duration=2h", "duration"),
        ("/api/v1/protocols?duration=7m", "duration"),
        ("/api/v1/metrics/history?duration=soon", "duration"),
        ("/api/v1/metrics/history?interval=0s", "interval"),
        ("/api/v1/metrics/history?interval=05s", "interval"),
        // Found by schemathesis: a multi-byte character where the unit goes.
        ("/api/v1/metrics/history?duration=%C2%80", "duration"),
    ];
    for (path, param) in cases {
        assert_error(&s, path, 400, Some(param));
    }
    // Unknown parameters are refused too (a typo must not return everything).
    let r = s.get("/api/v1/flows?srcip=10.0.0.1");
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["error"]["code"], "UNKNOWN_PARAMETER");
    assert_eq!(v["error"]["details"]["parameter"], "srcip");
    assert_eq!(s.get("/api/v1/health?verbose=1").status, 400);
}

#[test]
fn good_parameters_are_accepted() {
    let s = Server::start(&[]);
    for path in [
        "/api/v1/flows?src_ip=192.168.1.0/24&protocol=tcp",
        "/api/v1/flows?sort_by=bytes&limit=10",
        "/api/v1/flows?dst_ip=2001:db8::/32&protocol=58&port=0&status=closed",
        "/api/v1/flows?port_min=1024&port_max=65535&sort_by=src_ip",
        "/api/v1/flows?port_min=2000&port_max=1000&sort_by=status",
        "/api/v1/flows?port_max=1023&sort_by=dst_port&sort_order=asc",
        "/api/v1/flows?time_start=2013-01-01T00:00:00Z&time_end=2013-01-01T02:00:00.5%2B01:00",
        "/api/v1/flows?limit=1000&offset=9223372036854775807&sort_order=asc",
        "/api/v1/flows?format=csv",
        "/api/v1/metrics/history?duration=15m",
        "/api/v1/metrics/history?duration=999999h&interval=2h",
        "/api/v1/top-talkers?duration=15m&limit=50",
        "/api/v1/protocols?duration=1h",
        "/api/v1/metrics",
        "/api/v1/openapi.yaml",
    ] {
        let r = s.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        assert!(r.header("x-request-id").is_some(), "{path}");
    }
}

#[test]
fn unknown_routes_flows_and_methods() {
    let s = Server::start(&[]);
    assert_error(&s, "/api/v1/nope", 404, None);
    assert_error(&s, "/api/v2/flows", 404, None);
    assert_error(&s, "/api/v1/flows/6-0-10.0.0.1-1-10.0.0.2-2", 404, None);
    assert_error(&s, "/api/v1/flows/garbage", 404, None);
    for m in ["POST", "PUT", "DELETE", "PATCH"] {
        let r = request(s.addr, m, "/api/v1/flows", &[("Content-Length", "0")]);
        assert_eq!(r.status, 405, "{m}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "METHOD_NOT_ALLOWED");
        assert!(r.header("allow").is_some_and(|a| a.contains("GET")));
    }
    // The WebSocket paths without an upgrade: the seed's 400 "upgrade failed".
    for path in ["/api/v1/ws", "/ws"] {
        let r = s.get(path);
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "WEBSOCKET_UPGRADE_REQUIRED");
    }
    // A client's own request id is echoed; a silly one is replaced.
    let r = request(
        s.addr,
        "GET",
        "/api/v1/metrics",
        &[("X-Request-Id", "abc-123")],
    );
    assert_eq!(r.header("x-request-id"), Some("abc-123"));
    let r = request(
        s.addr,
        "GET",
        "/api/v1/nope",
        &[("X-Request-Id", "<script>")],
    );
    let id = r.header("x-request-id").expect("id").to_string();
    assert_ne!(id, "<script>");
    assert_eq!(r.json()["error"]["requestId"], id.as_str());
}
