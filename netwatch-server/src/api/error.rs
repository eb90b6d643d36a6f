//! Request ids and the seeds' error body:
//! `{"error":{"code","message","details","timestamp","requestId"}}`.

use crate::clock::wall_ns;
use crate::model::iso;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

/// Header carrying the request id, in requests (optional) and every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A request's id and start time.
#[derive(Debug, Clone)]
pub struct RequestId {
    /// The id: the client's `X-Request-Id` when it is 1-64 characters of `[A-Za-z0-9._-]`,
    /// else `nw-<process start, hex>-<counter>`.
    pub id: String,
    /// When the request arrived (for the access log).
    pub started: Instant,
}

impl RequestId {
    /// A fresh id, or the client's when it is acceptable.
    #[must_use]
    pub fn new(client: Option<&str>) -> RequestId {
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        static BOOT: OnceLock<u64> = OnceLock::new();
        let ok = |s: &str| {
            (1..=64).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        };
        let id = match client {
            Some(c) if ok(c) => c.to_string(),
            _ => {
                let boot = *BOOT.get_or_init(|| wall_ns() / 1_000_000);
                format!("nw-{boot:x}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
            }
        };
        RequestId {
            id,
            started: Instant::now(),
        }
    }

    /// Sets the response header.
    pub fn tag(&self, resp: &mut Response) {
        if let Ok(v) = HeaderValue::from_str(&self.id) {
            resp.headers_mut().insert(REQUEST_ID_HEADER, v);
        }
    }
}

/// An API error (status, code, message, details).
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code, e.g. `INVALID_PARAMETER`.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Details, e.g. `{"parameter": "limit", "value": "0"}`.
    pub details: Option<Value>,
}

impl ApiError {
    /// 400 for one parameter.
    pub fn param(name: &str, value: &str, reason: impl Into<String>) -> ApiError {
        let reason = reason.into();
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "INVALID_PARAMETER",
            message: format!("invalid value for parameter '{name}': {reason}"),
            details: Some(json!({ "parameter": name, "value": value, "reason": reason })),
        }
    }

    /// 400 for a parameter the endpoint does not know.
    pub fn unknown_param(name: &str, allowed: &[&str]) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "UNKNOWN_PARAMETER",
            message: format!("unknown query parameter '{name}'"),
            details: Some(json!({ "parameter": name, "allowed": allowed })),
        }
    }

    /// 404.
    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "NOT_FOUND",
            message: what.into(),
            details: None,
        }
    }

    /// 405.
    pub fn method_not_allowed(method: &str, path: &str) -> ApiError {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "METHOD_NOT_ALLOWED",
            message: format!("method {method} is not allowed on {path}"),
            details: Some(json!({ "method": method, "allowed": ["GET", "HEAD"] })),
        }
    }

    /// The response, tagged with the request id.
    #[must_use]
    pub fn into_response(self, rid: &RequestId) -> Response {
        let body = json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "details": self.details.unwrap_or_else(|| json!({})),
                "timestamp": iso(wall_ns()),
                "requestId": rid.id,
            }
        });
        let mut resp = json_response(&body, self.status);
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            resp.headers_mut()
                .insert("allow", HeaderValue::from_static("GET, HEAD"));
        }
        rid.tag(&mut resp);
        resp
    }
}

/// A JSON response with a status.
#[must_use]
pub fn json_response<T: serde::Serialize>(v: &T, status: StatusCode) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_else(|e| {
        tracing::error!("cannot serialize a response: {e}");
        br#"{"error":{"code":"INTERNAL_ERROR","message":"serialization failed","details":{},"timestamp":"","requestId":""}}"#.to_vec()
    });
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    resp
}
