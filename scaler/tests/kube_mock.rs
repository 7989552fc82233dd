//! Pod discovery (direct source) and drain steering against a mocked Kubernetes API server:
//! `tower_test::mock::pair` plus a verifier asserting each request's method, path and body
//! (controller-rs's ApiServerVerifier pattern). Every test runs under a timeout.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use http::{Method, Request, Response};
use kube::client::Body;
use scaler::source::SourceDeps;
use serde_json::{Value, json};
use tokio::net::TcpListener;

type ApiServerHandle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

const SELECTOR: &str = "stunner.l7mp.io/related-gateway-name=udp-gateway,stunner.l7mp.io/related-gateway-namespace=stunner";

/// Verifies and answers requests the scaler sends to the API server.
struct ApiServerVerifier(ApiServerHandle);

impl ApiServerVerifier {
    async fn expect_pod_list(&mut self, pods: &[Value]) {
        let (req, send) = self
            .0
            .next_request()
            .await
            .expect("scaler did not list pods");
        assert_eq!(req.method(), Method::GET);
        assert_eq!(req.uri().path(), "/api/v1/namespaces/stunner/pods");
        let query: std::collections::HashMap<String, String> =
            url_pairs(req.uri().query().unwrap_or_default());
        assert_eq!(
            query.get("labelSelector").map(String::as_str),
            Some(SELECTOR)
        );
        let list = json!({ "apiVersion": "v1", "kind": "PodList", "metadata": { "resourceVersion": "1" }, "items": pods });
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&list).unwrap()))
                .unwrap(),
        );
    }

    async fn expect_cost_patch(&mut self, name: &str, cost: &str) {
        let (req, send) = self.0.next_request().await.expect("scaler did not patch");
        assert_eq!(req.method(), Method::PATCH);
        assert_eq!(
            req.uri().path(),
            format!("/api/v1/namespaces/stunner/pods/{name}")
        );
        assert_eq!(
            req.headers().get("content-type").unwrap(),
            "application/merge-patch+json"
        );
        let body: Value =
            serde_json::from_slice(&req.into_body().collect_bytes().await.unwrap()).unwrap();
        assert_eq!(
            body,
            json!({ "metadata": { "annotations": { "controller.kubernetes.io/pod-deletion-cost": cost } } })
        );
        let pod = pod_json(name, Ipv4Addr::LOCALHOST, Some(cost), false);
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&pod).unwrap()))
                .unwrap(),
        );
    }

    async fn expect_silence(&mut self, for_: Duration) {
        if let Ok(Some((req, _))) = tokio::time::timeout(for_, self.0.next_request()).await {
            panic!("unexpected request {} {}", req.method(), req.uri());
        }
    }
}

fn url_pairs(q: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(&format!("http://x/?{q}"))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn pod_json(name: &str, ip: Ipv4Addr, cost: Option<&str>, terminating: bool) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": "stunner", "labels": {
            "stunner.l7mp.io/related-gateway-name": "udp-gateway",
            "stunner.l7mp.io/related-gateway-namespace": "stunner" } },
        "status": { "phase": "Running", "podIP": ip.to_string(),
            "conditions": [{ "type": "Ready", "status": "True" }] }
    });
    if let Some(cost) = cost {
        pod["metadata"]["annotations"] =
            json!({ "controller.kubernetes.io/pod-deletion-cost": cost });
    }
    if terminating {
        pod["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
    }
    pod
}

/// Fake pods on 127.0.0.1..=n, all on one port (pods share the statusPort).
async fn pods_on_one_port(specs: &[(u64, &str)]) -> (u16, Vec<Arc<FakePod>>) {
    'retry: loop {
        let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = first.local_addr().unwrap().port();
        let mut listeners = vec![first];
        for i in 2..=specs.len() as u8 {
            match TcpListener::bind(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)),
                port,
            ))
            .await
            {
                Ok(l) => listeners.push(l),
                Err(_) => continue 'retry,
            }
        }
        let pods = listeners
            .into_iter()
            .zip(specs)
            .map(|(l, (a, s))| serve_pod(l, *a, s))
            .collect();
        return (port, pods);
    }
}

fn ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, i)
}

