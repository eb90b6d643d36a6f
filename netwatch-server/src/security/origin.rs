//! Same-origin rules: which `Origin` may open the WebSocket or read the API (CORS), and which
//! `Host` names a loopback server without a token answers (DNS-rebinding defence).
//!
//! Same origin means the request's `Origin` equals `scheme://` + its own `Host` header (default
//! ports omitted on both sides). Extra origins are allowed only by configuration
//! (`--allow-origin`); they are also the only origins CORS answers for.

use std::net::IpAddr;

/// Origins and host names allowed beyond the server's own.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    origins: Vec<String>,
    hosts: Vec<String>,
    tls: bool,
}

impl OriginPolicy {
    /// `origins`: full origins such as `https://grafana.example:3000`; `hosts`: extra host
    /// names a token-less server answers to (besides loopback); `tls`: the server's scheme.
    #[must_use]
    pub fn new(origins: &[String], hosts: &[String], tls: bool) -> Self {
        Self {
            origins: origins
                .iter()
                .map(|o| normalize_origin(o))
                .filter(|o| !o.is_empty())
                .collect(),
            hosts: hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            tls,
        }
    }

    /// True when `origin` is the server's own origin as reached through `host`.
    #[must_use]
    pub fn same_origin(&self, origin: &str, host: Option<&str>) -> bool {
        let Some(host) = host else {
            return false;
        };
        let scheme = if self.tls { "https" } else { "http" };
        normalize_origin(origin) == normalize_origin(&format!("{scheme}://{host}"))
    }

    /// True when `origin` is configured explicitly (CORS and WebSocket).
    #[must_use]
    pub fn configured(&self, origin: &str) -> bool {
        let o = normalize_origin(origin);
        self.origins.contains(&o)
    }

    /// True when a browser page at `origin` may use this server (same origin or configured).
    #[must_use]
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        self.same_origin(origin, host) || self.configured(origin)
    }

    /// True when `host` (a `Host` header) names this server in a way a DNS-rebinding page
    /// cannot fake: a loopback address, `localhost`, or a configured name. Ports are ignored.
    #[must_use]
    pub fn local_host(&self, host: &str) -> bool {
        let name = strip_port(host.trim()).to_ascii_lowercase();
        if name == "localhost" || name.ends_with(".localhost") {
            return true;
        }
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return super::ratelimit::is_loopback(ip);
        }
        self.hosts.contains(&name)
    }
}

/// Lower-cases, drops a trailing `/` and the scheme's default port.
fn normalize_origin(origin: &str) -> String {
    let o = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    if let Some(rest) = o.strip_prefix("http://") {
        if let Some(h) = rest.strip_suffix(":80") {
            return format!("http://{h}");
        }
    } else if let Some(rest) = o.strip_prefix("https://") {
        if let Some(h) = rest.strip_suffix(":443") {
            return format!("https://{h}");
        }
    }
    o
}

/// `host[:port]` or `[v6][:port]` → host.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    match host.rfind(':') {
        // A bare IPv6 address (several colons) has no port.
        Some(i) if host[..i].contains(':') => host,
        Some(i) => &host[..i],
        None => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_compares_scheme_host_and_port() {
        let p = OriginPolicy::new(&[], &[], false);
        assert!(p.same_origin("http://127.0.0.1:8080", Some("127.0.0.1:8080")));
        assert!(p.same_origin("HTTP://LocalHost:8080/", Some("localhost:8080")));
        assert!(p.same_origin("http://example.org", Some("example.org:80")));
        assert!(!p.same_origin("https://127.0.0.1:8080", Some("127.0.0.1:8080")));
        assert!(!p.same_origin("http://127.0.0.1:8081", Some("127.0.0.1:8080")));
        assert!(!p.same_origin("http://evil.example", Some("127.0.0.1:8080")));
        assert!(!p.same_origin("null", Some("127.0.0.1:8080")));
        assert!(!p.same_origin("http://127.0.0.1:8080", None));
        let tls = OriginPolicy::new(&[], &[], true);
        assert!(tls.same_origin("https://nw.example", Some("nw.example:443")));
    }

    #[test]
    fn configured_origins_are_allowed() {
        let p = OriginPolicy::new(&["https://grafana.example:3000/".into()], &[], false);
        assert!(p.allows("https://Grafana.example:3000", Some("127.0.0.1:8080")));
        assert!(!p.allows("https://grafana.example", Some("127.0.0.1:8080")));
    }

    #[test]
    fn local_hosts() {
        let p = OriginPolicy::new(&[], &["netwatch.lan".into()], false);
        for h in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:8080",
            "127.1.2.3",
            "[::1]:8080",
            "::1",
            "netwatch.lan:8080",
            "app.localhost",
        ] {
            assert!(p.local_host(h), "{h}");
        }
        for h in [
            "evil.example:8080",
            "10.0.0.1",
            "[2001:db8::1]:8080",
            "localhost.evil.example",
        ] {
            assert!(!p.local_host(h), "{h}");
        }
    }
}
