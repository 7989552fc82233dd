//! Engine unit tests under virtual time: every `now` is an `Instant` the test advances by hand.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::config::{ClusterType, Endpoint};
use proto::turn::{
    Class, Message, MessageBuilder, MessageType, Method, TransactionId, attr, encode_channel_data,
    long_term_key,
};

use super::*;

mod reserve;
mod tables;

const L: ListenerId = ListenerId(7);
const REALM: &str = "stunner.l7mp.io";

/// A test rig: one engine shard with one listener whose routes allow 10.0.0.0/8 ports 1000-60000.
struct Rig {
    e: Engine<u16>,
    now: Instant,
    out: Vec<u8>,
    nonce: String,
    tid: u8,
    stats: Arc<ListenerStats>,
    relay_port: u16,
    /// The token the rig's "driver" issued for a reserved port, if any.
    reserved: Option<[u8; 8]>,
}

fn peer(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn client(n: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], 40000 + n))
}

fn filter() -> PeerFilter {
    let mut f = PeerFilter::deny_all();
    let ep = Endpoint::parse("10.0.0.0/8:<1000-60000>", ClusterType::Static).expect("endpoint");
    f.add_cluster([ep], Arc::default());
    f
}

impl Rig {
    fn new(auth: Auth) -> Self {
        Self::with(EngineConfig {
            auth,
            nonce_lifetime: Duration::from_secs(100_000),
            ..EngineConfig::default()
        })
    }

    fn with(cfg: EngineConfig) -> Self {
        let now = Instant::now();
        let shared = Arc::new(Shared::new(now, 1_700_000_000, [3; 20]));
        let mut e = Engine::new(Arc::new(cfg), shared);
        let stats = Arc::new(ListenerStats::default());
        e.add_listener(
            L,
            ListenerSpec {
                name: "l".into(),
                stream: false,
                filter: filter(),
                stats: stats.clone(),
            },
        );
        Self {
            e,
            now,
            out: Vec::new(),
            nonce: String::new(),
            tid: 0,
            stats,
            relay_port: 50000,
            reserved: None,
        }
    }

    fn advance(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
        self.e.handle_timeout(self.now);
    }

    fn tid(&mut self) -> TransactionId {
        self.tid = self.tid.wrapping_add(1);
        TransactionId([self.tid; 12])
    }

    /// Encodes a request; signs it with `key` (plus USERNAME/REALM/NONCE) when given.
    fn req(
        &mut self,
        method: Method,
        cred: Option<(&str, [u8; 16])>,
        fill: impl FnOnce(&mut MessageBuilder<'_>),
    ) -> Vec<u8> {
        let tid = self.tid();
        self.req_tid(method, tid, cred, fill)
    }

    fn req_tid(
        &self,
        method: Method,
        tid: TransactionId,
        cred: Option<(&str, [u8; 16])>,
        fill: impl FnOnce(&mut MessageBuilder<'_>),
    ) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(Class::Request, method), tid);
        fill(&mut b);
        match cred {
            Some((user, key)) => {
                b.username(user).realm(REALM).nonce(&self.nonce);
                b.finish_with_integrity(&key).expect("encode");
            }
            None => b.finish().expect("encode"),
        }
        buf
    }

    /// Feeds `buf` from client `c`; completes Allocates with relay port `relay_port` (R = port).
    fn feed(&mut self, c: SocketAddr, buf: &[u8]) -> Outcome {
        let now = self.now;
        let action = match self.e.handle_client(now, L, c, buf, &mut self.out) {
            Action::Drop => return Outcome::Dropped,
            Action::Reply => None,
            Action::Relay { relay, peer, data } => {
                return Outcome::Relayed(*relay, peer, data.to_vec());
            }
            Action::Allocate(rq) => Some(rq),
        };
        if let Some(mut rq) = action {
            self.relay_port += 1;
            let relay = (
                self.relay_port,
                SocketAddr::from(([10, 9, 9, 9], self.relay_port)),
            );
            // Like the driver: a token must name a live reservation; R issues one.
            let relay = match rq.reservation {
                Some(t) if self.reserved.take() != Some(t) => Err(RelayError::UnknownReservation),
                _ => Ok(relay),
            };
            if rq.reserve {
                rq.issued_token = Some([9; 8]);
                self.reserved = rq.issued_token;
            }
            self.e.complete_allocate(now, rq, relay, &mut self.out);
        }
        let msg = Message::decode(&self.out).expect("response decodes");
        if let Some(n) = msg.nonce() {
            self.nonce = n.to_owned();
        }
        match msg.message_type().class {
            Class::Success => Outcome::Ok(self.out.clone()),
            _ => Outcome::Err(msg.error_code().map_or(0, |(c, _)| c)),
        }
    }

