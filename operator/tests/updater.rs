//! Updater, leader election and preflight against a mocked API server (`tower_test::mock::pair`):
//! a verifier asserts method, path and body of each request and answers it. Every test is bounded.

use std::time::Duration;

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use operator::controller::{
    FIELD_MANAGER, LeaderElector, PreflightError, Updater, keda_served, preflight,
};
use operator::render::{OwnedKind, RenderOptions, Rendered, RouteApi, RouteId, render};
use operator::store::{ObjectKey, Snapshot};
use serde_json::{Value, json};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;
const LIMIT: Duration = Duration::from_secs(10);
const CTL: &str = "stunner.l7mp.io/gateway-operator";

fn mock() -> (Client, Handle) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(svc, "default"), handle)
}

/// Asserts the next request and answers it; returns the request body.
async fn expect(h: &mut Handle, method: &str, path: &str, status: u16, answer: Value) -> Value {
    let (req, send) = h.next_request().await.expect("a request");
    assert_eq!(req.method().as_str(), method, "{}", req.uri());
    assert_eq!(req.uri().path(), path);
    let query = req.uri().query().unwrap_or_default().to_string();
    let bytes = req.into_body().collect_bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    let mut answer = answer;
    if method == "PATCH" {
        assert!(
            query.contains(&format!("fieldManager={FIELD_MANAGER}"))
                && query.contains("force=true"),
            "{query}"
        );
    }
    if answer.is_null() {
        answer = body.clone();
    }
    send.send_response(reply(status, &answer));
    body
}

/// A JSON response.
fn reply(status: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

fn api_error(code: u16, reason: &str) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": reason, "reason": reason, "code": code })
}

