//! Test vectors of upstream STUNner's `config_test.go` `TestStunnerURIParser`, transcribed onto
//! turncat's TURN URI parser ([`loadtest::uri::TurnUri`]): upstream's `ParseUri` feeds its
//! stunnerd default config and turncat, and our stunnerd takes no TURN URI (see the README), so
//! turncat's parser is where upstream's semantics live here.
//!
//! Upstream names the result as a listener protocol (`turn-udp`, `turn-tcp`, `turn-tls`,
//! `turn-dtls`); ours is the transport a client speaks (UDP, TCP, TLS, DTLS), one to one.

use loadtest::swarm::Transport;
use loadtest::uri::{TurnUri, UriAuth};

/// Upstream's listener protocol name for our transport.
fn listener_protocol(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "turn-udp",
        Transport::Tcp => "turn-tcp",
        Transport::Tls => "turn-tls",
        Transport::Dtls => "turn-dtls",
    }
}

/// (user, password) of the URI's user-info; empty strings without one, as upstream reports it.
fn credentials(a: &UriAuth) -> (&str, &str) {
    match a {
        UriAuth::None => ("", ""),
        UriAuth::Static { username, password } => (username.as_str(), password.as_str()),
        UriAuth::Secret(s) => panic!("unexpected secret user-info {s:?}"),
    }
}

/// upstream stunner `config_test.go` `TestStunnerURIParser`: (uri, protocol, address, username,
/// password, port).
const URI_CASES: &[(&str, &str, &str, &str, &str, u16)] = &[
    // udp
    (
        "turn://user1:passwd1@1.2.3.4:3478?transport=udp",
        "turn-udp",
        "1.2.3.4",
        "user1",
        "passwd1",
        3478,
    ),
    (
        "turn://user1:passwd1@1.2.3.4?transport=udp",
        "turn-udp",
        "1.2.3.4",
        "user1",
        "passwd1",
        3478,
    ),
    (
        "turn://user1:passwd1@1.2.3.4:3478",
        "turn-udp",
        "1.2.3.4",
        "user1",
        "passwd1",
        3478,
    ),
    // tcp
    (
        "turn://user1:passwd1@1.2.3.4:3478?transport=tcp",
        "turn-tcp",
        "1.2.3.4",
        "user1",
        "passwd1",
        3478,
    ),
    (
        "turn://user1:passwd1@1.2.3.4?transport=tcp",
        "turn-tcp",
        "1.2.3.4",
        "user1",
        "passwd1",
        3478,
    ),
    // tls - old style
    (
        "turn://user1:passwd1@1.2.3.4:3478?transport=tls",
        "turn-tls",
        "1.2.3.4",
        "user1",
        "passwd1",
        3478,
    ),
    (
        "turn://user1:passwd1@1.2.3.4?transport=tls",
        "turn-tls",
        "1.2.3.4",
        "user1",
        "passwd1",
        443,
    ),
    // tls - RFC style
    (
        "turns://user1:passwd1@1.2.3.4:3478?transport=tcp",
        "turn-tls",
        "1.2.3.4",
        "user1",
        "passwd1",
        3478,
    ),
    (
        "turns://user1:passwd1@1.2.3.4?transport=tcp",
        "turn-tls",
        "1.2.3.4",
        "user1",
        "passwd1",
        443,
    ),
    // dtls - old style
    (
        "turn://user1:passwd1@1.2.3.4:3478?transport=dtls",
        "turn-dtls",
        "1.2.3.4",
        "user1",
        "passwd1",
        3478,
    ),
    (
        "turn://user1:passwd1@1.2.3.4?transport=dtls",
        "turn-dtls",
        "1.2.3.4",
        "user1",
        "passwd1",
        443,
    ),
    // dtls - RFC style
    (
        "turns://user1:passwd1@1.2.3.4:3478?transport=udp",
        "turn-dtls",
        "1.2.3.4",
        "user1",
        "passwd1",
        3478,
    ),
    (
        "turns://user1:passwd1@1.2.3.4?transport=udp",
        "turn-dtls",
        "1.2.3.4",
        "user1",
        "passwd1",
        443,
    ),
    // no cred
    (
        "turn://1.2.3.4:3478?transport=udp",
        "turn-udp",
        "1.2.3.4",
        "",
        "",
        3478,
    ),
    (
        "turn://1.2.3.4?transport=udp",
        "turn-udp",
        "1.2.3.4",
        "",
        "",
        3478,
    ),
    ("turn://1.2.3.4", "turn-udp", "1.2.3.4", "", "", 3478),
];

#[test]
fn upstream_stunner_uri_parser() {
    for &(uri, protocol, address, user, pass, port) in URI_CASES {
        let u = TurnUri::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
        assert_eq!(
            (
                listener_protocol(u.transport),
                u.host.as_str(),
                credentials(&u.auth),
                u.port
            ),
            (protocol, address, (user, pass), port),
            "{uri}"
        );
    }
}

/// Not among upstream's vectors, but where its `ParseUri` and ours part: a bare `turns:` URI.
/// Upstream defaults the transport to `udp` whatever the scheme, so `turns://host` would be
/// DTLS; we read it as RFC 7065 and browsers do, TLS over TCP (upstream's turncat takes no
/// `turns:` URI at all, so no upstream command line changes meaning).
#[test]
fn bare_turns_is_tls_unlike_upstream() {
    let u = TurnUri::parse("turns://user1:passwd1@1.2.3.4").expect("parse");
    assert_eq!((u.transport, u.port), (Transport::Tls, 443));
}