    /// Allocates for client `c` as `user` (static "u"/"p" unless the rig is ephemeral); returns the id.
    fn allocate(&mut self, c: SocketAddr, cred: Option<(&str, [u8; 16])>) -> AllocId {
        if cred.is_some() {
            let first = self.req(Method::Allocate, None, |b| {
                b.requested_transport(attr::TRANSPORT_UDP);
            });
            assert_eq!(self.feed(c, &first), Outcome::Err(401));
        }
        let m = self.req(Method::Allocate, cred, |b| {
            b.requested_transport(attr::TRANSPORT_UDP);
        });
        assert!(matches!(self.feed(c, &m), Outcome::Ok(_)));
        self.e.allocation_of(L, c).expect("allocation")
    }
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Dropped,
    Ok(Vec<u8>),
    Err(u16),
    Relayed(u16, SocketAddr, Vec<u8>),
}

fn static_rig() -> (Rig, Option<(&'static str, [u8; 16])>) {
    let rig = Rig::new(Auth::new_static("u", "p", REALM));
    (rig, Some(("u", long_term_key("u", REALM, "p"))))
}

#[test]
fn binding_is_answered_without_auth() {
    let (mut rig, _) = static_rig();
    let m = rig.req(Method::Binding, None, |_| {});
    let Outcome::Ok(resp) = rig.feed(client(1), &m) else {
        panic!("binding failed")
    };
    let msg = Message::decode(&resp).expect("decode");
    assert_eq!(msg.xor_mapped_address(), Some(client(1)));
    assert!(msg.has_fingerprint());
}

#[test]
fn allocate_challenge_then_success_signed() {
    let (mut rig, cred) = static_rig();
    rig.allocate(client(1), cred);
    let msg = Message::decode(&rig.out).expect("decode");
    assert_eq!(msg.lifetime(), Some(600));
    assert_eq!(
        msg.xor_relayed_address(),
        Some(SocketAddr::from(([10, 9, 9, 9], 50001)))
    );
    assert_eq!(msg.xor_mapped_address(), Some(client(1)));
    assert!(
        msg.verify_integrity(&long_term_key("u", REALM, "p"))
            .is_ok()
    );
    assert_eq!(rig.e.shared().active_allocations(), 1);
    assert_eq!(rig.e.shared().outcome_count(AllocOutcome::Created), 1);
}

#[test]
fn wrong_password_is_401_and_counted() {
    let (mut rig, _) = static_rig();
    let bad = Some(("u", long_term_key("u", REALM, "wrong")));
    let first = rig.req(Method::Allocate, None, |b| {
        b.requested_transport(17);
    });
    assert_eq!(rig.feed(client(1), &first), Outcome::Err(401));
    let m = rig.req(Method::Allocate, bad, |b| {
        b.requested_transport(17);
    });
    assert_eq!(rig.feed(client(1), &m), Outcome::Err(401));
    assert_eq!(rig.e.shared().outcome_count(AllocOutcome::RejectedAuth), 1);
    assert_eq!(rig.e.allocation_count(), 0);
}

#[test]
fn lifetimes_are_clamped_and_expire() {
    let (mut rig, cred) = static_rig();
    let id = rig.allocate(client(1), cred);
    let m = rig.req(Method::Refresh, cred, |b| {
        b.lifetime(7200);
    });
    let Outcome::Ok(resp) = rig.feed(client(1), &m) else {
        panic!("refresh")
    };
    assert_eq!(
        Message::decode(&resp).expect("decode").lifetime(),
        Some(3600)
    );
    let m = rig.req(Method::Refresh, cred, |b| {
        b.lifetime(5);
    });
    let Outcome::Ok(resp) = rig.feed(client(1), &m) else {
        panic!("refresh")
    };
    assert_eq!(
        Message::decode(&resp).expect("decode").lifetime(),
        Some(600)
    );
    rig.advance(599);
    assert!(rig.e.relay(id).is_some());
    rig.advance(2);
    assert!(rig.e.relay(id).is_none());
    assert_eq!(rig.e.shared().active_allocations(), 0);
    assert_eq!(rig.e.poll_timeout(), None);
}

#[test]
fn refresh_extends_and_zero_releases() {
    let (mut rig, cred) = static_rig();
    let id = rig.allocate(client(1), cred);
    rig.advance(500);
    let m = rig.req(Method::Refresh, cred, |_| {});
    assert!(matches!(rig.feed(client(1), &m), Outcome::Ok(_)));
    rig.advance(500);
    assert!(rig.e.relay(id).is_some(), "refresh extended the lifetime");
    let m = rig.req(Method::Refresh, cred, |b| {
        b.lifetime(0);
    });
    let Outcome::Ok(resp) = rig.feed(client(1), &m) else {
        panic!("refresh 0")
    };
    assert_eq!(Message::decode(&resp).expect("decode").lifetime(), Some(0));
    assert_eq!(rig.e.allocation_count(), 0);
    let m = rig.req(Method::Refresh, cred, |_| {});
    assert_eq!(rig.feed(client(1), &m), Outcome::Err(437));
}

#[test]
fn stale_nonce_gets_438_then_works() {
    let cfg = EngineConfig {
        auth: Auth::new_static("u", "p", REALM),
        nonce_lifetime: Duration::from_secs(60),
        ..EngineConfig::default()
    };
    let mut rig = Rig::with(cfg);
    let cred = Some(("u", long_term_key("u", REALM, "p")));
    rig.allocate(client(1), cred);
    rig.advance(61);
    let old = rig.nonce.clone();
    let m = rig.req(Method::Refresh, cred, |_| {});
    assert_eq!(rig.feed(client(1), &m), Outcome::Err(438));
    assert_ne!(rig.nonce, old, "438 carries a fresh nonce");
    let m = rig.req(Method::Refresh, cred, |_| {});
    assert!(matches!(rig.feed(client(1), &m), Outcome::Ok(_)));
}

#[test]
fn allocation_mismatch_and_retransmission() {
    let (mut rig, cred) = static_rig();
    rig.allocate(client(1), cred);
    let first_relay = Message::decode(&rig.out)
        .expect("decode")
        .xor_relayed_address();
    let retrans_tid = TransactionId([rig.tid; 12]);
    let m = rig.req_tid(Method::Allocate, retrans_tid, cred, |b| {
        b.requested_transport(17);
    });
    let Outcome::Ok(resp) = rig.feed(client(1), &m) else {
        panic!("retransmission")
    };
    assert_eq!(
        Message::decode(&resp)
            .expect("decode")
            .xor_relayed_address(),
        first_relay
    );
    let m = rig.req(Method::Allocate, cred, |b| {
        b.requested_transport(17);
    });
    assert_eq!(rig.feed(client(1), &m), Outcome::Err(437));
    assert_eq!(rig.e.allocation_count(), 1);
}

#[test]
fn allocate_attribute_errors() {
    let (mut rig, cred) = static_rig();
    let m = rig.req(Method::Allocate, None, |_| {});
    assert_eq!(rig.feed(client(1), &m), Outcome::Err(401));
    let m = rig.req(Method::Allocate, cred, |_| {});
    assert_eq!(rig.feed(client(1), &m), Outcome::Err(400));
    let m = rig.req(Method::Allocate, cred, |b| {
        b.requested_transport(attr::TRANSPORT_TCP);
    });
    assert_eq!(rig.feed(client(1), &m), Outcome::Err(442));
    let m = rig.req(Method::Allocate, cred, |b| {
        b.requested_transport(17).reservation_token([1; 8]);
    });
    assert_eq!(rig.feed(client(1), &m), Outcome::Err(508));
    let m = rig.req(Method::Allocate, cred, |b| {
        b.requested_transport(17).attribute(0x7777, &[1, 2, 3, 4]);
    });
    assert_eq!(rig.feed(client(1), &m), Outcome::Err(420));
    let msg = Message::decode(&rig.out).expect("decode");
    assert_eq!(msg.unknown_attributes().collect::<Vec<_>>(), vec![0x7777]);
    let m = rig.req(Method::Binding, None, |b| {
        b.attribute(0x0033, &[]);
    });
    assert_eq!(rig.feed(client(1), &m), Outcome::Err(420));
    assert_eq!(rig.e.allocation_count(), 0);
}

#[test]
fn relay_failures_give_440_and_508() {
    let (mut rig, cred) = static_rig();
    let first = rig.req(Method::Allocate, None, |b| {
        b.requested_transport(17);
    });
    rig.feed(client(1), &first);
    for (err, want) in [
        (RelayError::Family, 440),
        (RelayError::Capacity, 508),
        (RelayError::UnknownReservation, 508),
    ] {
        let m = rig.req(Method::Allocate, cred, |b| {
            b.requested_transport(17);
        });
        let now = rig.now;
        let Action::Allocate(rq) = rig.e.handle_client(now, L, client(1), &m, &mut rig.out) else {
            panic!("expected allocate")
        };
        assert_eq!(
            rig.e.complete_allocate(now, rq, Err(err), &mut rig.out),
            None
        );
        let msg = Message::decode(&rig.out).expect("decode");
        assert_eq!(msg.error_code().map(|e| e.0), Some(want));
    }
    assert_eq!(rig.e.shared().active_allocations(), 0);
}

#[test]
fn permissions_gate_both_directions_and_expire() {
    let (mut rig, cred) = static_rig();
    let id = rig.allocate(client(1), cred);
    let p = peer("10.0.0.5:5000");
    let send = |rig: &mut Rig| {
        let tid = rig.tid();
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::new(Class::Indication, Method::Send),
            tid,
        );
        b.xor_peer_address(p).data(b"hello");
        b.finish().expect("encode");
        rig.feed(client(1), &buf)
    };
    assert_eq!(send(&mut rig), Outcome::Dropped);
    let now = rig.now;
    assert!(!rig.e.handle_peer(now, id, p, b"x", &mut rig.out));
    let m = rig.req(Method::CreatePermission, cred, |b| {
        b.xor_peer_address(p);
    });
    assert!(matches!(rig.feed(client(1), &m), Outcome::Ok(_)));
    assert_eq!(
        send(&mut rig),
        Outcome::Relayed(50001, p, b"hello".to_vec())
    );
    assert!(rig.e.handle_peer(now, id, p, b"back", &mut rig.out));
    let data = Message::decode(&rig.out).expect("data indication");
    assert_eq!(
        data.message_type(),
        MessageType::new(Class::Indication, Method::Data)
    );
    assert_eq!(
        (data.xor_peer_address(), data.data()),
        (Some(p), Some(&b"back"[..]))
    );
    rig.advance(301);
    assert_eq!(send(&mut rig), Outcome::Dropped, "permission expired");
    assert!(!rig.e.handle_peer(rig.now, id, p, b"x", &mut rig.out));
    assert!(rig.stats.dropped[DropReason::NoPermission as usize].get() >= 3);
}

