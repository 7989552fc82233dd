//! Config sources end to end on loopback: file polling, and the CDS client against a tiny
//! in-test axum server (WebSocket watch and plain GET).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use proto::config::StunnerConfig;
use tokio::sync::{Mutex, mpsc};
use tokio::time::timeout;

use super::{Gate, Origin, SourceError, SourceOptions, load, watch};

fn config(name: &str, port: u16) -> String {
    format!(
        r#"{{"version":"v1","admin":{{"name":"{name}"}},"auth":{{"type":"none"}},
            "listeners":[{{"name":"udp","port":{port},"routes":["media"]}}],
            "clusters":[{{"name":"media","endpoints":["10.0.0.0/8"]}}]}}"#
    )
}

const INVALID: &str =
    r#"{"version":"v1","auth":{"type":"none"},"listeners":[{"name":"udp","port":99999}]}"#;

async fn next(rx: &mut mpsc::Receiver<StunnerConfig>) -> StunnerConfig {
    timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a config within 5 s")
        .expect("channel open")
}

fn fast(id: Option<&str>) -> SourceOptions {
    SourceOptions {
        id: id.map(str::to_owned),
        node: Some("node-1".into()),
        poll_interval: Duration::from_millis(50),
        ping_interval: Duration::from_millis(100),
        read_timeout: Duration::from_millis(400),
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(200),
    }
}

// ---------------------------------------------------------------- origins

#[test]
fn origins_parse() {
    assert_eq!(
        Origin::parse("/etc/stunnerd.yaml").unwrap(),
        Origin::File("/etc/stunnerd.yaml".into())
    );
    assert_eq!(
        Origin::parse("file:///etc/x.yaml").unwrap(),
        Origin::File("/etc/x.yaml".into())
    );
    assert!(matches!(
        Origin::parse("http://cds:13478").unwrap(),
        Origin::Cds(_)
    ));
    assert!(matches!(
        Origin::parse("ftp://x").unwrap_err(),
        SourceError::InvalidOrigin { .. }
    ));
    assert!(matches!(
        Origin::parse("  ").unwrap_err(),
        SourceError::InvalidOrigin { .. }
    ));
    assert!(matches!(
        Origin::parse("http://").unwrap_err(),
        SourceError::InvalidOrigin { .. }
    ));
}

#[test]
fn watch_urls() {
    let Origin::Cds(s) = Origin::parse("http://[::1]:13478/ignored").unwrap() else {
        panic!()
    };
    let url = s
        .watch_url(&SourceOptions::from_identity(
            Some("ns/gw x".into()),
            Some("n 1".into()),
        ))
        .unwrap();
    assert_eq!(
        url,
        "ws://[::1]:13478/api/v1/configs/ns/gw%20x?watch=true&node=n%201"
    );
    for tls in ["wss://cds.example", "https://cds.example"] {
        let err = Origin::parse(tls).unwrap_err().to_string();
        assert!(err.contains("not supported"), "{err}");
    }
    let Origin::Cds(s) = Origin::parse("ws://cds.example").unwrap() else {
        panic!()
    };
    assert_eq!(
        s.watch_url(&SourceOptions::from_identity(Some("a/b".into()), None))
            .unwrap(),
        "ws://cds.example/api/v1/configs/a/b?watch=true"
    );
    for id in [None, Some("gw"), Some("/gw"), Some("a/b/c")] {
        let opts = SourceOptions::from_identity(id.map(str::to_owned), None);
        assert!(
            matches!(s.watch_url(&opts), Err(SourceError::MissingId(_))),
            "{id:?}"
        );
    }
}

// ---------------------------------------------------------------- files

fn temp_file(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "stunnerd-cfgsrc-{}-{tag}-{n}.json",
        std::process::id()
    ))
}

#[tokio::test]
async fn file_load_by_path_and_url() {
    let path = temp_file("load");
    std::fs::write(&path, config("ns/file", 4000)).unwrap();
    let by_path = load(path.to_str().unwrap(), &SourceOptions::default())
        .await
        .unwrap();
    let by_url = load(
        &format!("file://{}", path.display()),
        &SourceOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(by_path, by_url);
    assert_eq!(by_path.listeners[0].port, 4000);
    std::fs::write(&path, INVALID).unwrap();
    let err = load(path.to_str().unwrap(), &SourceOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("listeners[0].port"), "{err}");
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        load(path.to_str().unwrap(), &SourceOptions::default()).await,
        Err(SourceError::Io { .. })
    ));
}

