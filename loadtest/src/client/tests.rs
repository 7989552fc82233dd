//! Virtual-time tests of the TURN client against a scripted server written with the proto codec.

use super::*;

const REALM: &str = "stunner.l7mp.io";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn client(now: Instant) -> TurnClient {
    let creds = Credentials {
        username: "u".into(),
        password: "p".into(),
    };
    TurnClient::new(ClientConfig::new(creds, addr("127.0.0.1:9000")), now)
}

fn key() -> [u8; 16] {
    turn::long_term_key("u", REALM, "p")
}

fn take(c: &mut TurnClient) -> Vec<u8> {
    let mut out = Vec::new();
    assert!(c.poll_transmit(&mut out), "expected a message to send");
    out
}

/// A response of `class` to `req`, built like a server would, optionally signed.
fn respond(
    req: &[u8],
    class: Class,
    sign: bool,
    fill: impl FnOnce(&mut MessageBuilder<'_>),
) -> Vec<u8> {
    let m = Message::decode(req).unwrap();
    let mut out = Vec::new();
    let mut b = MessageBuilder::new(
        &mut out,
        m.message_type().with_class(class),
        m.transaction_id(),
    );
    fill(&mut b);
    if sign {
        b.finish_with_integrity(&key()).unwrap()
    } else {
        b.finish().unwrap()
    }
    out
}

fn challenge(req: &[u8]) -> Vec<u8> {
    respond(req, Class::Error, false, |b| {
        b.error_code(401, "Unauthorized").realm(REALM).nonce("n1");
    })
}

/// Answers the first Allocate with a 401 and returns the authenticated retry.
fn auth_allocate(c: &mut TurnClient, now: Instant) -> Vec<u8> {
    let a = take(c);
    assert_eq!(c.handle_input(now, &challenge(&a)), Input::Control);
    take(c)
}

/// Drives a fresh client to Ready and returns it.
fn ready(now: Instant) -> TurnClient {
    let mut c = client(now);
    let alloc = take(&mut c);
    assert_eq!(c.handle_input(now, &challenge(&alloc)), Input::Control);
    let alloc2 = take(&mut c);
    let m = Message::decode(&alloc2).unwrap();
    assert_eq!(m.username(), Some("u"));
    assert_eq!(m.nonce(), Some("n1"));
    assert_eq!(m.requested_transport(), Some(17));
    m.verify_integrity(&key()).unwrap();
    let ok = respond(&alloc2, Class::Success, true, |b| {
        b.xor_relayed_address(addr("127.0.0.1:50000"))
            .xor_mapped_address(addr("127.0.0.1:4000"))
            .lifetime(600);
    });
    c.handle_input(now, &ok);
    assert!(
        matches!(c.poll_event(), Some(Event::Allocated { relayed, .. }) if relayed == addr("127.0.0.1:50000"))
    );
    let bind = take(&mut c);
    let m = Message::decode(&bind).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Class::Request, Method::ChannelBind)
    );
    assert_eq!(m.channel_number(), Some(0x4000));
    assert_eq!(m.xor_peer_address(), Some(addr("127.0.0.1:9000")));
    c.handle_input(now, &respond(&bind, Class::Success, true, |_| {}));
    assert!(matches!(c.poll_event(), Some(Event::Ready { .. })));
    assert!(c.is_ready());
    c
}

#[test]
fn allocates_binds_and_relays() {
    let now = Instant::now();
    let mut c = ready(now);
    let mut out = Vec::new();
    assert!(c.encode_data(b"ping", &mut out));
    assert_eq!(out, [0x40, 0x00, 0x00, 0x04, b'p', b'i', b'n', b'g']);
    let mut back = Vec::new();
    turn::encode_channel_data(&mut back, 0x4000, b"pong", false).unwrap();
    assert_eq!(c.handle_input(now, &back), Input::Data(b"pong"));
    turn::encode_channel_data(&mut back, 0x4001, b"pong", false).unwrap();
    assert_eq!(c.handle_input(now, &back), Input::Ignored);
}

#[test]
fn send_indication_mode() {
    let now = Instant::now();
    let creds = Credentials {
        username: "u".into(),
        password: "p".into(),
    };
    let mut cfg = ClientConfig::new(creds, addr("127.0.0.1:9000"));
    cfg.mode = DataMode::Send;
    let mut c = TurnClient::new(cfg, now);
    let a = auth_allocate(&mut c, now);
    c.handle_input(
        now,
        &respond(&a, Class::Success, true, |b| {
            b.xor_relayed_address(addr("127.0.0.1:50000"));
        }),
    );
    let perm = take(&mut c);
    let m = Message::decode(&perm).unwrap();
    assert_eq!(m.message_type().method, Method::CreatePermission);
    c.handle_input(now, &respond(&perm, Class::Success, true, |_| {}));
    let mut out = Vec::new();
    assert!(c.encode_data(b"x", &mut out));
    let m = Message::decode(&out).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Class::Indication, Method::Send)
    );
    assert_eq!(m.data(), Some(&b"x"[..]));
    let mut ind = Vec::new();
    let mut b = MessageBuilder::new(
        &mut ind,
        MessageType::new(Class::Indication, Method::Data),
        TransactionId([7; 12]),
    );
    b.xor_peer_address(addr("127.0.0.1:9000")).data(b"y");
    b.finish().unwrap();
    assert_eq!(c.handle_input(now, &ind), Input::Data(b"y"));
}

