//! The admin server over a real TCP listener on 127.0.0.1:0 with a fake dataplane view.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::connect_info::MockConnectInfo;
use proto::admin::{DataplaneState, DrainResponse, ErrorResponse, Status};
use proto::config::StunnerConfig;
use reqwest::{Method, Response};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::{AdminOptions, DataplaneView, DrainError, router, serve_with_shutdown};

/// A dataplane stand-in recording drain calls.
#[derive(Default)]
struct FakeView {
    ready: Mutex<bool>,
    drain: Mutex<Option<Option<Duration>>>,
    terminating: Mutex<bool>,
}

impl FakeView {
    fn state(&self) -> DataplaneState {
        match (
            *self.terminating.lock().unwrap(),
            self.drain.lock().unwrap().is_some(),
            *self.ready.lock().unwrap(),
        ) {
            (true, _, _) => DataplaneState::Terminating,
            (_, true, _) => DataplaneState::Draining,
            (_, _, true) => DataplaneState::Ready,
            _ => DataplaneState::NotReady,
        }
    }

    fn response(&self, message: &str) -> DrainResponse {
        let deadline = self
            .drain
            .lock()
            .unwrap()
            .map(|t| 1000 + t.map_or(3600, |d| d.as_secs()));
        let started = deadline.map(|_| 1000);
        let state = self.state();
        DrainResponse {
            state,
            allocation_count: 3,
            drain_started_at: started,
            drain_deadline: deadline,
            message: message.into(),
        }
    }
}

impl DataplaneView for FakeView {
    fn status(&self) -> Status {
        let mut config = StunnerConfig::deleted("ns/gw");
        config.validate().ok();
        Status::new(&config, self.state(), 3, "test")
    }

    fn is_ready(&self) -> bool {
        *self.ready.lock().unwrap()
    }

    fn start_drain(&self, timeout: Option<Duration>) -> Result<DrainResponse, DrainError> {
        *self.drain.lock().unwrap() = Some(timeout);
        Ok(self.response("drain started"))
    }

    fn cancel_drain(&self) -> Result<DrainResponse, DrainError> {
        if *self.terminating.lock().unwrap() {
            return Err(DrainError::Conflict("terminating, cannot cancel".into()));
        }
        *self.drain.lock().unwrap() = None;
        Ok(self.response("drain cancelled"))
    }
}

struct Server {
    base: String,
    view: Arc<FakeView>,
    client: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

impl Server {
    /// Starts the admin server on 127.0.0.1:0. With `peer`, its handlers see every caller as
    /// that address, to exercise the non-loopback rule without leaving loopback.
    async fn start(peer: Option<&str>, token: Option<&str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let view = Arc::new(FakeView::default());
        let opts = AdminOptions {
            admin_token: token.map(str::to_owned),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async { drop(stopped.await) };
        match peer {
            None => drop(tokio::spawn(serve_with_shutdown(
                listener,
                view.clone(),
                opts,
                shutdown,
            ))),
            Some(peer) => {
                let fake = MockConnectInfo(peer.parse::<SocketAddr>().unwrap());
                let app = router(view.clone(), opts).layer(fake);
                drop(tokio::spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await
                }));
            }
        }
        proto::tls::provider(); // reqwest takes the process default
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        Self {
            base,
            view,
            client,
            _stop: stop,
        }
    }

    async fn call(&self, method: Method, path: &str, token: Option<&str>) -> Response {
        let req = self.client.request(method, format!("{}{path}", self.base));
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        req.send().await.unwrap()
    }

    async fn code(&self, method: Method, path: &str, token: Option<&str>) -> u16 {
        self.call(method, path, token).await.status().as_u16()
    }
}

#[tokio::test]
async fn probes_follow_the_view() {
    let s = Server::start(None, None).await;
    assert_eq!(s.code(Method::GET, "/live", None).await, 200);
    assert_eq!(s.code(Method::GET, "/ready", None).await, 503);
    *s.view.ready.lock().unwrap() = true;
    assert_eq!(s.code(Method::GET, "/ready", None).await, 200);
    assert_eq!(s.code(Method::GET, "/nope", None).await, 404);
}

