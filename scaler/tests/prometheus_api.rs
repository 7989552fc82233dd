//! The prometheus source's HTTP contract against an in-test Prometheus-API server mounted at
//! Mimir's `/prometheus` prefix: exact path (no double slash), customHeaders, queryParameters,
//! bearer auth read from a file named by the scaler's flags, empty results and ignoreNullValues.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::{Router, extract::State, routing::get};
use common::*;
use http::HeaderMap;
use scaler::source::{PromAuth, PromSettings, Secret, SourceDeps};
use serde_json::{Value, json};
use tokio::net::TcpListener;

#[derive(Default)]
struct Seen {
    requests: Vec<(String, Option<String>, HeaderMap)>,
    result: Value,
}

async fn query(
    State(seen): State<Arc<Mutex<Seen>>>,
    uri: http::Uri,
    headers: HeaderMap,
) -> axum::Json<Value> {
    let mut s = seen.lock().unwrap();
    s.requests.push((
        uri.path().to_owned(),
        uri.query().map(str::to_owned),
        headers,
    ));
    axum::Json(
        json!({ "status": "success", "data": { "resultType": "vector", "result": s.result.clone() } }),
    )
}

async fn fake_mimir(result: Value) -> (Arc<Mutex<Seen>>, std::net::SocketAddr) {
    let seen = Arc::new(Mutex::new(Seen {
        requests: Vec::new(),
        result,
    }));
    let app = Router::new()
        .route("/prometheus/api/v1/query", get(query))
        .with_state(seen.clone());
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (seen, addr)
}

fn sample(pod: &str, value: &str, draining: bool) -> Value {
    let mut metric = json!({ "namespace": "stunner", "pod": pod });
    if draining {
        metric["draining"] = json!("true");
    }
    json!({ "metric": metric, "value": [1_700_000_000.0, value] })
}

#[tokio::test]
async fn mimir_prefix_headers_params_and_bearer_token() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (seen, addr) = fake_mimir(json!([
            sample("udp-gateway-1-a", "12", false),
            sample("udp-gateway-1-b", "9", false),
            sample("udp-gateway-1-c", "70", true),
        ]))
        .await;
        let token = std::env::temp_dir().join(format!("h-scaler-token-{}", std::process::id()));
        std::fs::write(&token, "s3cret\n").unwrap();
        let prom = PromSettings {
            auth: Some(PromAuth::Bearer(Secret::File(token.clone()))),
            ..Default::default()
        };
        let (_app, grpc, _) = start_scaler(
            SourceDeps {
                prom,
                ..Default::default()
            },
            Duration::from_millis(200),
        )
        .await;
        let mut c = client(grpc).await;
        let server = format!("http://{addr}/prometheus/");
        let r = so_ref(
            "gw",
            &[
                ("serverAddress", &server),
                ("gateway", "stunner/udp-gateway"),
                ("targetAllocationsPerPod", "10"),
                ("customHeaders", "X-Scope-OrgID=tenant-1"),
                ("queryParameters", "dedup=true,partial_response=false"),
            ],
        );
        // 21 on 2 non-draining pods -> 3 (scale-out); the draining pod's 70 do not count.
        assert_eq!(desired(&mut c, &r).await.unwrap(), 3);
        for _ in 0..50 {
            desired(&mut c, &r).await.unwrap();
        }
        let s = seen.lock().unwrap();
        assert_eq!(s.requests.len(), 1, "one upstream query per interval");
        let (path, query, headers) = &s.requests[0];
        assert_eq!(path, "/prometheus/api/v1/query");
        assert_eq!(headers.get("x-scope-orgid").unwrap(), "tenant-1");
        assert_eq!(headers.get("authorization").unwrap(), "Bearer s3cret");
        let pairs: Vec<(String, String)> =
            reqwest::Url::parse(&format!("http://x/?{}", query.as_deref().unwrap()))
                .unwrap()
                .query_pairs()
                .into_owned()
                .collect();
        assert!(
            pairs.contains(&("dedup".into(), "true".into())),
            "{pairs:?}"
        );
        assert!(
            pairs.contains(&("partial_response".into(), "false".into())),
            "{pairs:?}"
        );
        let promql = &pairs.iter().find(|(k, _)| k == "query").unwrap().1;
        assert!(
            promql.contains("stunner_allocations_active{namespace=\"stunner\",pod=~\"udp-gateway-"),
            "{promql}"
        );
        assert!(
            promql.contains("unless on (namespace, pod)")
                && promql.contains("stunner_dataplane_draining"),
            "{promql}"
        );
        std::fs::remove_file(token).unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn empty_result_is_an_error_unless_ignore_null_values() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (_seen, addr) = fake_mimir(json!([])).await;
        let (_app, grpc, _) = start_scaler(SourceDeps::default(), Duration::from_millis(200)).await;
        let mut c = client(grpc).await;
        let server = format!("http://{addr}/prometheus");
        let strict = so_ref(
            "strict",
            &[
                ("serverAddress", &server),
                ("gateway", "gw"),
                ("targetAllocationsPerPod", "10"),
            ],
        );
        let err = desired(&mut c, &strict).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unavailable);
        assert!(err.message().contains("no samples"), "{}", err.message());
        let lax = so_ref(
            "lax",
            &[
                ("serverAddress", &server),
                ("gateway", "gw"),
                ("targetAllocationsPerPod", "10"),
                ("ignoreNullValues", "true"),
            ],
        );
        assert_eq!(desired(&mut c, &lax).await.unwrap(), 1);
        assert!(!c.is_active(lax).await.unwrap().into_inner().result);
    })
    .await
    .expect("test timed out");
}