fn snapshot() -> Snapshot {
    let mut s = Snapshot::default();
    for f in ["common.yaml", "udp-gateway.yaml"] {
        let text =
            std::fs::read_to_string(format!("{}/tests/fixtures/{f}", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        s.apply_manifests(&text).unwrap();
    }
    s
}

#[tokio::test]
async fn apply_deployment_and_service_with_ssa_no_replicas() {
    let (client, mut h) = mock();
    let r = render(&snapshot(), &RenderOptions::default());
    let up = Updater::new(client, FIELD_MANAGER, CTL);
    let d = r.deployments[0].clone();
    let s = r.services[0].clone();
    let task = tokio::spawn(async move {
        up.apply(&d).await.unwrap();
        up.apply(&s).await.unwrap();
    });
    tokio::time::timeout(LIMIT, async {
        let body = expect(
            &mut h,
            "PATCH",
            "/apis/apps/v1/namespaces/stunner/deployments/udp-gateway",
            200,
            Value::Null,
        )
        .await;
        assert_eq!(
            (body["apiVersion"].as_str(), body["kind"].as_str()),
            (Some("apps/v1"), Some("Deployment"))
        );
        assert!(
            body["spec"].get("replicas").is_none(),
            "replicas must be left to the autoscaler"
        );
        assert_eq!(body["metadata"]["ownerReferences"][0]["kind"], "Gateway");
        let body = expect(
            &mut h,
            "PATCH",
            "/api/v1/namespaces/stunner/services/udp-gateway",
            200,
            Value::Null,
        )
        .await;
        assert_eq!(body["spec"]["type"], "LoadBalancer");
        assert_eq!(body["spec"]["ports"][0]["protocol"], "UDP");
        task.await.unwrap();
    })
    .await
    .expect("timeout");
}

#[tokio::test]
async fn gateway_status_retries_on_conflict() {
    let (client, mut h) = mock();
    let snap = snapshot();
    let r = render(&snap, &RenderOptions::default());
    let status = r.gateway_statuses[&ObjectKey::new("stunner", "udp-gateway")].clone();
    let gw =
        serde_json::to_value(&*snap.gateways[&ObjectKey::new("stunner", "udp-gateway")]).unwrap();
    let up = Updater::new(client, FIELD_MANAGER, CTL);
    let want = status.clone();
    let task = tokio::spawn(async move {
        up.gateway_status(&ObjectKey::new("stunner", "udp-gateway"), &want)
            .await
    });
    tokio::time::timeout(LIMIT, async {
        let path =
            "/apis/gateway.networking.k8s.io/v1/namespaces/stunner/gateways/udp-gateway/status";
        let mut stale = gw.clone();
        stale["metadata"]["resourceVersion"] = json!("1");
        expect(&mut h, "GET", path, 200, stale).await;
        let put = expect(&mut h, "PUT", path, 409, api_error(409, "Conflict")).await;
        assert_eq!(put["metadata"]["resourceVersion"], "1");
        let mut fresh = gw.clone();
        fresh["metadata"]["resourceVersion"] = json!("2");
        expect(&mut h, "GET", path, 200, fresh).await;
        let put = expect(&mut h, "PUT", path, 200, Value::Null).await;
        assert_eq!(put["metadata"]["resourceVersion"], "2");
        assert_eq!(put["status"]["conditions"][0]["type"], "Accepted");
        assert_eq!(put["status"]["listeners"][0]["name"], "udp-listener");
        task.await.unwrap().unwrap();
    })
    .await
    .expect("timeout");
}

#[tokio::test]
async fn route_status_merges_fresh_foreign_parents() {
    let (client, mut h) = mock();
    let r = render(&snapshot(), &RenderOptions::default());
    let id = RouteId {
        api: RouteApi::StunnerV1,
        key: ObjectKey::new("stunner", "iperf-server"),
    };
    let ours = r.route_statuses[&id].clone();
    let up = Updater::new(client, FIELD_MANAGER, CTL);
    let task = tokio::spawn(async move { up.route_status(&id, &ours).await });
    tokio::time::timeout(LIMIT, async {
        let path = "/apis/stunner.l7mp.io/v1/namespaces/stunner/udproutes/iperf-server/status";
        let fresh = json!({
            "apiVersion": "stunner.l7mp.io/v1", "kind": "UDPRoute",
            "metadata": { "name": "iperf-server", "namespace": "stunner", "resourceVersion": "5" },
            "spec": { "parentRefs": [{ "name": "udp-gateway" }], "rules": [{ "backendRefs": [{ "name": "iperf-server" }] }] },
            "status": { "parents": [
                { "controllerName": "example.com/other", "parentRef": { "name": "theirs" }, "conditions": [] },
                { "controllerName": CTL, "parentRef": { "name": "stale" }, "conditions": [] }
            ] }
        });
        expect(&mut h, "GET", path, 200, fresh).await;
        let put = expect(&mut h, "PUT", path, 200, Value::Null).await;
        let parents: Vec<(&str, &str)> = put["status"]["parents"].as_array().unwrap().iter().map(|p| (p["controllerName"].as_str().unwrap(), p["parentRef"]["name"].as_str().unwrap())).collect();
        assert_eq!(parents, [("example.com/other", "theirs"), (CTL, "udp-gateway")]);
        task.await.unwrap().unwrap();
    })
    .await
    .expect("timeout");
}

#[tokio::test]
async fn unchanged_status_is_not_written_and_orphans_deleted() {
    let (client, mut h) = mock();
    let mut snap = snapshot();
    let first = render(&snap, &RenderOptions::default());
    // feed statuses back: the next update writes no status, only applies and deletes
    let key = ObjectKey::new("stunner", "udp-gateway");
    let mut gw = (*snap.gateways[&key]).clone();
    gw.status = Some(first.gateway_statuses[&key].clone());
    snap.gateways.insert(key.clone(), gw.into());
    let mut gc = (*snap.gateway_classes[&ObjectKey::new("", "stunner-gatewayclass")]).clone();
    gc.status = Some(first.gateway_class_statuses["stunner-gatewayclass"].clone());
    snap.gateway_classes
        .insert(ObjectKey::new("", "stunner-gatewayclass"), gc.into());
    let id = RouteId {
        api: RouteApi::StunnerV1,
        key: ObjectKey::new("stunner", "iperf-server"),
    };
    let mut rt = (*snap.udp_routes[&id.key]).clone();
    rt.status = Some(first.route_statuses[&id].clone());
    snap.udp_routes.insert(id.key.clone(), rt.into());
    snap.apply_manifests("apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: gone, namespace: stunner, labels: { stunner.l7mp.io/owned-by: stunner } }\nspec: { selector: {}, template: {} }\n").unwrap();
    let r = render(&snap, &RenderOptions::default());
    assert_eq!(
        r.orphans,
        vec![(OwnedKind::Deployment, ObjectKey::new("stunner", "gone"))]
    );
    let up = Updater::new(client, FIELD_MANAGER, CTL);
    let task = tokio::spawn(async move { up.update(&snap, &r).await });
    tokio::time::timeout(LIMIT, async {
        expect(
            &mut h,
            "PATCH",
            "/apis/apps/v1/namespaces/stunner/deployments/udp-gateway",
            200,
            Value::Null,
        )
        .await;
        expect(
            &mut h,
            "PATCH",
            "/api/v1/namespaces/stunner/services/udp-gateway",
            200,
            Value::Null,
        )
        .await;
        expect(
            &mut h,
            "DELETE",
            "/apis/apps/v1/namespaces/stunner/deployments/gone",
            404,
            api_error(404, "NotFound"),
        )
        .await;
        let st = task.await.unwrap();
        assert_eq!(
            (st.applied, st.statuses, st.deleted, st.failed),
            (2, 0, 1, 0)
        );
    })
    .await
    .expect("timeout");
}

fn lease(holder: &str, renewed: &str, rv: &str) -> Value {
    json!({ "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": { "name": "leader", "namespace": "stunner-system", "resourceVersion": rv },
        "spec": { "holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": renewed, "leaseTransitions": 2 } })
}

#[tokio::test]
async fn leader_election_create_renew_respect_and_take_over() {
    let (client, mut h) = mock();
    let el = LeaderElector::new(
        client,
        "stunner-system",
        "leader",
        "me",
        Duration::from_secs(15),
    );
    let now: k8s_openapi::jiff::Timestamp = "2025-01-01T00:01:00Z".parse().unwrap();
    let path = "/apis/coordination.k8s.io/v1/namespaces/stunner-system/leases/leader";
    let e = el.clone();
    let task = tokio::spawn(async move {
        let mut out = Vec::new();
        for _ in 0..4 {
            out.push(e.try_acquire_or_renew(now).await.unwrap());
        }
        out
    });
    tokio::time::timeout(LIMIT, async {
        // 1: absent → create
        expect(&mut h, "GET", path, 404, api_error(404, "NotFound")).await;
        let created = expect(
            &mut h,
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/stunner-system/leases",
            201,
            Value::Null,
        )
        .await;
        assert_eq!(created["spec"]["holderIdentity"], "me");
        // 2: held by someone else, fresh → respected, no write
        expect(
            &mut h,
            "GET",
            path,
            200,
            lease("other", "2025-01-01T00:00:55.000000Z", "7"),
        )
        .await;
        // 3: held by someone else, expired → take over with resourceVersion, transitions + 1
        expect(
            &mut h,
            "GET",
            path,
            200,
            lease("other", "2025-01-01T00:00:00.000000Z", "8"),
        )
        .await;
        let taken = expect(&mut h, "PUT", path, 200, Value::Null).await;
        assert_eq!(
            (
                taken["spec"]["holderIdentity"].as_str(),
                taken["metadata"]["resourceVersion"].as_str()
            ),
            (Some("me"), Some("8"))
        );
        assert_eq!(taken["spec"]["leaseTransitions"], 3);
        // 4: racing take-over loses on conflict
        expect(
            &mut h,
            "GET",
            path,
            200,
            lease("other", "2025-01-01T00:00:00.000000Z", "9"),
        )
        .await;
        expect(&mut h, "PUT", path, 409, api_error(409, "Conflict")).await;
        assert_eq!(task.await.unwrap(), [true, false, true, false]);
    })
    .await
    .expect("timeout");
}

#[tokio::test]
async fn preflight_list_error_is_reported() {
    let (client, mut h) = mock();
    let task = tokio::spawn(async move { preflight(&client).await });
    tokio::time::timeout(LIMIT, async {
        expect(&mut h, "GET", "/version", 200, json!({ "major": "1", "minor": "31", "gitVersion": "v1.31.0", "gitCommit": "", "gitTreeState": "", "buildDate": "", "goVersion": "", "compiler": "", "platform": "" })).await;
        let list = json!({ "apiVersion": "v1", "kind": "List", "metadata": {}, "items": [] });
        expect(&mut h, "GET", "/apis/gateway.networking.k8s.io/v1/gateways", 200, list.clone()).await;
        expect(&mut h, "GET", "/apis/gateway.networking.k8s.io/v1/gatewayclasses", 200, list).await;
        expect(&mut h, "GET", "/apis/stunner.l7mp.io/v1/gatewayconfigs", 404, api_error(404, "NotFound")).await;
        let (req, send) = h.next_request().await.unwrap();
        assert_eq!(req.uri().path(), "/apis/stunner.l7mp.io/v1/dataplanes");
        send.send_error(std::io::Error::other("stop here"));
        let err = task.await.unwrap().unwrap_err();
        assert!(matches!(err, PreflightError::List { .. }), "{err}");
    })
    .await
    .expect("timeout");
}

#[tokio::test]
async fn preflight_missing_crd_message() {
    let (client, mut h) = mock();
    let task = tokio::spawn(async move { preflight(&client).await });
    tokio::time::timeout(LIMIT, async {
        expect(&mut h, "GET", "/version", 200, json!({ "major": "1", "minor": "31", "gitVersion": "v1.31.0", "gitCommit": "", "gitTreeState": "", "buildDate": "", "goVersion": "", "compiler": "", "platform": "" })).await;
        for p in ["/apis/gateway.networking.k8s.io/v1/gateways", "/apis/gateway.networking.k8s.io/v1/gatewayclasses", "/apis/stunner.l7mp.io/v1/gatewayconfigs", "/apis/stunner.l7mp.io/v1/dataplanes", "/apis/stunner.l7mp.io/v1/staticservices", "/apis/stunner.l7mp.io/v1/udproutes"] {
            let code = if p.ends_with("udproutes") { 404 } else { 200 };
            expect(&mut h, "GET", p, code, if code == 200 { json!({ "apiVersion": "v1", "kind": "List", "metadata": {}, "items": [] }) } else { api_error(404, "NotFound") }).await;
        }
        let err = task.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("CRD udproutes.stunner.l7mp.io is not installed"), "{err}");
    })
    .await
    .expect("timeout");
}

#[tokio::test]
async fn preflight_unreachable_api_server() {
    let (client, mut h) = mock();
    let task = tokio::spawn(async move { preflight(&client).await });
    tokio::time::timeout(LIMIT, async {
        let (_, send) = h.next_request().await.unwrap();
        send.send_error(std::io::Error::other("connection refused"));
        let err = task.await.unwrap().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot reach the Kubernetes API server"),
            "{err}"
        );
    })
    .await
    .expect("timeout");
}

