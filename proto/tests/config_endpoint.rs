//! Endpoint syntax and peer matching (the relay's security boundary), IPv4 and IPv6.

use std::net::IpAddr;

use proto::config::{ClusterType, Endpoint, EndpointHost, PortRange, parse_http_endpoint};

fn ep(raw: &str) -> Endpoint {
    Endpoint::parse(raw, ClusterType::Static).unwrap_or_else(|e| panic!("{raw}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn single_ip_matches_only_itself_on_any_port() {
    let e = ep("10.0.0.1");
    assert!(
        e.matches(ip("10.0.0.1"), 1)
            && e.matches(ip("10.0.0.1"), 65535)
            && e.matches(ip("10.0.0.1"), 0)
    );
    assert!(!e.matches(ip("10.0.0.2"), 1));
    assert_eq!(e.to_string(), "10.0.0.1/32");
}

#[test]
fn ipv4_prefix_and_port_range() {
    let e = ep("10.0.0.0/8:<10000-20000>");
    assert_eq!(
        e.ports,
        PortRange {
            min: 10000,
            max: 20000
        }
    );
    assert!(e.matches(ip("10.255.1.2"), 10000) && e.matches(ip("10.0.0.0"), 20000));
    assert!(!e.matches(ip("10.1.1.1"), 9999) && !e.matches(ip("10.1.1.1"), 20001));
    assert!(!e.matches(ip("11.0.0.1"), 15000));
    assert!(
        !e.matches(ip("fd00::1"), 15000),
        "family mismatch never matches"
    );
}

#[test]
fn host_bits_are_masked_like_parse_cidr() {
    let e = ep("192.168.1.77/24");
    assert_eq!(
        e.host,
        EndpointHost::Prefix {
            addr: ip("192.168.1.0"),
            len: 24
        }
    );
    assert!(e.matches(ip("192.168.1.200"), 5) && !e.matches(ip("192.168.2.1"), 5));
}

#[test]
fn zero_prefix_is_an_open_relay_only_when_asked() {
    let any4 = ep("0.0.0.0/0");
    assert!(any4.matches(ip("8.8.8.8"), 53) && any4.matches(ip("::ffff:1.2.3.4"), 1));
    assert!(!any4.matches(ip("2001:db8::1"), 1));
    assert!(ep("::/0").matches(ip("2001:db8::1"), 1));
}

#[test]
fn ipv6_prefixes_and_single_port() {
    let e = ep("fd00:10:96::/112:<5000>");
    assert!(e.matches(ip("fd00:10:96::abcd"), 5000));
    assert!(!e.matches(ip("fd00:10:96::abcd"), 5001));
    assert!(!e.matches(ip("fd00:10:97::1"), 5000));
    assert!(ep("::1").matches(ip("::1"), 9) && !ep("::1").matches(ip("::2"), 9));
    assert_eq!(ep("2001:db8::/32").to_string(), "2001:db8::/32");
}

#[test]
fn ipv4_mapped_peers_match_ipv4_prefixes_and_mapped_endpoints_are_ipv4() {
    assert!(ep("10.0.0.0/8").matches(ip("::ffff:10.1.2.3"), 80));
    assert!(ep("::ffff:10.0.0.1").matches(ip("10.0.0.1"), 80));
}

#[test]
fn dns_endpoints_only_in_strict_dns_clusters() {
    let d = Endpoint::parse(
        "media.default.svc.cluster.local.:<1-100>",
        ClusterType::StrictDns,
    )
    .unwrap();
    assert_eq!(d.dns_name(), Some("media.default.svc.cluster.local"));
    assert!(
        !d.matches(ip("10.0.0.1"), 50),
        "unresolved DNS endpoint matches nothing"
    );
    let resolved = Endpoint::from_ip(ip("10.0.0.1"), d.ports);
    assert!(resolved.matches(ip("10.0.0.1"), 50) && !resolved.matches(ip("10.0.0.1"), 101));
    assert!(Endpoint::parse("media.svc", ClusterType::Static).is_err());
    assert_eq!(
        Endpoint::parse("10.0.0.1", ClusterType::StrictDns)
            .unwrap()
            .dns_name(),
        None
    );
    for bad in ["-bad.host", "a..b", "host name", "", "x/8"] {
        assert!(
            Endpoint::parse(bad, ClusterType::StrictDns).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn malformed_endpoints_are_errors_not_panics() {
    for bad in [
        "10.0.0.0/8:<",
        "10.0.0.0/8<1-2>",
        "10.0.0.0/8:<1-70000>",
        "10.0.0.0/8:<a-b>",
        "10.0.0.0/-1",
        "10.0.0.0/8/8",
        "::/129",
        "1.2.3.4.5",
        ":<1-2>",
        "10.0.0.1:80",
    ] {
        assert!(
            Endpoint::parse(bad, ClusterType::Static).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn display_round_trips() {
    for raw in ["10.0.0.0/8:<10000-20000>", "fd00::/8", "1.2.3.4/32:<7-7>"] {
        let e = ep(raw);
        assert_eq!(ep(&e.to_string()), e, "{raw}");
    }
}

#[test]
fn http_endpoint_helper() {
    let cases = [
        ("http://0.0.0.0:8080/metrics", "0.0.0.0:8080", "/metrics"),
        ("http://:8080", "0.0.0.0:8080", "/"),
        ("http://127.0.0.1", "127.0.0.1:8080", "/"),
        ("HTTP://[::1]:9000/m?x=1", "[::1]:9000", "/m"),
        ("http://[::]", "[::]:8080", "/"),
        (":9100/metrics", "0.0.0.0:9100", "/metrics"),
        ("http://localhost:1/", "127.0.0.1:1", "/"),
    ];
    for (raw, addr, path) in cases {
        let e = parse_http_endpoint(raw, 8080).unwrap_or_else(|err| panic!("{raw}: {err}"));
        assert_eq!(
            (e.addr.to_string().as_str(), e.path.as_str()),
            (addr, path),
            "{raw}"
        );
    }
    for bad in [
        "https://:1",
        "http://::1:80",
        "http://[::1",
        "http://host.example:80",
        "http://:x",
    ] {
        assert!(parse_http_endpoint(bad, 8080).is_err(), "{bad}");
    }
}