#[test]
fn peer_filter_denies_unrouted_peers() {
    let (mut rig, cred) = static_rig();
    let id = rig.allocate(client(1), cred);
    let m = rig.req(Method::CreatePermission, cred, |b| {
        b.xor_peer_address(peer("192.168.1.1:5000"));
    });
    assert_eq!(rig.feed(client(1), &m), Outcome::Err(403));
    let m = rig.req(Method::ChannelBind, cred, |b| {
        b.channel_number(0x4000)
            .xor_peer_address(peer("10.0.0.1:80"));
    });
    assert_eq!(
        rig.feed(client(1), &m),
        Outcome::Err(403),
        "port outside the endpoint range"
    );
    assert_eq!(rig.stats.permission_denied.get(), 2);
    // A permission for the IP does not open ports outside the range.
    let m = rig.req(Method::CreatePermission, cred, |b| {
        b.xor_peer_address(peer("10.0.0.1:5000"));
    });
    assert!(matches!(rig.feed(client(1), &m), Outcome::Ok(_)));
    assert!(
        !rig.e
            .handle_peer(rig.now, id, peer("10.0.0.1:80"), b"x", &mut rig.out)
    );
    assert_eq!(rig.stats.dropped[DropReason::Filtered as usize].get(), 1);
    assert!(
        rig.e
            .handle_peer(rig.now, id, peer("10.0.0.1:5000"), b"x", &mut rig.out)
    );
}