const AUTOSCALED_DATAPLANE: &str = "apiVersion: stunner.l7mp.io/v1\nkind: Dataplane\nmetadata: { name: default }\nspec: { image: docker.io/l7mp/stunnerd:latest, autoscaling: { maxReplicas: 6, drainTimeoutSeconds: 120, source: prometheus, serverAddress: 'http://prom:9090', scalerAddress: 'scaler:9090' } }\n";

fn keda_opts() -> RenderOptions {
    RenderOptions {
        keda: true,
        ..RenderOptions::default()
    }
}

#[tokio::test]
async fn scaled_object_is_server_side_applied_as_keda_v1alpha1() {
    let (client, mut h) = mock();
    let mut snap = snapshot();
    snap.apply_manifests(AUTOSCALED_DATAPLANE).unwrap();
    let r = render(&snap, &keda_opts());
    let so = r.scaled_objects[0].clone();
    let up = Updater::new(client, FIELD_MANAGER, CTL);
    let task = tokio::spawn(async move { up.apply_scaled_object(&so).await });
    tokio::time::timeout(LIMIT, async {
        let (req, send) = h.next_request().await.expect("a request");
        assert_eq!(req.method().as_str(), "PATCH");
        assert_eq!(
            req.uri().path(),
            "/apis/keda.sh/v1alpha1/namespaces/stunner/scaledobjects/udp-gateway"
        );
        let query = req.uri().query().unwrap_or_default();
        assert!(
            query.contains(&format!("fieldManager={FIELD_MANAGER}"))
                && query.contains("force=true"),
            "{query}"
        );
        assert_eq!(
            req.headers()["content-type"],
            "application/apply-patch+yaml"
        );
        let bytes = req.into_body().collect_bytes().await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            (body["apiVersion"].as_str(), body["kind"].as_str()),
            (Some("keda.sh/v1alpha1"), Some("ScaledObject"))
        );
        assert_eq!(body["metadata"]["name"], "udp-gateway");
        assert_eq!(body["metadata"]["ownerReferences"][0]["kind"], "Gateway");
        assert_eq!(body["spec"]["scaleTargetRef"]["name"], "udp-gateway");
        assert_eq!(
            body["spec"]["fallback"],
            json!({ "failureThreshold": 3, "replicas": 6, "behavior": "currentReplicasIfLower" })
        );
        let md = &body["spec"]["triggers"][0]["metadata"];
        assert_eq!(
            (
                md["gateway"].as_str(),
                md["source"].as_str(),
                md["serverAddress"].as_str()
            ),
            (
                Some("stunner/udp-gateway"),
                Some("prometheus"),
                Some("http://prom:9090")
            )
        );
        assert_eq!(md["scalerAddress"], "scaler:9090");
        send.send_response(
            Response::builder()
                .status(200)
                .body(Body::from(bytes))
                .unwrap(),
        );
        task.await.unwrap().unwrap();
    })
    .await
    .expect("timeout");
}

