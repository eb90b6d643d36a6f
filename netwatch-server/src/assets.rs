//! The embedded dashboard (`web/assets/`, rust-embed: no file is read at run time in release
//! builds; debug builds read the folder so the page can be edited live).
//!
//! * `index.html` (also the SPA fallback for any path without a file extension outside
//!   `/api/`) is sent with `Cache-Control: no-cache`; every other file with
//!   `public, max-age=3600` (DEP-21). Both carry an `ETag` (SHA-256 of the content) and
//!   answer `If-None-Match` with 304.
//! * Text files are gzip-compressed once, on first use, and sent compressed to clients whose
//!   `Accept-Encoding` allows gzip (`Vary: Accept-Encoding`).
//! * The CSP is the seeds' made stricter (D-16): no `'unsafe-inline'` at all, since the page
//!   has no inline script or style; the security layer may add its own headers on top.

use flate2::write::GzEncoder;
use flate2::Compression;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::Filter;

#[derive(rust_embed::Embed)]
#[folder = "../web/assets/"]
struct Assets;

/// The dashboard's Content-Security-Policy.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";
/// Cache lifetime of the static files.
pub const STATIC_CACHE: &str = "public, max-age=3600";
/// `index.html` is revalidated every time, so a new server version is picked up at once.
pub const INDEX_CACHE: &str = "no-cache";

/// One file ready to send.
#[derive(Debug)]
struct Prepared {
    mime: &'static str,
    etag: String,
    plain: Vec<u8>,
    gzip: Option<Vec<u8>>,
}

fn mime(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn compressible(mime: &str) -> bool {
    mime.starts_with("text/")
        || mime.starts_with("application/json")
        || mime.starts_with("image/svg")
}

fn prepare(path: &str) -> Option<Arc<Prepared>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Prepared>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(p) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(path)
    {
        return Some(p.clone());
    }
    let file = Assets::get(path)?;
    let mime = mime(path);
    let hash = file.metadata.sha256_hash();
    let etag = format!(
        "\"{}\"",
        hash[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let plain = file.data.into_owned();
    let gzip = if compressible(mime) && plain.len() > 256 {
        let mut enc = GzEncoder::new(Vec::with_capacity(plain.len() / 3), Compression::best());
        enc.write_all(&plain)
            .ok()
            .and_then(|()| enc.finish().ok())
            .filter(|z| z.len() < plain.len())
    } else {
        None
    };
    let p = Arc::new(Prepared {
        mime,
        etag,
        plain,
        gzip,
    });
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(path.to_string(), p.clone());
    Some(p)
}

/// True when `Accept-Encoding` allows gzip (a `q=0` refuses it; `*` allows it).
#[must_use]
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(v) = accept_encoding else {
        return false;
    };
    let mut star = None;
    for item in v.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .map(str::trim)
                    .and_then(|q| q.parse::<f32>().ok())
            })
            .next()
            .unwrap_or(1.0);
        match coding.as_str() {
            "gzip" | "x-gzip" => return q > 0.0,
            "*" => star = Some(q > 0.0),
            _ => {}
        }
    }
    star.unwrap_or(false)
}

fn etag_matches(if_none_match: Option<&str>, etag: &str) -> bool {
    let Some(v) = if_none_match else { return false };
    let bare = etag.trim_matches('"');
    v.split(',').map(str::trim).any(|t| {
        t == "*"
            || t.trim_start_matches("W/")
                .trim_matches('"')
                .trim_end_matches("-gzip")
                == bare
    })
}

/// Maps a request path to an embedded file: `""` -> index, a path with no extension (an SPA
/// route) -> index; `None` for API paths and missing files.
#[must_use]
pub fn resolve(path: &str) -> Option<String> {
    let p = path.trim_start_matches('/');
    if p == "api"
        || p.starts_with("api/")
        || p == "ws"
        || p.split('/').any(|s| s == ".." || s.starts_with('.'))
    {
        return None;
    }
    if p.is_empty() {
        return Some("index.html".into());
    }
    if Assets::get(p).is_some() {
        return Some(p.to_string());
    }
    let last = p.rsplit('/').next().unwrap_or("");
    (!last.contains('.')).then(|| "index.html".to_string())
}

/// Builds the response for one embedded file.
#[must_use]
pub fn respond(file: &str, head: bool, headers: &HeaderMap) -> Option<Response> {
    let p = prepare(file)?;
    let hv = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let gzip = p.gzip.is_some() && accepts_gzip(hv("accept-encoding"));
    let etag = if gzip {
        format!("{}-gzip\"", p.etag.trim_end_matches('"'))
    } else {
        p.etag.clone()
    };
    let mut resp = if etag_matches(hv("if-none-match"), &p.etag) {
        let mut r = Response::new(Vec::new().into());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let body: Vec<u8> = match (&p.gzip, gzip) {
            (Some(z), true) => z.clone(),
            _ => p.plain.clone(),
        };
        let len = body.len();
        let mut r = Response::new(if head { Vec::new().into() } else { body.into() });
        if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
            r.headers_mut().insert("content-length", v);
        }
        if gzip {
            r.headers_mut()
                .insert("content-encoding", HeaderValue::from_static("gzip"));
        }
        r
    };
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static(p.mime));
    h.insert(
        "cache-control",
        HeaderValue::from_static(if file == "index.html" {
            INDEX_CACHE
        } else {
            STATIC_CACHE
        }),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert("etag", v);
    }
    if p.gzip.is_some() {
        h.insert("vary", HeaderValue::from_static("accept-encoding"));
    }
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Some(resp)
}