#[test]
fn second_401_fails_with_code() {
    let now = Instant::now();
    let mut c = client(now);
    let a = auth_allocate(&mut c, now);
    c.handle_input(now, &challenge(&a));
    match c.poll_event() {
        Some(Event::Failed(f)) => {
            assert_eq!((f.stage, f.kind), (Stage::Allocate, FailureKind::Code(401)));
            assert!(f.reason.contains("after retry"), "{}", f.reason);
        }
        other => panic!("expected failure, got {other:?}"),
    }
    assert_eq!(c.phase(), Phase::Failed);
}

#[test]
fn forbidden_channel_bind_fails() {
    let now = Instant::now();
    let mut c = client(now);
    let a = auth_allocate(&mut c, now);
    c.handle_input(
        now,
        &respond(&a, Class::Success, true, |b| {
            b.xor_relayed_address(addr("127.0.0.1:50000"));
        }),
    );
    let _allocated = c.poll_event();
    let bind = take(&mut c);
    c.handle_input(
        now,
        &respond(&bind, Class::Error, true, |b| {
            b.error_code(403, "Forbidden");
        }),
    );
    let Some(Event::Failed(f)) = c.poll_event() else {
        panic!("expected failure")
    };
    assert_eq!(
        (f.stage, f.kind),
        (Stage::Permission, FailureKind::Code(403))
    );
}

#[test]
fn stale_nonce_retries_with_new_nonce() {
    let now = Instant::now();
    let mut c = client(now);
    let a = auth_allocate(&mut c, now);
    c.handle_input(
        now,
        &respond(&a, Class::Error, false, |b| {
            b.error_code(438, "Stale Nonce").realm(REALM).nonce("n2");
        }),
    );
    let a = take(&mut c);
    assert_eq!(Message::decode(&a).unwrap().nonce(), Some("n2"));
}

#[test]
fn retransmits_then_times_out() {
    let t0 = Instant::now();
    let mut c = client(t0);
    let first = take(&mut c);
    let mut t = t0;
    for _ in 1..5 {
        t = c.poll_timeout().unwrap();
        c.handle_timeout(t);
        assert_eq!(
            take(&mut c),
            first,
            "retransmission must reuse the transaction"
        );
    }
    c.handle_timeout(c.poll_timeout().unwrap());
    let Some(Event::Failed(f)) = c.poll_event() else {
        panic!("expected timeout")
    };
    assert_eq!(f.kind, FailureKind::Timeout);
    // 250 + 500 + 1000 + 2000 ms before the last attempt.
    assert_eq!(t - t0, Duration::from_millis(3750));
}

#[test]
fn refreshes_before_expiry_and_closes() {
    let t0 = Instant::now();
    let mut c = ready(t0);
    let due = c.poll_timeout().unwrap();
    assert_eq!(
        due - t0,
        Duration::from_secs(240),
        "permission refresh comes first"
    );
    c.handle_timeout(due);
    let rebind = take(&mut c);
    assert_eq!(
        Message::decode(&rebind).unwrap().message_type().method,
        Method::ChannelBind
    );
    c.handle_input(due, &respond(&rebind, Class::Success, true, |_| {}));
    let due = c.poll_timeout().unwrap();
    assert_eq!(
        due - t0,
        Duration::from_secs(300),
        "allocation refresh at half of 600 s"
    );
    c.handle_timeout(due);
    let refresh = take(&mut c);
    let m = Message::decode(&refresh).unwrap();
    assert_eq!(
        (m.message_type().method, m.lifetime()),
        (Method::Refresh, Some(600))
    );
    c.handle_input(
        due,
        &respond(&refresh, Class::Success, true, |b| {
            b.lifetime(600);
        }),
    );
    c.close(due);
    let bye = take(&mut c);
    assert_eq!(Message::decode(&bye).unwrap().lifetime(), Some(0));
    c.handle_input(due, &respond(&bye, Class::Success, true, |_| {}));
    assert_eq!(c.poll_event(), Some(Event::Closed));
    assert_eq!(c.phase(), Phase::Closed);
}

#[test]
fn bad_integrity_response_is_ignored() {
    let now = Instant::now();
    let mut c = client(now);
    let a = auth_allocate(&mut c, now);
    let m = Message::decode(&a).unwrap();
    let mut forged = Vec::new();
    let mut b = MessageBuilder::new(
        &mut forged,
        m.message_type().with_class(Class::Success),
        m.transaction_id(),
    );
    b.xor_relayed_address(addr("10.0.0.1:1"));
    b.finish_with_integrity(&[0u8; 16]).unwrap();
    assert_eq!(c.handle_input(now, &forged), Input::Ignored);
    assert_eq!(c.phase(), Phase::Allocating);
}

#[test]
fn garbage_never_panics() {
    let now = Instant::now();
    let mut c = client(now);
    for len in 0..64 {
        let buf: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
        let _ = c.handle_input(now, &buf);
    }
}
