//! The direct source with `--static-endpoints` against in-test stunnerd `/status` servers, end
//! to end through the gRPC service, plus the HTTP endpoints and bad-metadata handling.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use scaler::source::SourceDeps;
use tonic::Code;

const DIRECT: &[(&str, &str)] = &[
    ("source", "direct"),
    ("gateway", "stunner/udp-gateway"),
    ("targetAllocationsPerPod", "10"),
    ("scaleInStep", "1"),
    ("scalerAddress", "stunner-scaler:9090"),
];

fn deps(endpoints: &[std::net::SocketAddr]) -> SourceDeps {
    SourceDeps {
        static_endpoints: endpoints.iter().map(ToString::to_string).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn direct_static_endpoints_all_rpcs() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (a, a_addr) = fake_pod(25, "READY").await;
        let (b, b_addr) = fake_pod(12, "READY").await;
        let (cpod, c_addr) = fake_pod(40, "DRAINING").await;
        let interval = Duration::from_millis(300);
        let (_app, grpc, http) = start_scaler(deps(&[a_addr, b_addr, c_addr]), interval).await;
        let mut c = client(grpc).await;
        let r = so_ref("gw", DIRECT);

        let spec = c.get_metric_spec(r.clone()).await.unwrap().into_inner();
        assert_eq!(spec.metric_specs.len(), 1);
        assert_eq!(
            (
                spec.metric_specs[0].target_size,
                spec.metric_specs[0].target_size_float
            ),
            (1, 1.0)
        );

        // 37 allocations on the two non-draining pods (the draining pod's 40 are excluded):
        // ceil(37 / 10) = 4 > 2 ready, scale-out is immediate.
        assert_eq!(desired(&mut c, &r).await.unwrap(), 4);
        assert!(c.is_active(r.clone()).await.unwrap().into_inner().result);

        // Burst: however many calls, at most one /status read per pod per interval.
        let before = a.status_hits.load(Ordering::SeqCst);
        let started = std::time::Instant::now();
        for _ in 0..200 {
            desired(&mut c, &r).await.unwrap();
            c.is_active(r.clone()).await.unwrap();
        }
        let reads = a.status_hits.load(Ordering::SeqCst) - before;
        let bound = (started.elapsed().as_secs_f64() / interval.as_secs_f64()).ceil() as usize + 1;
        assert!(
            reads <= bound,
            "cache: {reads} upstream reads for 400 calls (bound {bound})"
        );

        // StreamIsActive: current value at once, then a push when activity changes.
        let mut stream = c.stream_is_active(r.clone()).await.unwrap().into_inner();
        assert!(stream.message().await.unwrap().unwrap().result);
        a.set(0, "READY");
        b.set(0, "READY");
        let next = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .unwrap();
        assert!(!next.unwrap().unwrap().result, "pushed on change");

        // Idle, but the draining pod still holds 40 sessions (4 pods' worth): no scale-in yet.
        tokio::time::sleep(interval).await;
        assert_eq!(desired(&mut c, &r).await.unwrap(), 2);
        // Once they end, scale-in by scaleInStep below the 2 ready pods (min 1).
        cpod.set(0, "DRAINING");
        tokio::time::sleep(interval).await;
        assert_eq!(desired(&mut c, &r).await.unwrap(), 1);

        // /metrics shows the scaler's own series; /healthz and /readyz answer.
        let body = metrics_text(http).await;
        assert!(
            body.contains(
                r#"stunner_scaler_desired_replicas{scaledobject="stunner/gw",source="direct"} 1"#
            ),
            "{body}"
        );
        assert!(
            body.contains("stunner_scaler_upstream_queries_total"),
            "{body}"
        );
        assert!(
            body.contains(
                r#"stunner_scaler_pods_draining{scaledobject="stunner/gw",source="direct"} 1"#
            ),
            "{body}"
        );
        for path in ["healthz", "readyz"] {
            assert_eq!(
                http_get(format!("http://{http}/{path}"))
                    .await
                    .unwrap()
                    .status(),
                200
            );
        }
    })
    .await
    .expect("test timed out");
}