/// The dashboard routes: `GET`/`HEAD` of any path that [`resolve`]s; everything else is
/// rejected (404) so the router's other filters and JSON 404 answer it.
pub fn routes() -> BoxedFilter<(Response,)> {
    warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and_then(
            |m: Method, path: warp::path::FullPath, headers: HeaderMap| async move {
                if m != Method::GET && m != Method::HEAD {
                    return Err(warp::reject::not_found());
                }
                resolve(path.as_str())
                    .and_then(|f| respond(&f, m == Method::HEAD, &headers))
                    .ok_or_else(warp::reject::not_found)
            },
        )
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// What the route answers for a GET of `path` (404 as `None`).
    fn get(
        path: &str,
        headers: &[(&'static str, &'static str)],
    ) -> Option<(StatusCode, HeaderMap, Vec<u8>)> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, HeaderValue::from_static(v));
        }
        let resp = respond(&resolve(path)?, false, &h)?;
        let (parts, body) = resp.into_parts();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let bytes = rt.block_on(async move {
            use warp::hyper::body::Body as _;
            let mut body = body;
            let mut out = Vec::new();
            while let Some(Ok(frame)) =
                std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
            {
                if let Ok(d) = frame.into_data() {
                    out.extend_from_slice(&d);
                }
            }
            out
        });
        Some((parts.status, parts.headers, bytes))
    }

    fn header(h: &HeaderMap, n: &str) -> String {
        h.get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn index_and_spa_fallback() {
        for path in ["/", "/index.html", "/dashboard", "/flows/abc"] {
            let (status, h, body) = get(path, &[]).expect(path);
            assert_eq!(status, 200, "{path}");
            assert_eq!(header(&h, "cache-control"), INDEX_CACHE);
            assert!(header(&h, "content-type").starts_with("text/html"));
            assert!(String::from_utf8_lossy(&body).contains("js/app.js"));
            assert!(!header(&h, "content-security-policy").contains("unsafe-inline"));
        }
        for path in [
            "/api/v1/nothing",
            "/api",
            "/missing.js",
            "/ws",
            "/.git/config",
            "/js/../index.html",
        ] {
            assert!(get(path, &[]).is_none(), "{path}");
        }
    }

    #[test]
    fn static_files_are_cached_and_gzipped() {
        let (status, h, plain) = get("/js/app.js", &[]).expect("app.js");
        assert_eq!(status, 200);
        assert_eq!(header(&h, "cache-control"), STATIC_CACHE);
        assert!(h.get("content-encoding").is_none());
        let (_, zh, z) =
            get("/js/app.js", &[("accept-encoding", "br, gzip;q=0.8")]).expect("app.js");
        assert_eq!(header(&zh, "content-encoding"), "gzip");
        assert_eq!(header(&zh, "vary"), "accept-encoding");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        assert_eq!(out, plain);
        assert!(z.len() < plain.len());
        let (_, nh, _) =
            get("/js/app.js", &[("accept-encoding", "gzip;q=0, deflate")]).expect("app.js");
        assert!(nh.get("content-encoding").is_none());
        let etag: &'static str = Box::leak(header(&h, "etag").into_boxed_str());
        let (s304, _, body) = get("/js/app.js", &[("if-none-match", etag)]).expect("app.js");
        assert_eq!(s304, 304);
        assert!(body.is_empty());
        let zetag: &'static str = Box::leak(header(&zh, "etag").into_boxed_str());
        assert_ne!(etag, zetag, "each encoding has its own validator");
        assert_eq!(
            get(
                "/js/app.js",
                &[("if-none-match", zetag), ("accept-encoding", "gzip")]
            )
            .expect("app.js")
            .0,
            304
        );
        let (_, vh, _) = get("/vendor/uPlot.iife.min.js", &[]).expect("uplot");
        assert_eq!(
            header(&vh, "content-type"),
            "text/javascript; charset=utf-8"
        );
    }

    #[test]
    fn accept_encoding_negotiation() {
        assert!(accepts_gzip(Some("gzip, deflate, br")));
        assert!(accepts_gzip(Some("GZIP")));
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("br")));
        assert!(!accepts_gzip(None));
        assert!(!accepts_gzip(Some("*;q=0")));
    }
}
