//! The HTTP router: the WebSocket routes, the REST API, the dashboard assets and a JSON 404
//! for everything else, each response tagged with `X-Request-Id` and logged.
//!
//! Composition point for issue 7 (security): wrap the filter returned by [`router`]
//! (token check, rate limit, security headers) in [`app`], which `server::run` serves;
//! its settings go into `Config`.

use crate::api::error::{ApiError, RequestId, REQUEST_ID_HEADER};
use crate::state::AppState;
use warp::filters::BoxedFilter;
use warp::http::Method;
use warp::reply::Response;
use warp::Filter;

/// Extracts a [`RequestId`] (the client's `X-Request-Id` when acceptable, else a new one).
pub fn request_id() -> impl Filter<Extract = (RequestId,), Error = std::convert::Infallible> + Clone
{
    warp::header::headers_cloned().map(|h: warp::http::HeaderMap| {
        RequestId::new(h.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()))
    })
}

/// Tags a response with the request id and writes the access log line.
#[must_use]
pub fn finish(rid: &RequestId, method: &Method, path: &str, mut resp: Response) -> Response {
    if !resp.headers().contains_key(REQUEST_ID_HEADER) {
        rid.tag(&mut resp);
    }
    tracing::info!(
        target: "netwatch::http",
        request_id = %rid.id,
        method = %method,
        path,
        status = resp.status().as_u16(),
        elapsed_us = u64::try_from(rid.started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    resp
}

fn tagged(inner: BoxedFilter<(Response,)>) -> BoxedFilter<(Response,)> {
    request_id()
        .and(warp::method())
        .and(warp::path::full())
        .and(inner)
        .map(
            |rid: RequestId, m: Method, p: warp::path::FullPath, resp: Response| {
                finish(&rid, &m, p.as_str(), resp)
            },
        )
        .boxed()
}

/// Every route, without the security layer.
pub fn router(state: AppState) -> BoxedFilter<(Response,)> {
    let ws = tagged(crate::ws::routes(state.clone()));
    let api = crate::api::routes(state);
    let assets = tagged(crate::assets::routes());
    let fallback = request_id()
        .and(warp::method())
        .and(warp::path::full())
        .map(|rid: RequestId, m: Method, p: warp::path::FullPath| {
            let err = if p.as_str() == "/ws" {
                // The WebSocket alias without an upgrade (the filter above did not take it).
                crate::api::ws_upgrade_required()
            } else {
                ApiError::not_found(format!("no route {}", p.as_str()))
            };
            let resp = err.into_response(&rid);
            finish(&rid, &m, p.as_str(), resp)
        });
    ws.or(api)
        .unify()
        .or(assets)
        .unify()
        .or(fallback)
        .unify()
        .boxed()
}

/// What the server serves: `GET /metrics` (Prometheus) and [`router`], wrapped in the
/// security layer of issue 7 ([`crate::security::protect`]: rate limits, token, Host/Origin,
/// CORS, security headers on every response, HTTP metrics).
pub fn app(state: AppState) -> BoxedFilter<(Response,)> {
    let security = std::sync::Arc::new(crate::security::Security::new(
        &state.config.security,
        Some(state.metrics.clone()),
    ));
    let metrics = crate::metrics::route(state.metrics.clone(), state.clone());
    let routes = metrics.or(router(state)).unify().boxed();
    crate::security::protect(security, routes)
        .map(warp::Reply::into_response)
        .boxed()
}