/// One unreachable pod is left out of the reading and reported; with every pod unreachable the
/// reading is an error (KEDA's fallback), never 0.
#[tokio::test]
async fn unreachable_pods_are_left_out_and_all_unreachable_is_unavailable() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (_a, a_addr) = fake_pod(15, "READY").await;
        // Ports nobody listens on.
        let dead = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        };
        let (dead1, dead2) = (dead(), dead());
        let md = [
            ("source", "direct"),
            ("targetAllocationsPerPod", "10"),
            ("timeout", "500"),
        ];
        let (_app, grpc, http) =
            start_scaler(deps(&[a_addr, dead1]), Duration::from_millis(100)).await;
        let mut c = client(grpc).await;
        // 15 allocations on the one readable pod need 2 pods, plus the slot the broken pod
        // takes: 3 (and 3 / 2 current pods is outside the HPA's tolerance).
        let r = so_ref("gw", &md);
        assert_eq!(desired(&mut c, &r).await.unwrap(), 3);
        let body = metrics_text(http).await;
        assert!(
            body.contains(
                r#"stunner_scaler_pods_excluded{scaledobject="stunner/gw",source="direct"} 1"#
            ),
            "{body}"
        );

        let (_app, grpc, _) = start_scaler(deps(&[dead1, dead2]), Duration::from_millis(100)).await;
        let mut c = client(grpc).await;
        let err = desired(&mut c, &r).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        for d in [dead1, dead2] {
            assert!(
                err.message().contains(&d.to_string()),
                "names the pod: {}",
                err.message()
            );
        }
        let err = c.is_active(r.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn bad_metadata_is_invalid_argument_naming_the_key() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (_app, grpc, _) = start_scaler(SourceDeps::default(), Duration::from_secs(1)).await;
        let mut c = client(grpc).await;
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("source", "direct"), ("gateway", "gw")],
                "targetAllocationsPerPod",
            ),
            (
                &[("source", "direct"), ("targetAllocationsPerPod", "ten")],
                "targetAllocationsPerPod",
            ),
            (
                &[("source", "snmp"), ("targetAllocationsPerPod", "1")],
                "source",
            ),
            (
                &[
                    ("serverAddress", "http://p:9090"),
                    ("targetAllocationsPerPod", "1"),
                ],
                "gateway",
            ),
            (
                &[
                    ("gateway", "gw"),
                    ("targetAllocationsPerPod", "1"),
                    ("scaleInStep", "x"),
                ],
                "scaleInStep",
            ),
            (
                &[
                    ("gateway", "gw"),
                    ("targetAllocationsPerPod", "1"),
                    ("drainSteering", "maybe"),
                ],
                "drainSteering",
            ),
        ];
        for (md, key) in cases {
            let r = so_ref("bad", md);
            for status in [
                c.get_metric_spec(r.clone()).await.unwrap_err(),
                c.get_metrics(metrics_req(&r)).await.unwrap_err(),
                c.is_active(r.clone()).await.unwrap_err(),
            ] {
                assert_eq!(status.code(), Code::InvalidArgument, "{md:?}");
                assert!(
                    status.message().contains(key),
                    "{md:?}: {}",
                    status.message()
                );
            }
        }
        // Direct source without Kubernetes and without static endpoints: a backend problem.
        let r = so_ref(
            "nokube",
            &[
                ("source", "direct"),
                ("gateway", "gw"),
                ("targetAllocationsPerPod", "1"),
            ],
        );
        assert_eq!(
            c.get_metric_spec(r).await.unwrap_err().code(),
            Code::Unavailable
        );
        // A request without scaledObjectRef.
        let err = c
            .get_metrics(proto::keda::GetMetricsRequest {
                scaled_object_ref: None,
                metric_name: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("scaledObjectRef"));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn grpc_health_reports_serving() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (_app, grpc, _) = start_scaler(SourceDeps::default(), Duration::from_secs(1)).await;
        let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        let resp = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: "externalscaler.ExternalScaler".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            resp.status(),
            tonic_health::pb::health_check_response::ServingStatus::Serving
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn endpoints_file_reread_and_steering_without_kubernetes() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (_a, a_addr) = fake_pod(3, "READY").await;
        let (_b, b_addr) = fake_pod(14, "READY").await;
        let (_c, c_addr) = fake_pod(2, "READY").await;
        let file = std::env::temp_dir().join(format!("h-scaler-endpoints-{}", std::process::id()));
        std::fs::write(
            &file,
            format!("# replicas\n{a_addr}\n{b_addr}  # busy\n{c_addr}\n"),
        )
        .unwrap();
        let deps = SourceDeps {
            static_endpoints_file: Some(file.clone()),
            ..Default::default()
        };
        let interval = Duration::from_millis(200);
        let (_app, grpc, http) = start_scaler(deps, interval).await;
        let mut c = client(grpc).await;
        let r = so_ref(
            "demo",
            &[
                ("source", "direct"),
                ("targetAllocationsPerPod", "10"),
                ("drainSteering", "true"),
            ],
        );

        // 19 allocations on 3 endpoints: scale in to 2; the costs are published on /steering.
        assert_eq!(desired(&mut c, &r).await.unwrap(), 2);
        let book: serde_json::Value = http_get(format!("http://{http}/steering"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rec = &book["stunner/demo"];
        assert_eq!(rec["desired"], 2);
        assert!(rec["decidedAt"].as_u64().unwrap() > 1_600_000_000);
        assert_eq!(rec["costs"][a_addr.to_string()], 3);
        assert_eq!(rec["costs"][b_addr.to_string()], 14);
        assert_eq!(rec["costs"][c_addr.to_string()], 2);

        // The driver removes the cheapest endpoint; the file is re-read on the next refresh.
        std::fs::write(&file, format!("{a_addr}\n{b_addr}\n")).unwrap();
        tokio::time::sleep(interval).await;
        assert_eq!(desired(&mut c, &r).await.unwrap(), 2);
        // A listed endpoint that does not answer is left out (2 pods for the load, plus its
        // slot); when none answers the reading is an error, never 0.
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        std::fs::write(&file, format!("{a_addr}\n{b_addr}\n{dead}\n")).unwrap();
        tokio::time::sleep(interval).await;
        assert_eq!(desired(&mut c, &r).await.unwrap(), 3);
        std::fs::write(&file, format!("{dead}\n")).unwrap();
        tokio::time::sleep(interval).await;
        assert_eq!(
            desired(&mut c, &r).await.unwrap_err().code(),
            Code::Unavailable
        );
        std::fs::remove_file(file).unwrap();
    })
    .await
    .expect("test timed out");
}