#[test]
fn channel_binding_rules() {
    let (mut rig, cred) = static_rig();
    let id = rig.allocate(client(1), cred);
    let (p1, p2) = (peer("10.0.0.1:5000"), peer("10.0.0.2:5000"));
    let bind = |rig: &mut Rig, n: u16, p: SocketAddr| {
        let m = rig.req(Method::ChannelBind, cred, |b| {
            b.channel_number(n).xor_peer_address(p);
        });
        rig.feed(client(1), &m)
    };
    assert!(matches!(bind(&mut rig, 0x4000, p1), Outcome::Ok(_)));
    assert!(
        matches!(bind(&mut rig, 0x4000, p1), Outcome::Ok(_)),
        "refresh"
    );
    assert_eq!(bind(&mut rig, 0x4000, p2), Outcome::Err(400));
    assert_eq!(bind(&mut rig, 0x4001, p1), Outcome::Err(400));
    assert_eq!(bind(&mut rig, 0x8000, p2), Outcome::Err(400));
    assert_eq!(bind(&mut rig, 0x3FFF, p2), Outcome::Err(400));
    let mut cd = Vec::new();
    encode_channel_data(&mut cd, 0x4000, b"media", false).expect("encode");
    assert_eq!(
        rig.feed(client(1), &cd),
        Outcome::Relayed(50001, p1, b"media".to_vec())
    );
    assert!(rig.e.handle_peer(rig.now, id, p1, b"back", &mut rig.out));
    assert_eq!(rig.out, [0x40, 0x00, 0x00, 0x04, b'b', b'a', b'c', b'k']);
    encode_channel_data(&mut cd, 0x4001, b"media", false).expect("encode");
    assert_eq!(
        rig.feed(client(1), &cd),
        Outcome::Dropped,
        "unbound channel"
    );
    // Keep the allocation alive, let the binding expire, then rebind the number elsewhere.
    let m = rig.req(Method::Refresh, cred, |b| {
        b.lifetime(3600);
    });
    assert!(matches!(rig.feed(client(1), &m), Outcome::Ok(_)));
    rig.advance(601);
    assert!(matches!(bind(&mut rig, 0x4000, p2), Outcome::Ok(_)));
}