#[tokio::test]
async fn update_applies_the_scaled_object_and_deletes_the_replaced_hpa() {
    let (client, mut h) = mock();
    let mut snap = snapshot();
    snap.apply_manifests(AUTOSCALED_DATAPLANE).unwrap();
    snap.apply_manifests("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: { name: udp-gateway, namespace: stunner, labels: { stunner.l7mp.io/owned-by: stunner }, ownerReferences: [{ apiVersion: gateway.networking.k8s.io/v1, kind: Gateway, name: udp-gateway, uid: u }] }\nspec: { scaleTargetRef: { kind: Deployment, name: udp-gateway }, maxReplicas: 6 }\n").unwrap();
    let r = render(&snap, &keda_opts());
    assert!(r.hpas.is_empty());
    let up = Updater::new(client, FIELD_MANAGER, CTL);
    let task = tokio::spawn(async move { up.update(&snap, &r).await });
    tokio::time::timeout(LIMIT, async {
        let d = expect(
            &mut h,
            "PATCH",
            "/apis/apps/v1/namespaces/stunner/deployments/udp-gateway",
            200,
            Value::Null,
        )
        .await;
        assert!(d["spec"].get("replicas").is_none());
        assert_eq!(
            d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
            150
        );
        expect(
            &mut h,
            "PATCH",
            "/api/v1/namespaces/stunner/services/udp-gateway",
            200,
            Value::Null,
        )
        .await;
        let so = expect(
            &mut h,
            "PATCH",
            "/apis/keda.sh/v1alpha1/namespaces/stunner/scaledobjects/udp-gateway",
            200,
            Value::Null,
        )
        .await;
        assert_eq!(so["kind"], "ScaledObject");
        // statuses of the fresh snapshot differ: answer each GET with 404 (object gone) to skip them
        loop {
            let (req, send) = h.next_request().await.expect("a request");
            if req.method() == "DELETE" {
                assert_eq!(
                    req.uri().path(),
                    "/apis/autoscaling/v2/namespaces/stunner/horizontalpodautoscalers/udp-gateway"
                );
                send.send_response(reply(200, &api_error(200, "Success")));
                break;
            }
            assert_eq!(req.method(), "GET", "{}", req.uri());
            send.send_response(reply(404, &api_error(404, "NotFound")));
        }
        let st = task.await.unwrap();
        assert_eq!((st.applied, st.deleted, st.failed), (3, 1, 0));
    })
    .await
    .expect("timeout");
}

