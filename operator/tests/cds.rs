//! CDS server end to end on loopback: REST over a real socket and WebSocket watch with a real
//! client (tokio-tungstenite), fed by renderer output.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use operator::cds::{ConfigSet, ConfigStore, serve};
use operator::render::{RenderOptions, render};
use operator::store::{ObjectKey, Snapshot};
use proto::config::{ConfigList, StunnerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(10);

fn rendered(extra: &str) -> ConfigSet {
    let mut s = Snapshot::default();
    for f in ["common.yaml", "udp-gateway.yaml"] {
        let text =
            std::fs::read_to_string(format!("{}/tests/fixtures/{f}", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        s.apply_manifests(&text).unwrap();
    }
    s.apply_manifests(extra).unwrap();
    render(&s, &RenderOptions::default()).configs
}

const SECOND_GW: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: { name: tcp-gateway, namespace: other }\nspec:\n  gatewayClassName: stunner-gatewayclass\n  listeners: [{ name: tcp, port: 3478, protocol: TURN-TCP }]\n";

async fn start(store: ConfigStore) -> (std::net::SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(serve(listener, store, stop.clone()));
    (addr, stop)
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: cds\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let status = buf.split(' ').nth(1).unwrap().parse().unwrap();
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

async fn next_config(
    ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> StunnerConfig {
    loop {
        match tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("no push in time")
            .expect("stream ended")
            .unwrap()
        {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

#[tokio::test]
async fn rest_endpoints() {
    tokio::time::timeout(LIMIT, async {
        let store = ConfigStore::new();
        store.publish(rendered(SECOND_GW));
        let (addr, stop) = start(store).await;
        let (code, body) = get(addr, "/api/v1/configs").await;
        assert_eq!(code, 200);
        let list: ConfigList = serde_json::from_str(&body).unwrap();
        assert_eq!(list.version, "v1");
        let names: Vec<_> = list.items.iter().map(|c| c.admin.name.clone()).collect();
        assert_eq!(names, ["other/tcp-gateway", "stunner/udp-gateway"]);
        let (_, body) = get(addr, "/api/v1/configs/stunner").await;
        let list: ConfigList = serde_json::from_str(&body).unwrap();
        assert_eq!(list.items.len(), 1);
        let (code, body) = get(addr, "/api/v1/configs/stunner/udp-gateway?node=node-1").await;
        assert_eq!(code, 200);
        let one: StunnerConfig = serde_json::from_str(&body).unwrap();
        assert_eq!(one.listeners[0].name, "stunner/udp-gateway/udp-listener");
        assert_eq!(get(addr, "/api/v1/configs/stunner/nope").await.0, 404);
        let (_, body) = get(addr, "/api/v1/configs/empty-ns").await;
        assert_eq!(
            serde_json::from_str::<ConfigList>(&body)
                .unwrap()
                .items
                .len(),
            0
        );
        assert_eq!(get(addr, "/api/v1/configs?watch=true").await.0, 400);
        stop.cancel();
    })
    .await
    .expect("timeout");
}

#[tokio::test]
async fn slow_watch_one_gateway_pushes_current_then_changes_then_deletion() {
    tokio::time::timeout(LIMIT, async {
        let store = ConfigStore::new();
        store.publish(rendered(""));
        let (addr, stop) = start(store.clone()).await;
        let url = format!("ws://{addr}/api/v1/configs/stunner/udp-gateway?watch=true&node=n1");
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let first = next_config(&mut ws).await;
        assert_eq!(first.admin.name, "stunner/udp-gateway");
        assert_eq!(first.clusters[0].endpoints, ["10.96.23.4"]);

        // a route change reaches the watcher
        let changed = rendered("apiVersion: v1\nkind: Service\nmetadata: { name: iperf-server, namespace: default }\nspec: { clusterIP: 10.96.99.99 }\n");
        let t0 = std::time::Instant::now();
        store.publish(changed);
        let update = next_config(&mut ws).await;
        assert_eq!(update.clusters[0].endpoints, ["10.96.99.99"]);
        assert!(t0.elapsed() < Duration::from_millis(100), "push took {:?}", t0.elapsed());

        // a change to another Gateway is not sent; deletion is
        let mut with_other = store.current().as_ref().clone();
        with_other.extend(rendered(SECOND_GW).into_iter().filter(|(k, _)| k.namespace == "other"));
        store.publish(with_other.clone());
        with_other.remove(&ObjectKey::new("stunner", "udp-gateway"));
        store.publish(with_other);
        let gone = next_config(&mut ws).await;
        assert!(gone.is_deleted(), "{gone:?}");
        assert_eq!(gone.admin.name, "stunner/udp-gateway");
        ws.send(Message::Close(None)).await.unwrap();
        stop.cancel();
    })
    .await
    .expect("timeout");
}

#[tokio::test]
async fn watch_all_sees_every_gateway_and_namespace_filter_works() {
    tokio::time::timeout(LIMIT, async {
        let store = ConfigStore::new();
        let (addr, stop) = start(store.clone()).await;
        let (mut all, _) =
            tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/configs?watch=true"))
                .await
                .unwrap();
        let (mut ns, _) = tokio_tungstenite::connect_async(format!(
            "ws://{addr}/api/v1/configs/other?watch=true"
        ))
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        store.publish(rendered(SECOND_GW));
        let a = next_config(&mut all).await.admin.name;
        let b = next_config(&mut all).await.admin.name;
        assert_eq!([a, b], ["other/tcp-gateway", "stunner/udp-gateway"]);
        assert_eq!(next_config(&mut ns).await.admin.name, "other/tcp-gateway");
        // unchanged publication sends nothing; a ping from the client is answered
        store.publish(rendered(SECOND_GW));
        ns.send(Message::Ping(b"hi".to_vec().into())).await.unwrap();
        let pong = tokio::time::timeout(LIMIT, ns.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(matches!(pong, Message::Pong(_)), "{pong:?}");
        stop.cancel();
    })
    .await
    .expect("timeout");
}