#[test]
fn channel_data_is_padded_on_streams() {
    let (mut rig, cred) = static_rig();
    let stats = rig.stats.clone();
    rig.e.add_listener(
        L,
        ListenerSpec {
            name: "l".into(),
            stream: true,
            filter: filter(),
            stats,
        },
    );
    let id = rig.allocate(client(1), cred);
    let p = peer("10.0.0.1:5000");
    let m = rig.req(Method::ChannelBind, cred, |b| {
        b.channel_number(0x4002).xor_peer_address(p);
    });
    assert!(matches!(rig.feed(client(1), &m), Outcome::Ok(_)));
    assert!(rig.e.handle_peer(rig.now, id, p, b"abcde", &mut rig.out));
    assert_eq!(rig.out.len(), 12);
}

#[test]
fn quota_draining_and_wrong_credentials() {
    let cfg = EngineConfig {
        auth: Auth::Ephemeral {
            secret: b"sec".to_vec(),
        },
        user_quota: 1,
        nonce_lifetime: Duration::from_secs(100_000),
        ..EngineConfig::default()
    };
    let mut rig = Rig::with(cfg);
    let cred = |user: &'static str| {
        let pw = rest_api_password(b"sec", user);
        Some((user, long_term_key(user, REALM, &pw)))
    };
    rig.allocate(client(1), cred("1800000000:alice"));
    let first = rig.req(Method::Allocate, None, |b| {
        b.requested_transport(17);
    });
    assert_eq!(rig.feed(client(2), &first), Outcome::Err(401));
    let m = rig.req(Method::Allocate, cred("1800000000:alice"), |b| {
        b.requested_transport(17);
    });
    assert_eq!(rig.feed(client(2), &m), Outcome::Err(486));
    assert_eq!(rig.e.shared().outcome_count(AllocOutcome::RejectedQuota), 1);
    let m = rig.req(Method::Refresh, cred("1800000000:bob"), |_| {});
    assert_eq!(rig.feed(client(1), &m), Outcome::Err(441));
    let m = rig.req(Method::Allocate, cred("1600000000:carol"), |b| {
        b.requested_transport(17);
    });
    assert_eq!(
        rig.feed(client(3), &m),
        Outcome::Err(401),
        "expired REST username"
    );
    rig.e.shared().set_draining(true);
    let m = rig.req(Method::Allocate, cred("1800000000:bob"), |b| {
        b.requested_transport(17);
    });
    assert_eq!(rig.feed(client(3), &m), Outcome::Err(508));
    let reason = Message::decode(&rig.out)
        .expect("decode")
        .error_code()
        .map(|e| e.1.to_owned());
    assert!(reason.is_some_and(|r| r.contains("draining")));
    // Releasing gives the quota back; the existing allocation still refreshes while draining.
    let m = rig.req(Method::Refresh, cred("1800000000:alice"), |_| {});
    assert!(matches!(rig.feed(client(1), &m), Outcome::Ok(_)));
    rig.e.shared().set_draining(false);
    let m = rig.req(Method::Refresh, cred("1800000000:alice"), |b| {
        b.lifetime(0);
    });
    assert!(matches!(rig.feed(client(1), &m), Outcome::Ok(_)));
    rig.allocate(client(2), cred("1800000000:alice"));
}