#[tokio::test]
async fn keda_discovery_reads_the_api_group_list() {
    let groups = |with_keda: bool| {
        let mut g = vec![
            json!({ "name": "apps", "versions": [{ "groupVersion": "apps/v1", "version": "v1" }], "preferredVersion": { "groupVersion": "apps/v1", "version": "v1" } }),
        ];
        if with_keda {
            g.push(json!({ "name": "keda.sh", "versions": [{ "groupVersion": "keda.sh/v1alpha1", "version": "v1alpha1" }], "preferredVersion": { "groupVersion": "keda.sh/v1alpha1", "version": "v1alpha1" } }));
        }
        json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": g })
    };
    for with_keda in [false, true] {
        let (client, mut h) = mock();
        let task = tokio::spawn(async move { keda_served(&client).await });
        tokio::time::timeout(LIMIT, async {
            expect(&mut h, "GET", "/apis", 200, groups(with_keda)).await;
            assert_eq!(task.await.unwrap().unwrap(), with_keda);
        })
        .await
        .expect("timeout");
    }
}

const DAEMON_SET: &str = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: { name: udp-gateway, namespace: stunner, labels: { stunner.l7mp.io/owned-by: stunner }, ownerReferences: [{ apiVersion: gateway.networking.k8s.io/v1, kind: Gateway, name: udp-gateway, uid: u }] }\nspec: { selector: { matchLabels: { app: stunner } }, template: { metadata: { labels: { app: stunner } }, spec: { containers: [{ name: stunnerd, image: l7mp/stunnerd }] } } }\n";

