//! Test vectors of upstream STUNner's own suites, transcribed: `internal/util/endpoint_test.go`
//! (TestEndpointParse, TestRouteMatch), `config_test.go` (TestCredentialParser) and, at the
//! config level, `stunner_test.go` (TestStunnerPortRangeWithVNet: which cluster endpoints admit
//! the echo peer; TestStunnerMetrics: where `admin.metrics_endpoint` is served). The same
//! `stunner_test.go` cases run against a live stunnerd in `stunnerd/tests/upstream_compat.rs`.
//! Where we deliberately differ, the assertion says so.

use std::net::{IpAddr, SocketAddr};

use proto::config::{
    ClusterType, DEFAULT_METRICS_PORT, Endpoint, EndpointHost, PortRange, StunnerConfig,
};

/// (name, input, canonical prefix, min port, max port) of upstream's `endpointTester`.
/// Upstream's "no port" range is 1-65535; ours is 0-65535 (port 0 is never a peer port, so the
/// two admit the same peers).
const PARSE_OK: &[(&str, &str, &str, u16, u16)] = &[
    ("ipv4 - full", "1.2.3.4/16:<1-2>", "1.2.0.0/16", 1, 2),
    ("ipv4 - no port", "1.2.3.4/16", "1.2.0.0/16", 0, 65535),
    ("ipv4 - no prefix len", "1.2.3.4:<1-2>", "1.2.3.4/32", 1, 2),
    (
        "ipv4 - no port, no prefix len",
        "1.2.3.4",
        "1.2.3.4/32",
        0,
        65535,
    ),
    (
        "ipv6 - full",
        "2001:db8:3333:4444:5555:6666:7777:8888/32:<1-2>",
        "2001:db8::/32",
        1,
        2,
    ),
    (
        "ipv6 - no port",
        "2001:db8:3333:4444:5555:6666:7777:8888/32",
        "2001:db8::/32",
        0,
        65535,
    ),
    (
        "ipv6 - no prefix len",
        "2001:db8:3333:4444:5555:6666:7777:8888:<1-2>",
        "2001:db8:3333:4444:5555:6666:7777:8888/128",
        1,
        2,
    ),
    (
        "ipv6 - no port, no prefix len",
        "2001:db8:3333:4444:5555:6666:7777:8888",
        "2001:db8:3333:4444:5555:6666:7777:8888/128",
        0,
        65535,
    ),
];

fn prefix_string(e: &Endpoint) -> String {
    match &e.host {
        EndpointHost::Prefix { addr, len } => format!("{addr}/{len}"),
        EndpointHost::Dns(n) => n.clone(),
    }
}

/// upstream stunner `internal/util/endpoint_test.go` `TestEndpointParse`.
#[test]
fn upstream_endpoint_parse() {
    for (name, input, prefix, min, max) in PARSE_OK {
        let e =
            Endpoint::parse(input, ClusterType::Static).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(prefix_string(&e), *prefix, "{name}");
        assert_eq!(
            e.ports,
            PortRange {
                min: *min,
                max: *max
            },
            "{name}"
        );
        // Upstream prints a bare IP without "/32"; we always print the prefix length. Either
        // form parses back to the same endpoint.
        let again = Endpoint::parse(&e.to_string(), ClusterType::Static).unwrap();
        assert_eq!(again, e, "{name}: display round trip");
    }
    for (name, input) in [
        ("ipv4 - no addr fails", ":<1-65535>"),
        ("random stuff fails", "dummy"),
    ] {
        assert!(
            Endpoint::parse(input, ClusterType::Static).is_err(),
            "{name}"
        );
    }
}

/// upstream stunner `internal/util/endpoint_test.go` `TestRouteMatch`: `route` is "the prefix
/// contains the IP", `match` additionally checks the port.
#[test]
fn upstream_route_match() {
    let cases = [
        (
            "ipv4 - full - both",
            "1.2.3.4/16:<1-2>",
            "1.2.3.5",
            1,
            true,
            true,
        ),
        (
            "ipv4 - full - route",
            "1.2.3.4/16:<1-2>",
            "1.2.4.6",
            3,
            false,
            true,
        ),
        (
            "ipv4 - full - neither",
            "1.2.3.4/16:<1-2>",
            "1.3.3.4",
            1,
            false,
            false,
        ),
    ];
    for (name, input, ip, port, matched, routed) in cases {
        let e = Endpoint::parse(input, ClusterType::Static).unwrap();
        let ip: IpAddr = ip.parse().unwrap();
        assert_eq!(e.contains_ip(ip), routed, "{name}: route");
        assert_eq!(e.matches(ip, port), matched, "{name}: match");
    }
}