/// A ScaledObject KEDA stops asking about (deleted) is forgotten with its series; one still in
/// use is kept, and a forgotten one asked about again comes back.
#[tokio::test]
async fn idle_scaledobjects_are_forgotten_with_their_series() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (_a, a_addr) = fake_pod(15, "READY").await;
        let (app, grpc, http) = start_scaler(deps(&[a_addr]), Duration::from_millis(50)).await;
        let mut c = client(grpc).await;
        let (gone, kept) = (so_ref("gone", DIRECT), so_ref("kept", DIRECT));
        assert_eq!(desired(&mut c, &gone).await.unwrap(), 2);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(desired(&mut c, &kept).await.unwrap(), 2);

        let forgotten = app.scalers.forget_idle(Duration::from_millis(200));
        assert_eq!(forgotten, vec!["stunner/gone".to_owned()]);
        assert_eq!(app.scalers.len(), 1);
        let body = metrics_text(http).await;
        assert!(!body.contains(r#"scaledobject="stunner/gone""#), "{body}");
        assert!(body.contains(r#"scaledobject="stunner/kept""#), "{body}");

        assert_eq!(desired(&mut c, &gone).await.unwrap(), 2, "parsed anew");
        assert_eq!(app.scalers.len(), 2);
    })
    .await
    .expect("test timed out");
}
