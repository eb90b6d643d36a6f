//! WebSocket feed (placeholder: the web engineer replaces this module).

use crate::state::AppState;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

/// The WebSocket routes (`/api/v1/ws`, `/ws`). Placeholder: rejects everything (404).
pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    drop(state);
    warp::any()
        .and_then(|| async { Err::<Response, _>(warp::reject::not_found()) })
        .boxed()
}
