//! Table tests of the trigger metadata parser.

use super::*;

fn md(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn prom(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut m = md(&[
        ("serverAddress", "http://mimir:8080/prometheus/"),
        ("gateway", "stunner/udp-gateway"),
        ("targetAllocationsPerPod", "100"),
    ]);
    m.extend(md(extra));
    m
}

#[test]
fn full_prometheus_metadata_parses() {
    let m = TriggerMetadata::parse(
        "default",
        &prom(&[
            ("customHeaders", "X-Scope-OrgID=tenant-1, X-Extra=a"),
            ("queryParameters", "dedup=true"),
            ("timeout", "1500"),
            ("unsafeSsl", "TRUE"),
            ("scaleInStep", "2"),
            ("activationThreshold", "0.5"),
            ("drainSteering", "true"),
            ("scalerAddress", "ignored:9090"),
        ]),
    )
    .unwrap();
    assert_eq!(m.source, SourceKind::Prometheus);
    assert_eq!(
        m.server_address.unwrap().as_str(),
        "http://mimir:8080/prometheus"
    );
    assert_eq!(m.custom_headers.len(), 2);
    assert_eq!(m.custom_headers[0].0.as_str(), "x-scope-orgid");
    assert_eq!(m.custom_headers[0].1, "tenant-1");
    assert_eq!(
        m.query_parameters,
        vec![("dedup".to_owned(), "true".to_owned())]
    );
    assert_eq!(m.timeout, Duration::from_millis(1500));
    assert!(m.unsafe_ssl && m.drain_steering && !m.ignore_null_values);
    assert_eq!(m.scale_in_step, 2);
    assert_eq!(m.activation_threshold, 0.5);
    assert_eq!(
        m.hpa_tolerance, DEFAULT_HPA_TOLERANCE,
        "the Kubernetes default"
    );
    let zero = TriggerMetadata::parse("default", &prom(&[("hpaTolerance", "0")])).unwrap();
    assert_eq!(zero.hpa_tolerance, 0.0);
    assert_eq!(
        m.gateway,
        Some(GatewayRef {
            namespace: "stunner".into(),
            name: "udp-gateway".into()
        })
    );
}

#[test]
fn defaults_and_bare_gateway_name() {
    let m = TriggerMetadata::parse(
        "media",
        &md(&[
            ("source", "direct"),
            ("gateway", "gw"),
            ("targetAllocationsPerPod", "50"),
        ]),
    )
    .unwrap();
    assert_eq!(m.gateway.unwrap().namespace, "media");
    assert_eq!(
        (m.min_replicas, m.max_replicas, m.scale_in_step),
        (1, 100, 1)
    );
    assert_eq!(m.status_port, DEFAULT_STATUS_PORT);
    assert_eq!(m.timeout, DEFAULT_TIMEOUT);
    assert_eq!(
        TriggerMetadata::parse("x", &prom(&[("serverAddress", "https://p:9090/")]))
            .unwrap()
            .server_address
            .unwrap()
            .as_str(),
        "https://p:9090/"
    );
}

#[test]
fn bad_metadata_names_the_key() {
    let cases: &[(HashMap<String, String>, &str)] = &[
        (
            md(&[("serverAddress", "http://p"), ("gateway", "g")]),
            "targetAllocationsPerPod",
        ),
        (
            prom(&[("targetAllocationsPerPod", "0")]),
            "targetAllocationsPerPod",
        ),
        (
            prom(&[("targetAllocationsPerPod", "many")]),
            "targetAllocationsPerPod",
        ),
        (prom(&[("source", "graphite")]), "source"),
        (prom(&[("serverAddress", "not a url")]), "serverAddress"),
        (prom(&[("serverAddress", "ftp://host/")]), "serverAddress"),
        (prom(&[("customHeaders", "novalue")]), "customHeaders"),
        (prom(&[("customHeaders", "bad header=x")]), "customHeaders"),
        (prom(&[("queryParameters", "=x")]), "queryParameters"),
        (prom(&[("timeout", "soon")]), "timeout"),
        (prom(&[("timeout", "0")]), "timeout"),
        (prom(&[("unsafeSsl", "yes")]), "unsafeSsl"),
        (prom(&[("ignoreNullValues", "1")]), "ignoreNullValues"),
        (prom(&[("scaleInStep", "-1")]), "scaleInStep"),
        (prom(&[("scaleInStep", "0")]), "scaleInStep"),
        (prom(&[("statusPort", "70000")]), "statusPort"),
        (prom(&[("hpaTolerance", "1")]), "hpaTolerance"),
        (prom(&[("hpaTolerance", "-0.1")]), "hpaTolerance"),
        (prom(&[("hpaTolerance", "10%")]), "hpaTolerance"),
        (
            prom(&[("activationThreshold", "NaN")]),
            "activationThreshold",
        ),
        (prom(&[("gateway", "ns/Bad_Name")]), "gateway"),
        (prom(&[("gateway", "a\"} or vector(1e9) #")]), "gateway"),
        (
            prom(&[("minReplicas", "5"), ("maxReplicas", "2")]),
            "maxReplicas",
        ),
        (
            md(&[("gateway", "g"), ("targetAllocationsPerPod", "1")]),
            "serverAddress",
        ),
        (
            md(&[
                ("serverAddress", "http://p"),
                ("targetAllocationsPerPod", "1"),
            ]),
            "gateway",
        ),
    ];
    for (map, key) in cases {
        match TriggerMetadata::parse("ns", map) {
            Err(Error::Metadata { key: k, reason }) => {
                assert_eq!(k, *key, "{map:?}: {reason}");
                assert!(!reason.is_empty());
            }
            other => panic!("{map:?}: expected error on {key}, got {other:?}"),
        }
    }
}

#[test]
fn custom_query_does_not_need_a_gateway() {
    let m = TriggerMetadata::parse(
        "ns",
        &md(&[
            ("serverAddress", "http://p:9090"),
            ("query", "sum(stunner_allocations_active)"),
            ("targetAllocationsPerPod", "10"),
        ]),
    )
    .unwrap();
    assert_eq!(m.query.as_deref(), Some("sum(stunner_allocations_active)"));
}