#[tokio::test]
async fn discovery_and_deletion_cost_once_per_scale_in_decision() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (port, _pods) = pods_on_one_port(&[(3, "READY"), (8, "READY"), (2, "READY"), (0, "DRAINING")]).await;
        let (mock, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let deps = SourceDeps { kube: Some(kube::Client::new(mock, "default")), ..Default::default() };
        let interval = Duration::from_millis(300);
        let (app, grpc, _) = start_scaler(deps, interval).await;
        let mut c = client(grpc).await;
        let port_s = port.to_string();
        let r = so_ref(
            "gw",
            &[
                ("source", "direct"),
                ("gateway", "udp-gateway"),
                ("statusPort", &port_s),
                ("targetAllocationsPerPod", "10"),
                ("drainSteering", "true"),
            ],
        );
        let listed = vec![
            pod_json("udp-gateway-5d9f-a", ip(1), None, false),
            pod_json("udp-gateway-5d9f-b", ip(2), Some("1"), false),
            pod_json("udp-gateway-5d9f-c", ip(3), Some("2"), false),
            pod_json("udp-gateway-5d9f-d", ip(4), None, true),
            json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "udp-gateway-5d9f-pending", "namespace": "stunner" }, "status": { "phase": "Pending" } }),
        ];

        // 13 allocations on 3 ready pods, target 10: scale in to 2. Pods a and b get their
        // allocation count as deletion cost; c already carries the right value.
        let mut verifier = ApiServerVerifier(handle);
        let pods = listed.clone();
        let task = tokio::spawn(async move {
            verifier.expect_pod_list(&pods).await;
            verifier.expect_cost_patch("udp-gateway-5d9f-a", "3").await;
            verifier.expect_cost_patch("udp-gateway-5d9f-b", "8").await;
            verifier
        });
        assert_eq!(desired(&mut c, &r).await.unwrap(), 2);
        let mut verifier = task.await.unwrap();

        // Next poll, same decision: pods are listed again but nothing is patched.
        tokio::time::sleep(interval).await;
        let task = tokio::spawn(async move {
            verifier.expect_pod_list(&listed).await;
            verifier.expect_silence(Duration::from_millis(500)).await;
            verifier
        });
        assert_eq!(desired(&mut c, &r).await.unwrap(), 2);
        task.await.unwrap();
        assert_eq!(app.metrics.deletion_cost_patches.get(), 2);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn api_server_error_is_unavailable() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let deps = SourceDeps {
            kube: Some(kube::Client::new(mock, "default")),
            ..Default::default()
        };
        let (_app, grpc, _) = start_scaler(deps, Duration::from_millis(100)).await;
        let mut c = client(grpc).await;
        let r = so_ref(
            "gw",
            &[
                ("source", "direct"),
                ("gateway", "udp-gateway"),
                ("targetAllocationsPerPod", "10"),
            ],
        );
        let task = tokio::spawn(async move {
            let (req, send) = handle.next_request().await.unwrap();
            assert_eq!(req.uri().path(), "/api/v1/namespaces/stunner/pods");
            let status = json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": "pods is forbidden", "reason": "Forbidden", "code": 403 });
            send.send_response(
                Response::builder()
                    .status(403)
                    .body(Body::from(serde_json::to_vec(&status).unwrap()))
                    .unwrap(),
            );
        });
        let err = desired(&mut c, &r).await.unwrap_err();
        task.await.unwrap();
        assert_eq!(err.code(), tonic::Code::Unavailable);
        assert!(err.message().contains("forbidden"), "{}", err.message());
    })
    .await
    .expect("test timed out");
}

/// A Running pod that is not Ready (crash-looping: restarted) is not read, is reported in
/// `pods_excluded`, and takes a slot; the Ready pods' reading goes on.
#[tokio::test]
async fn not_ready_pod_is_left_out_and_reported() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (port, pods) = pods_on_one_port(&[(12, "READY"), (0, "READY")]).await;
        let (mock, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let deps = SourceDeps {
            kube: Some(kube::Client::new(mock, "default")),
            ..Default::default()
        };
        let (_app, grpc, http) = start_scaler(deps, Duration::from_millis(300)).await;
        let mut c = client(grpc).await;
        let port_s = port.to_string();
        let r = so_ref(
            "gw",
            &[
                ("source", "direct"),
                ("gateway", "udp-gateway"),
                ("statusPort", &port_s),
                ("targetAllocationsPerPod", "10"),
            ],
        );
        let mut broken = pod_json("udp-gateway-5d9f-b", ip(2), None, false);
        broken["status"]["conditions"] = json!([{ "type": "Ready", "status": "False" }]);
        broken["status"]["containerStatuses"] = json!([{ "name": "stunnerd", "image": "x",
            "imageID": "", "ready": false, "restartCount": 7 }]);
        let listed = vec![pod_json("udp-gateway-5d9f-a", ip(1), None, false), broken];
        let mut verifier = ApiServerVerifier(handle);
        let task = tokio::spawn(async move { verifier.expect_pod_list(&listed).await });
        // 12 allocations need 2 pods, plus the broken pod's slot: 3 (from 2 current pods).
        assert_eq!(desired(&mut c, &r).await.unwrap(), 3);
        task.await.unwrap();
        assert_eq!(
            pods[1]
                .status_hits
                .load(std::sync::atomic::Ordering::SeqCst),
            0,
            "not read"
        );
        let body = metrics_text(http).await;
        assert!(
            body.contains(
                r#"stunner_scaler_pods_excluded{scaledobject="stunner/gw",source="direct"} 1"#
            ),
            "{body}"
        );
    })
    .await
    .expect("test timed out");
}
