//! Headers every response carries (API, dashboard files, errors, 404, WebSocket refusals).
//!
//! The CSP is the seeds' (SEC-05) made stricter per D-16: scripts only from the server's own
//! files (no `'unsafe-inline'`), nothing from elsewhere, no framing, no plugins, no `<base>`.

use warp::http::header::{HeaderMap, HeaderName, HeaderValue};

/// The Content-Security-Policy header value.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
form-action 'self'; object-src 'none'";

/// Every security header with its value (HSTS is added separately, only over TLS).
pub const SECURITY_HEADERS: [(&str, &str); 7] = [
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), usb=()",
    ),
];

/// HSTS value sent over TLS.
pub const HSTS: &str = "max-age=31536000";

/// Sets the security headers on `headers`, replacing any value a handler set.
pub fn apply(headers: &mut HeaderMap, tls: bool) {
    for (name, value) in SECURITY_HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    if tls {
        headers.insert(
            HeaderName::from_static("strict-transport-security"),
            HeaderValue::from_static(HSTS),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_sets_all_and_hsts_only_over_tls() {
        let mut h = HeaderMap::new();
        h.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
        apply(&mut h, false);
        assert_eq!(h.len(), SECURITY_HEADERS.len());
        assert_eq!(h["x-frame-options"], "DENY");
        assert!(h["content-security-policy"]
            .to_str()
            .expect("ascii")
            .contains("script-src 'self';"));
        assert!(!h.contains_key("strict-transport-security"));
        apply(&mut h, true);
        assert_eq!(h["strict-transport-security"], HSTS);
    }
}