#[tokio::test]
async fn file_watch_delivers_changed_valid_configs_only() {
    let path = temp_file("watch");
    let mut rx = watch(path.to_str().unwrap(), fast(None)).unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await; // missing file: keeps polling
    std::fs::write(&path, config("ns/a", 4001)).unwrap();
    assert_eq!(next(&mut rx).await.listeners[0].port, 4001);
    let steps = [
        INVALID.to_owned(),
        config("ns/a", 4001) + "\n",
        config("ns/a", 4002),
    ];
    for text in steps {
        std::fs::write(&path, text).unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // The invalid and the semantically identical versions were skipped.
    assert_eq!(next(&mut rx).await.listeners[0].port, 4002);
    assert!(rx.try_recv().is_err());
    std::fs::remove_file(&path).unwrap();
}

// ---------------------------------------------------------------- CDS

/// What the fake CDS server does next on the open WebSocket.
enum Action {
    Send(String),
    Close,
    /// Stop reading (so pings go unanswered) and hold the socket for a while.
    Silence,
}

#[derive(Clone)]
struct Fake {
    actions: Arc<Mutex<mpsc::UnboundedReceiver<Action>>>,
    uris: Arc<std::sync::Mutex<Vec<String>>>,
    closed: Arc<AtomicUsize>,
}

async fn ws_handler(
    State(f): State<Fake>,
    OriginalUri(uri): OriginalUri,
    ws: WebSocketUpgrade,
) -> impl IntoResponse {
    f.uris.lock().unwrap().push(uri.to_string());
    ws.on_upgrade(move |socket| serve_socket(f, socket))
}

async fn serve_socket(f: Fake, mut socket: WebSocket) {
    loop {
        let action = {
            let mut actions = f.actions.lock().await;
            tokio::select! {
                a = actions.recv() => a,
                m = socket.recv() => match m {
                    Some(Ok(_)) => continue,
                    _ => break,
                },
            }
        };
        match action {
            Some(Action::Send(text)) => {
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            Some(Action::Close) | None => break,
            Some(Action::Silence) => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                break;
            }
        }
    }
    f.closed.fetch_add(1, Ordering::SeqCst);
}

async fn fake_cds() -> (String, mpsc::UnboundedSender<Action>, Fake) {
    let (tx, rx) = mpsc::unbounded_channel();
    let fake = Fake {
        actions: Arc::new(Mutex::new(rx)),
        uris: Arc::default(),
        closed: Arc::default(),
    };
    let app = Router::new()
        .route("/api/v1/configs/{ns}/{name}", get(ws_handler))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (origin, tx, fake)
}

#[tokio::test]
async fn cds_watch_skips_repeats_invalid_and_deleted_configs() {
    let (origin, server, fake) = fake_cds().await;
    let mut rx = watch(&origin, fast(Some("ns/gw"))).unwrap();
    // What upstream's CDS server sends for a deleted Gateway (`ZeroConfig`), verbatim.
    let deleted = r#"{"version":"v1","admin":{"name":"ns/gw"},"auth":{"type":"static","realm":"stunner.l7mp.io","credentials":{"password":"dummy-password","username":"dummy-username"}}}"#;
    let legacy = r#"{"version":"v1","admin":{"name":"ns/gw"}}"#;
    for text in [
        config("ns/gw", 5001),
        config("ns/gw", 5001),
        INVALID.into(),
        deleted.into(),
        legacy.into(),
        String::new(),
        config("ns/gw", 5002),
    ] {
        server.send(Action::Send(text)).unwrap();
    }
    assert_eq!(next(&mut rx).await.listeners[0].port, 5001);
    assert_eq!(next(&mut rx).await.listeners[0].port, 5002);
    assert_eq!(
        fake.uris.lock().unwrap().as_slice(),
        ["/api/v1/configs/ns/gw?watch=true&node=node-1"]
    );
}

#[tokio::test]
async fn cds_reconnects_after_the_server_closes() {
    let (origin, server, fake) = fake_cds().await;
    let mut rx = watch(&origin, fast(Some("ns/gw"))).unwrap();
    server.send(Action::Send(config("ns/gw", 5001))).unwrap();
    server.send(Action::Close).unwrap();
    server.send(Action::Send(config("ns/gw", 5002))).unwrap();
    assert_eq!(next(&mut rx).await.listeners[0].port, 5001);
    assert_eq!(next(&mut rx).await.listeners[0].port, 5002);
    assert_eq!(fake.uris.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn cds_read_deadline_drops_a_silent_server() {
    let (origin, server, fake) = fake_cds().await;
    let mut rx = watch(&origin, fast(Some("ns/gw"))).unwrap();
    server.send(Action::Silence).unwrap();
    server.send(Action::Send(config("ns/gw", 5003))).unwrap();
    assert_eq!(next(&mut rx).await.listeners[0].port, 5003);
    assert_eq!(
        fake.uris.lock().unwrap().len(),
        2,
        "reconnected after the read deadline"
    );
}

#[tokio::test]
async fn cds_pongs_keep_a_quiet_connection_alive() {
    let (origin, server, fake) = fake_cds().await;
    let mut rx = watch(&origin, fast(Some("ns/gw"))).unwrap();
    server.send(Action::Send(config("ns/gw", 5004))).unwrap();
    assert_eq!(next(&mut rx).await.listeners[0].port, 5004);
    tokio::time::sleep(Duration::from_millis(1200)).await; // 3 read deadlines, kept by pongs
    server.send(Action::Send(config("ns/gw", 5005))).unwrap();
    assert_eq!(next(&mut rx).await.listeners[0].port, 5005);
    assert_eq!(fake.uris.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn dropping_the_receiver_closes_the_connection() {
    let (origin, server, fake) = fake_cds().await;
    let mut rx = watch(&origin, fast(Some("ns/gw"))).unwrap();
    server.send(Action::Send(config("ns/gw", 5006))).unwrap();
    next(&mut rx).await;
    drop(rx);
    let closed = async {
        while fake.closed.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    timeout(Duration::from_secs(3), closed)
        .await
        .expect("server saw the close");
}

#[tokio::test]
async fn cds_watch_needs_an_id() {
    assert!(matches!(
        watch("http://127.0.0.1:1", fast(None)),
        Err(SourceError::MissingId(_))
    ));
}

async fn get_config(Path((ns, name)): Path<(String, String)>) -> axum::response::Response {
    match (ns.as_str(), name.as_str()) {
        ("ns", "gw") => config("ns/gw", 6000).into_response(),
        ("ns", "list") => format!(
            r#"{{"version":"v1","items":[{}]}}"#,
            config("ns/list", 6001)
        )
        .into_response(),
        ("ns", "gone") => StunnerConfig::deleted("ns/gone").to_json().into_response(),
        _ => (StatusCode::NOT_FOUND, "no such config").into_response(),
    }
}

#[tokio::test]
async fn cds_one_shot_load() {
    let app = Router::new().route("/api/v1/configs/{ns}/{name}", get(get_config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let opts = |id: &str| SourceOptions::from_identity(Some(id.into()), Some("node-1".into()));
    assert_eq!(
        load(&origin, &opts("ns/gw")).await.unwrap().listeners[0].port,
        6000
    );
    assert_eq!(
        load(&origin, &opts("ns/list")).await.unwrap().admin.name,
        "ns/list"
    );
    let err = load(&origin, &opts("ns/unknown")).await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    assert!(
        load(&origin, &opts("ns/gone"))
            .await
            .unwrap_err()
            .to_string()
            .contains("deleted")
    );
}

#[test]
fn only_local_files_expand_environment_variables() {
    // PATH is set in every test environment.
    let text = "version: v1\nauth:\n  realm: $PATH\n  credentials: {username: u, password: p}\n";
    let remote = Gate::default().admit(text, "cds").expect("config");
    assert_eq!(
        remote.auth.realm, "$PATH",
        "CDS configs never read the environment: a reference stays as written"
    );
    // ...except the pod address the operator renders as `$STUNNER_ADDR`, as upstream.
    let addr =
        "version: v1\nlisteners:\n  - {name: l, protocol: TURN-UDP, address: $STUNNER_ADDR}\n";
    let remote = StunnerConfig::parse_remote(addr).expect("config");
    let want = std::env::var("STUNNER_ADDR").unwrap_or_default();
    assert_eq!(remote.listeners[0].address, want);
    let local = Gate::expanding().admit(text, "file").expect("config");
    assert_ne!(local.auth.realm, "$PATH", "local files expand");
}
