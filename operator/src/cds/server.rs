//! The axum CDS server: REST listing and WebSocket push.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use proto::config::{ConfigList, StunnerConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::store::{ConfigSet, ConfigStore, Selector, diff};
use crate::store::ObjectKey;

/// Default CDS port.
pub const DEFAULT_PORT: u16 = 13478;
/// Interval of server pings on watch connections (dead peers are noticed on send).
const PING_INTERVAL: Duration = Duration::from_secs(5);

type Params = Query<HashMap<String, String>>;
type Upgrade = Result<WebSocketUpgrade, WebSocketUpgradeRejection>;

/// The CDS routes over `store`.
pub fn router(store: ConfigStore) -> Router {
    Router::new()
        .route("/api/v1/configs", get(all))
        .route("/api/v1/configs/{namespace}", get(namespace))
        .route("/api/v1/configs/{namespace}/{name}", get(one))
        .with_state(store)
}

/// Serves CDS on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    store: ConfigStore,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(store))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn all(State(store): State<ConfigStore>, q: Params, ws: Upgrade) -> Response {
    respond(store, Selector::All, &q, ws)
}

async fn namespace(
    State(store): State<ConfigStore>,
    Path(ns): Path<String>,
    q: Params,
    ws: Upgrade,
) -> Response {
    respond(store, Selector::Namespace(ns), &q, ws)
}

async fn one(
    State(store): State<ConfigStore>,
    Path((ns, name)): Path<(String, String)>,
    q: Params,
    ws: Upgrade,
) -> Response {
    let sel = Selector::One(ObjectKey::new(ns, name));
    if is_watch(&q) {
        return respond(store, sel, &q, ws);
    }
    let current = store.current();
    match sel.select(&current).next() {
        Some((_, c)) => axum::Json(c.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "config not found\n").into_response(),
    }
}

fn is_watch(q: &Params) -> bool {
    q.get("watch")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn respond(store: ConfigStore, sel: Selector, q: &Params, ws: Upgrade) -> Response {
    if !is_watch(q) {
        let current = store.current();
        let items: Vec<StunnerConfig> = sel.select(&current).map(|(_, c)| c.clone()).collect();
        return axum::Json(ConfigList::new(items)).into_response();
    }
    match ws {
        Ok(up) => up.on_upgrade(move |socket| watch(socket, store, sel)),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("watch=true requires a WebSocket upgrade: {e}\n"),
        )
            .into_response(),
    }
}

/// Sends the current matching configs, then every change, until the peer goes away.
async fn watch(mut socket: WebSocket, store: ConfigStore, sel: Selector) {
    let mut rx = store.subscribe();
    let mut sent: Arc<ConfigSet> = Arc::new(ConfigSet::new());
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    loop {
        let current = rx.borrow_and_update().clone();
        for c in diff(&sel, &sent, &current) {
            if socket
                .send(Message::Text(c.to_json().into()))
                .await
                .is_err()
            {
                return;
            }
        }
        sent = current;
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            _ = ping.tick() => if socket.send(Message::Ping(Default::default())).await.is_err() { return },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