/// upstream stunner `config_test.go` `TestCredentialParser`: credentials are exempt from
/// environment substitution, so a `$` anywhere in a username, password or secret survives.
#[test]
fn upstream_credential_parser() {
    let cases = [
        (
            "plain",
            r#"{"password":"pass","username":"user"}"#,
            "user",
            "pass",
            "",
        ),
        (
            "username_with_leading_$",
            r#"{"password":"pass","username":"$user"}"#,
            "$user",
            "pass",
            "",
        ),
        (
            "username_with_trailing_$",
            r#"{"password":"pass","username":"user$"}"#,
            "user$",
            "pass",
            "",
        ),
        (
            "username_with_$",
            r#"{"password":"pass","username":"us$er"}"#,
            "us$er",
            "pass",
            "",
        ),
        (
            "passwd_with_leading_$",
            r#"{"password":"$pass","username":"user"}"#,
            "user",
            "$pass",
            "",
        ),
        (
            "passwd_with_trailing_$",
            r#"{"password":"pass$","username":"user"}"#,
            "user",
            "pass$",
            "",
        ),
        (
            "passwd_with_$",
            r#"{"password":"pa$ss","username":"user"}"#,
            "user",
            "pa$ss",
            "",
        ),
        (
            "secret_with_leading_$",
            r#"{"secret":"$secret","username":"user"}"#,
            "user",
            "",
            "$secret",
        ),
        (
            "secret_with_trailing_$",
            r#"{"secret":"secret$","username":"user"}"#,
            "user",
            "",
            "secret$",
        ),
        (
            "secret_with_$",
            r#"{"secret":"sec$ret","username":"user"}"#,
            "user",
            "",
            "sec$ret",
        ),
    ];
    // Variables that a substituting parser would expand.
    let env = |k: &str| match k {
        "user" | "pass" | "secret" | "ss" | "er" | "ret" => Some("EXPANDED".to_owned()),
        _ => None,
    };
    for (name, creds, user, pass, secret) in cases {
        let text = format!(
            r#"{{"version":"v1","admin":{{"name":"ns1/tester"}},"auth":{{"type":"static","credentials":{creds}}}}}"#
        );
        let c =
            StunnerConfig::parse_with_env(&text, &env).unwrap_or_else(|e| panic!("{name}: {e}"));
        let get = |k: &str| c.auth.credential(k).unwrap_or_default().to_owned();
        assert_eq!(
            (get("username"), get("password"), get("secret")),
            (user.to_owned(), pass.to_owned(), secret.to_owned()),
            "{name}"
        );
    }
}

/// The echo peer of upstream's VNet tests (`echoServerAddr`).
const ECHO_PEER: (&str, u16) = ("1.2.3.5", 5678);

/// Whether a cluster of `kind` with `endpoints` admits the echo peer. STRICT_DNS names resolve
/// as upstream's mock resolver has it (`echo-server.l7mp.io` -> 1.2.3.5); a resolved address
/// keeps the name's port range, as stunnerd's driver builds it.
fn admits_echo_peer(kind: ClusterType, endpoints: &[&str]) -> bool {
    let ip: IpAddr = ECHO_PEER.0.parse().unwrap();
    endpoints.iter().any(|raw| {
        let e = Endpoint::parse(raw, kind).unwrap_or_else(|err| panic!("{raw}: {err}"));
        let e = match e.dns_name() {
            Some("echo-server.l7mp.io") => Endpoint::from_ip(ip, e.ports),
            Some(other) => panic!("the mock resolver does not know {other}"),
            None => e,
        };
        e.matches(ip, ECHO_PEER.1)
    })
}

