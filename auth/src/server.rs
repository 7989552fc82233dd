//! The HTTP server of the credential service: `GET /` and `GET /ice` (optionally behind a bearer
//! token or the spec's `key` parameter), `/healthz`, `/readyz` (the CDS watch is up) and
//! `/metrics`. Errors are answered in one place, as plain text with the status that fits:
//! 400 for a bad parameter (named), 401 for a missing or wrong token, 404 when no listener
//! matches, 503 while no config is known.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;

use crate::issue::{self, IssueError, Request};
use crate::metrics::Metrics;
use crate::query::{self, Endpoint};
use crate::store::Store;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Configs from CDS.
    pub store: Store,
    /// Request counters.
    pub metrics: Metrics,
    /// The registry `/metrics` encodes.
    pub registry: Arc<Registry>,
    /// Bearer token required on `/` and `/ice`, when set.
    pub token: Option<String>,
    /// `STUNNER_PUBLIC_ADDR`: the public address used when a request names none.
    pub public_addr: Option<String>,
}

type Pairs = Query<Vec<(String, String)>>;

/// The service's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(turn))
        .route("/ice", get(ice))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn turn(State(s): State<AppState>, headers: HeaderMap, Query(q): Pairs) -> Response {
    let out = answer(&s, &headers, &q, Endpoint::Turn, |gws, req, now, public| {
        issue::turn_credential(gws, req, now, public).map(|c| Json(c).into_response())
    });
    s.metrics.count("turn", out.status().as_u16());
    out
}

async fn ice(State(s): State<AppState>, headers: HeaderMap, Query(q): Pairs) -> Response {
    let out = answer(&s, &headers, &q, Endpoint::Ice, |gws, req, now, public| {
        issue::ice_config(gws, req, now, public).map(|c| Json(c).into_response())
    });
    s.metrics.count("ice", out.status().as_u16());
    out
}

type Issuer =
    fn(&crate::store::Gateways, &Request, u64, Option<&str>) -> Result<Response, IssueError>;

/// Authorises, parses and issues; every failure becomes its status here.
fn answer(
    s: &AppState,
    headers: &HeaderMap,
    pairs: &[(String, String)],
    endpoint: Endpoint,
    issue: Issuer,
) -> Response {
    if let Err(denied) = authorize(s.token.as_deref(), headers, pairs) {
        return denied;
    }
    let req = match query::parse(pairs, endpoint) {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let gws = s.store.snapshot();
    match issue(&gws, &req, unix_now(), s.public_addr.as_deref()) {
        Ok(resp) => resp,
        Err(e @ IssueError::NoConfig) => text(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e @ IssueError::NoListener(_)) => text(StatusCode::NOT_FOUND, e.to_string()),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn text(code: StatusCode, msg: String) -> Response {
    (code, format!("{msg}\n")).into_response()
}

/// With a token configured, the request must carry `Authorization: Bearer <token>` or the
/// spec's `key=<token>` query parameter.
#[allow(clippy::result_large_err)] // a Response is the natural error of a handler step
fn authorize(
    token: Option<&str>,
    headers: &HeaderMap,
    pairs: &[(String, String)],
) -> Result<(), Response> {
    let Some(expected) = token else {
        return Ok(());
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let key = pairs
        .iter()
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v.as_str());
    match bearer.or(key) {
        Some(t) if constant_time_eq(t.as_bytes(), expected.as_bytes()) => Ok(()),
        presented => {
            let msg = if presented.is_some() {
                "invalid token"
            } else {
                "missing 'Authorization: Bearer <token>' header or 'key' query parameter"
            };
            let mut resp = text(StatusCode::UNAUTHORIZED, msg.into());
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Err(resp)
        }
    }
}

/// Equality whose running time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    a.len() == b.len() && diff == 0
}

async fn ready(State(s): State<AppState>) -> Response {
    if s.store.connected() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "CDS watch not connected".into(),
        )
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    s.metrics
        .gateways
        .set(i64::try_from(s.store.snapshot().len()).unwrap_or(i64::MAX));
    s.metrics.cds_connected.set(i64::from(s.store.connected()));
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, &s.registry) {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics: {e}"),
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn token_by_header_or_key() {
        let none = HeaderMap::new();
        assert!(authorize(None, &none, &[]).is_ok());
        assert!(authorize(Some("t0k"), &bearer("Bearer t0k"), &[]).is_ok());
        let key = [("key".to_owned(), "t0k".to_owned())];
        assert!(authorize(Some("t0k"), &none, &key).is_ok());
        let denied = authorize(Some("t0k"), &bearer("Bearer nope"), &[]).unwrap_err();
        assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
        assert!(authorize(Some("t0k"), &none, &[]).is_err());
    }
}
