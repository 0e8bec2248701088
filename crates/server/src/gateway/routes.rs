//! The HTTP router: the gateway's own endpoints plus each component's routes.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::App;

/// Largest JSON body any route reads whole (uploads stream theirs under their own limit): axum's
/// default of 2 MiB per socket would let held-open requests pin gigabytes.
const MAX_JSON_BODY: usize = 256 * 1024;

pub fn router(app: Arc<App>) -> Router {
    let rates = Arc::new(super::requests::RequestRates::new(&app.config.http));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/v1/ws", get(super::socket::ws_handler))
        .merge(crate::sync::http::routes())
        .merge(crate::social::http::routes())
        .merge(crate::social::sharing_api::routes())
        .merge(crate::social::showcase::routes())
        .merge(crate::media::http::routes())
        .merge(super::webapp::routes())
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(axum::middleware::from_fn_with_state(
            (app.clone(), rates),
            super::requests::limit,
        ))
        .with_state(app)
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, app.metrics.content_type())],
        app.metrics.render(),
    )
        .into_response()
}