/// A cluster routed from the listener: its type and endpoints.
type Cluster<'a> = (ClusterType, &'a [&'a str]);

/// upstream stunner `stunner_test.go` `TestStunnerPortRangeWithVNet` (`testPortRangeConfigsWithVNet`):
/// (test name, clusters routed from the listener as (type, endpoints), echo test passes).
#[test]
fn upstream_port_range_admission() {
    use ClusterType::{Static, StrictDns};
    let cases: &[(&str, &[Cluster<'_>], bool)] = &[
        (
            "static endpoint with peer address in the admitted port range ok",
            &[(Static, &["1.2.3.5:<5670-5680>"])],
            true,
        ),
        (
            "static endpoint with peer address matching singleton admitted port ok",
            &[
                (Static, &["1.2.3.6:<5678-5678>"]),
                (Static, &["1.2.3.5:<5678-5678>"]),
            ],
            true,
        ),
        (
            "static endpoint with peer address in rejected port range fails",
            &[(Static, &["1.2.3.5:<1-5677>"])],
            false,
        ),
        (
            "static endpoint with peer address in rejected singleton port fails",
            &[(Static, &["1.2.3.5:<5677-5677>"])],
            false,
        ),
        (
            "strict_dns with default port range ok",
            &[
                (Static, &["1.2.3.6"]),
                (StrictDns, &["echo-server.l7mp.io"]),
            ],
            true,
        ),
        // Upstream keeps this case commented out ("TODO: implement port-range filtering for DNS
        // clusters"). We go further: a resolved STRICT_DNS address keeps the name's port range.
        (
            "strict_dns with prohibited port range fails",
            &[(StrictDns, &["echo-server.l7mp.io:<1-1>"])],
            false,
        ),
    ];
    for (name, clusters, admitted) in cases {
        let got = clusters
            .iter()
            .any(|(kind, eps)| admits_echo_peer(*kind, eps));
        assert_eq!(got, *admitted, "{name}");
    }
}

/// The metrics server endpoint a config with `admin.metrics_endpoint: endpoint` asks for.
fn metrics_addr(endpoint: &str) -> Option<(SocketAddr, String)> {
    let text = format!(
        r#"{{"version":"v1","admin":{{"metrics_endpoint":"{endpoint}"}},"auth":{{"type":"static","credentials":{{"username":"user-1","password":"pass-1"}}}}}}"#
    );
    let mut c = StunnerConfig::parse_with_env(&text, &|_| None).expect("parse");
    c.validate().unwrap_or_else(|e| panic!("{endpoint:?}: {e}"));
    let e = c.admin.metrics_addr().expect("validated");
    e.map(|e| (e.addr, e.path))
}

/// upstream stunner `stunner_test.go` `TestStunnerMetrics` (`testMetrics`): where the metrics
/// server listens and what it serves, per endpoint. Upstream's probe turns an empty host into
/// 127.0.0.1 and a missing port into `DefaultMetricsPort` (8080); the server itself binds every
/// interface and serves at `/` when the endpoint names no path.
#[test]
fn upstream_metrics_endpoints() {
    assert_eq!(DEFAULT_METRICS_PORT, 8080, "upstream's DefaultMetricsPort");
    let cases = [
        (
            "enable with full metric-server spec",
            "http://127.0.0.1:9080/metrics",
            Some(("127.0.0.1:9080", "/metrics")),
        ),
        (
            "reconcile with no path",
            "http://127.0.0.1:9080",
            Some(("127.0.0.1:9080", "/")),
        ),
        ("disable", "", None),
        (
            "enable with no addr",
            "http://:9080/metrics",
            Some(("0.0.0.0:9080", "/metrics")),
        ),
        (
            "reconcile with a different port",
            "http://:9087/metrics",
            Some(("0.0.0.0:9087", "/metrics")),
        ),
        (
            "reconcile with no addr and no port",
            "http://",
            Some(("0.0.0.0:8080", "/")),
        ),
    ];
    for (name, endpoint, want) in cases {
        let want = want.map(|(a, p)| (a.parse::<SocketAddr>().unwrap(), p.to_owned()));
        assert_eq!(metrics_addr(endpoint), want, "{name}");
    }
}
