//! Route handlers of the admin server; every answer is JSON except the probe bodies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use proto::admin::{DrainResponse, ErrorResponse};

use super::guard::authorize;
use super::{AdminOptions, DataplaneView, DrainError};

#[derive(Clone)]
struct AppState {
    view: Arc<dyn DataplaneView>,
    token: Option<Arc<str>>,
}

/// The admin API as an axum router. Serve it with connect info
/// (`into_make_service_with_connect_info::<SocketAddr>()`), which the drain guard needs.
pub fn router(view: Arc<dyn DataplaneView>, opts: AdminOptions) -> Router {
    let state = AppState {
        view,
        token: opts.admin_token.filter(|t| !t.is_empty()).map(Arc::from),
    };
    Router::new()
        .route("/live", get(|| async { "live\n" }))
        .route("/ready", get(ready))
        .route("/status", get(status))
        .route(
            "/drain",
            axum::routing::post(start_drain).delete(cancel_drain),
        )
        .with_state(state)
}

async fn ready(State(s): State<AppState>) -> (StatusCode, &'static str) {
    if s.view.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn status(State(s): State<AppState>) -> Response {
    Json(s.view.status()).into_response()
}

async fn start_drain(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(denied) = authorize(peer, &headers, s.token.as_deref()) {
        return error(denied.0, denied.1);
    }
    let timeout = match parse_timeout(query.as_deref()) {
        Ok(t) => t,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    tracing::info!(%peer, ?timeout, "drain requested over the admin API");
    answer(s.view.start_drain(timeout))
}

async fn cancel_drain(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(denied) = authorize(peer, &headers, s.token.as_deref()) {
        return error(denied.0, denied.1);
    }
    tracing::info!(%peer, "drain cancel requested over the admin API");
    answer(s.view.cancel_drain())
}

/// Longest drain timeout accepted over the API (a week).
const MAX_DRAIN_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

/// `timeout=<seconds>` (non-negative integer, at most a week) from the query string; other
/// parameters ignored.
pub(super) fn parse_timeout(query: Option<&str>) -> Result<Option<Duration>, String> {
    let mut pairs = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|p| p.split_once('='));
    let Some((_, raw)) = pairs.rfind(|(k, _)| *k == "timeout") else {
        return Ok(None);
    };
    match raw.parse::<u64>() {
        Ok(s) if s <= MAX_DRAIN_TIMEOUT_SECS => Ok(Some(Duration::from_secs(s))),
        Ok(_) => Err(format!(
            "timeout must be at most {MAX_DRAIN_TIMEOUT_SECS} seconds, got {raw:?}"
        )),
        Err(_) => Err(format!(
            "timeout must be a whole number of seconds, got {raw:?}"
        )),
    }
}

fn answer(result: Result<DrainResponse, DrainError>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(e @ DrainError::Conflict(_)) => error(StatusCode::CONFLICT, e.to_string()),
        Err(e @ DrainError::Internal(_)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(ErrorResponse { error: message })).into_response()
}