#[tokio::test]
async fn status_is_json() {
    let s = Server::start(None, None).await;
    *s.view.ready.lock().unwrap() = true;
    let resp = s.call(Method::GET, "/status", None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let status: Status = resp.json().await.unwrap();
    assert_eq!(
        (status.state, status.allocation_count),
        (DataplaneState::Ready, 3)
    );
    assert_eq!(status.admin.name, "ns/gw");
}

#[tokio::test]
async fn drain_start_and_cancel_with_the_token() {
    let s = Server::start(None, Some("tok")).await;
    *s.view.ready.lock().unwrap() = true;
    let resp = s.call(Method::POST, "/drain?timeout=30", Some("tok")).await;
    assert_eq!(resp.status(), 200);
    let body: DrainResponse = resp.json().await.unwrap();
    assert_eq!(
        (body.state, body.drain_deadline),
        (DataplaneState::Draining, Some(1030))
    );
    assert_eq!(
        *s.view.drain.lock().unwrap(),
        Some(Some(Duration::from_secs(30)))
    );
    let status: Status = s
        .call(Method::GET, "/status", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status.state, DataplaneState::Draining);

    let body: DrainResponse = s
        .call(Method::DELETE, "/drain", Some("tok"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (body.state, body.drain_deadline),
        (DataplaneState::Ready, None)
    );

    assert_eq!(s.code(Method::POST, "/drain", Some("tok")).await, 200);
    assert_eq!(
        *s.view.drain.lock().unwrap(),
        Some(None),
        "no timeout = daemon default"
    );
}

#[tokio::test]
async fn bad_timeout_is_400_and_conflict_is_409() {
    let s = Server::start(None, Some("tok")).await;
    for q in [
        "timeout=-1",
        "timeout=abc",
        "timeout=1.5",
        "timeout=18446744073709551615",
        "timeout=604801",
    ] {
        let resp = s
            .call(Method::POST, &format!("/drain?{q}"), Some("tok"))
            .await;
        assert_eq!(resp.status(), 400, "{q}");
        let err: ErrorResponse = resp.json().await.unwrap();
        assert!(err.error.contains("timeout"), "{}", err.error);
    }
    assert!(
        s.view.drain.lock().unwrap().is_none(),
        "rejected requests do not drain"
    );
    *s.view.terminating.lock().unwrap() = true;
    assert_eq!(s.code(Method::DELETE, "/drain", Some("tok")).await, 409);
}

#[tokio::test]
async fn every_caller_is_refused_without_a_token_and_probes_stay_open() {
    for peer in [Some("10.1.2.3:40000"), None] {
        let s = Server::start(peer, None).await;
        let resp = s.call(Method::POST, "/drain", None).await;
        assert_eq!(resp.status(), 403, "{peer:?}");
        let err: ErrorResponse = resp.json().await.unwrap();
        assert!(err.error.contains("--admin-token"), "{}", err.error);
        assert_eq!(s.code(Method::DELETE, "/drain", None).await, 403);
        assert!(s.view.drain.lock().unwrap().is_none());
        assert_eq!(s.code(Method::GET, "/status", None).await, 200);
        assert_eq!(s.code(Method::GET, "/live", None).await, 200);
        assert_eq!(s.code(Method::GET, "/ready", None).await, 503);
    }
}

#[tokio::test]
async fn token_is_required_when_configured() {
    let s = Server::start(Some("10.1.2.3:40000"), Some("tok")).await;
    assert_eq!(s.code(Method::POST, "/drain", None).await, 401);
    assert_eq!(s.code(Method::POST, "/drain", Some("nope")).await, 403);
    assert!(s.view.drain.lock().unwrap().is_none());
    assert_eq!(s.code(Method::POST, "/drain", Some("tok")).await, 200);
    assert!(s.view.drain.lock().unwrap().is_some());
    // Loopback callers need the token too once one is configured.
    let local = Server::start(None, Some("tok")).await;
    assert_eq!(local.code(Method::POST, "/drain", None).await, 401);
    assert_eq!(local.code(Method::DELETE, "/drain", Some("tok")).await, 200);
}
