//! Test vectors of upstream STUNner's own suites, transcribed: `internal/util/endpoint_test.go`
//! (TestEndpointParse, TestRouteMatch) and `config_test.go` (TestCredentialParser). Where we
//! deliberately differ, the assertion says so.

use std::net::IpAddr;

use proto::config::{ClusterType, Endpoint, EndpointHost, PortRange, StunnerConfig};

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
