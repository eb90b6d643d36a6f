//! Embedded dashboard assets (placeholder: the web engineer replaces this module).

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

/// The dashboard routes. Placeholder: rejects everything (404).
pub fn routes() -> BoxedFilter<(Response,)> {
    warp::any()
        .and_then(|| async { Err::<Response, _>(warp::reject::not_found()) })
        .boxed()
}