#[tokio::test]
async fn daemon_set_is_server_side_applied_and_orphans_deleted() {
    let (client, mut h) = mock();
    let r = Rendered {
        daemon_sets: vec![serde_norway::from_str(DAEMON_SET).unwrap()],
        // the Gateway switched from a Deployment to a DaemonSet; another Gateway went away
        orphans: vec![
            (
                OwnedKind::Deployment,
                ObjectKey::new("stunner", "udp-gateway"),
            ),
            (OwnedKind::DaemonSet, ObjectKey::new("stunner", "gone")),
            (
                OwnedKind::DaemonSet,
                ObjectKey::new("stunner", "already-gone"),
            ),
        ],
        ..Rendered::default()
    };
    let up = Updater::new(client, FIELD_MANAGER, CTL);
    let task = tokio::spawn(async move { up.update(&Snapshot::default(), &r).await });
    tokio::time::timeout(LIMIT, async {
        let body = expect(
            &mut h,
            "PATCH",
            "/apis/apps/v1/namespaces/stunner/daemonsets/udp-gateway",
            200,
            Value::Null,
        )
        .await;
        assert_eq!(
            (body["apiVersion"].as_str(), body["kind"].as_str()),
            (Some("apps/v1"), Some("DaemonSet"))
        );
        assert_eq!(body["metadata"]["ownerReferences"][0]["kind"], "Gateway");
        assert_eq!(
            body["spec"]["template"]["spec"]["containers"][0]["name"],
            "stunnerd"
        );
        let deleted = [
            ("deployments/udp-gateway", 200),
            ("daemonsets/gone", 200),
            ("daemonsets/already-gone", 404),
        ];
        for (path, code) in deleted {
            let answer = api_error(code, if code == 200 { "Success" } else { "NotFound" });
            let path = format!("/apis/apps/v1/namespaces/stunner/{path}");
            expect(&mut h, "DELETE", &path, code, answer).await;
        }
        let st = task.await.unwrap();
        assert_eq!(
            (st.applied, st.statuses, st.deleted, st.failed),
            (1, 0, 3, 0)
        );
    })
    .await
    .expect("timeout");
}

#[tokio::test]
async fn failed_daemon_set_apply_is_counted_and_the_rest_goes_on() {
    let (client, mut h) = mock();
    let r = Rendered {
        daemon_sets: vec![serde_norway::from_str(DAEMON_SET).unwrap()],
        orphans: vec![(OwnedKind::DaemonSet, ObjectKey::new("stunner", "gone"))],
        ..Rendered::default()
    };
    let up = Updater::new(client, FIELD_MANAGER, CTL);
    let task = tokio::spawn(async move { up.update(&Snapshot::default(), &r).await });
    tokio::time::timeout(LIMIT, async {
        let path = "/apis/apps/v1/namespaces/stunner/daemonsets/udp-gateway";
        expect(&mut h, "PATCH", path, 403, api_error(403, "Forbidden")).await;
        let gone = "/apis/apps/v1/namespaces/stunner/daemonsets/gone";
        expect(&mut h, "DELETE", gone, 200, api_error(200, "Success")).await;
        let st = task.await.unwrap();
        assert_eq!((st.applied, st.deleted, st.failed), (0, 1, 1));
    })
    .await
    .expect("timeout");
}