#[test]
fn no_auth_allocates_without_integrity() {
    let mut rig = Rig::new(Auth::None);
    rig.allocate(client(1), None);
    assert!(!Message::decode(&rig.out).expect("decode").has_integrity());
}

#[test]
fn listener_removal_and_client_gone_release_allocations() {
    let (mut rig, cred) = static_rig();
    rig.allocate(client(1), cred);
    rig.allocate(client(2), cred);
    rig.e.client_gone(L, client(1));
    assert_eq!(rig.e.allocation_count(), 1);
    assert_eq!(rig.e.remove_listener(L), 1);
    assert_eq!(rig.e.shared().active_allocations(), 0);
    let m = rig.req(Method::Binding, None, |_| {});
    let now = rig.now;
    assert!(matches!(
        rig.e.handle_client(now, L, client(1), &m, &mut rig.out),
        Action::Drop
    ));
}

#[test]
fn garbage_never_panics() {
    let (mut rig, cred) = static_rig();
    let id = rig.allocate(client(1), cred);
    let valid = rig.req(Method::ChannelBind, cred, |b| {
        b.channel_number(0x4000)
            .xor_peer_address(peer("10.0.0.1:5000"));
    });
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..20_000 {
        let mut buf = valid.clone();
        let cut = (next() as usize) % (buf.len() + 1);
        buf.truncate(if i % 3 == 0 { cut } else { buf.len() });
        for _ in 0..(next() % 4) {
            if let Some(b) = buf.get_mut((next() as usize) % valid.len()) {
                *b = next() as u8;
            }
        }
        if i % 5 == 0 {
            buf = (0..(next() % 80)).map(|_| next() as u8).collect();
        }
        let now = rig.now;
        let _ = rig.e.handle_client(now, L, client(1), &buf, &mut rig.out);
        let _ = rig
            .e
            .handle_peer(now, id, peer("10.0.0.1:5000"), &buf, &mut rig.out);
    }
    assert!(rig.stats.dropped[DropReason::Malformed as usize].get() > 0);
}

#[test]
fn malformed_request_gets_400() {
    let (mut rig, _) = static_rig();
    let mut m = rig.req(Method::Allocate, None, |b| {
        b.lifetime(600);
    });
    // Corrupt the LIFETIME length (4 → 2): the TLV walk fails, the header is intact.
    m[23] = 2;
    m.truncate(26);
    m[3] = 6;
    let out = rig.feed(client(1), &m);
    assert!(
        matches!(out, Outcome::Err(400) | Outcome::Dropped),
        "{out:?}"
    );
}
