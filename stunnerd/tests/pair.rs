//! An in-memory client↔server pair in virtual time, as quinn-proto tests a client/server `Pair`:
//! loadtest's sans-IO TURN client (the one the swarm and turncat drive over real sockets) against
//! stunnerd's sans-IO engine, with datagrams handed across by the test and the clock advanced by
//! hand. Whole protocol exchanges (auth round, channel or permission set-up, data both ways,
//! refreshes, expiry, loss and retransmission, close) run in microseconds, so minutes of protocol
//! time cost nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use loadtest::client::{ClientConfig, Credentials, DataMode, Event, Failure, Input, TurnClient};
use proto::config::{ClusterType, Endpoint};
use stunnerd::engine::{
    Action, Auth, Engine, EngineConfig, ListenerId, ListenerSpec, ListenerStats, PeerFilter, Shared,
};

const L: ListenerId = ListenerId(1);
const REALM: &str = "stunner.l7mp.io";
const USER: &str = "user";
const PASS: &str = "pass";

/// The server (engine with one UDP listener routing 10.0.0.0/8) and one client, in virtual time.
struct Pair {
    engine: Engine<u16>,
    client: TurnClient,
    addr: SocketAddr,
    now: Instant,
    /// Datagrams that reached peers through the relay: (relay port, peer, payload).
    at_peers: Vec<(u16, SocketAddr, Vec<u8>)>,
    /// Payloads the client received from peers.
    at_client: Vec<Vec<u8>>,
    events: Vec<Event>,
    /// Drop the next this many datagrams from the server to the client.
    lose_replies: usize,
    next_port: u16,
    stats: Arc<ListenerStats>,
}

fn peer() -> SocketAddr {
    "10.0.0.5:5000".parse().expect("addr")
}

impl Pair {
    fn new(mode: DataMode, password: &str, peer: SocketAddr) -> Self {
        let now = Instant::now();
        let cfg = EngineConfig {
            auth: Auth::new_static(USER, PASS, REALM),
            realm: REALM.into(),
            ..EngineConfig::default()
        };
        let shared = Arc::new(Shared::new(now, 1_700_000_000, [7; 20]));
        let mut engine = Engine::new(Arc::new(cfg), shared);
        let mut filter = PeerFilter::deny_all();
        let routes = Endpoint::parse("10.0.0.0/8", ClusterType::Static).expect("endpoint");
        filter.add_cluster([routes], Arc::default());
        let stats = Arc::new(ListenerStats::default());
        engine.add_listener(
            L,
            ListenerSpec {
                name: "udp".into(),
                stream: false,
                filter,
                stats: stats.clone(),
            },
        );
        let creds = Credentials {
            username: USER.into(),
            password: password.into(),
        };
        let mut cfg = ClientConfig::new(creds, peer);
        cfg.mode = mode;
        Self {
            engine,
            client: TurnClient::new(cfg, now),
            addr: "192.0.2.1:40000".parse().expect("addr"),
            now,
            at_peers: Vec::new(),
            at_client: Vec::new(),
            events: Vec::new(),
            lose_replies: 0,
            next_port: 50_000,
            stats,
        }
    }

    /// Moves datagrams both ways until neither side has anything to send.
    fn drive(&mut self) {
        let mut tx = Vec::new();
        let mut out = Vec::new();
        while self.client.poll_transmit(&mut tx) {
            if self.deliver_to_server(&tx, &mut out) {
                self.deliver_to_client(&out);
            }
        }
        while let Some(e) = self.client.poll_event() {
            self.events.push(e);
        }
    }

    /// Feeds one datagram to the engine; true when `out` holds a reply for the client.
    fn deliver_to_server(&mut self, buf: &[u8], out: &mut Vec<u8>) -> bool {
        let now = self.now;
        let rq = match self.engine.handle_client(now, L, self.addr, buf, out) {
            Action::Drop => return false,
            Action::Reply => return true,
            Action::Relay { relay, peer, data } => {
                self.at_peers.push((*relay, peer, data.to_vec()));
                return false;
            }
            Action::Allocate(rq) => rq,
        };
        self.next_port += 1;
        let relay = SocketAddr::from(([198, 51, 100, 1], self.next_port));
        let bound = Ok((self.next_port, relay));
        self.engine.complete_allocate(now, rq, bound, out);
        !out.is_empty()
    }

    fn deliver_to_client(&mut self, buf: &[u8]) {
        if self.lose_replies > 0 {
            self.lose_replies -= 1;
            return;
        }
        if let Input::Data(d) = self.client.handle_input(self.now, buf) {
            self.at_client.push(d.to_vec());
        }
    }

    /// A datagram from `from` arrives on the client's relay socket.
    fn peer_sends(&mut self, from: SocketAddr, payload: &[u8]) -> bool {
        let Some(id) = self.engine.allocation_of(L, self.addr) else {
            return false;
        };
        let mut out = Vec::new();
        let sent = self
            .engine
            .handle_peer(self.now, id, from, payload, &mut out);
        if sent {
            self.deliver_to_client(&out);
        }
        sent
    }

    /// Advances virtual time by `d` in steps of at most a second, firing both sides' timers.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now = (self.now + Duration::from_secs(1)).min(end);
            self.client.handle_timeout(self.now);
            self.engine.handle_timeout(self.now);
            self.drive();
        }
    }

    fn send(&mut self, payload: &[u8]) {
        let mut buf = Vec::new();
        assert!(
            self.client.encode_data(payload, &mut buf),
            "client not ready"
        );
        let mut out = Vec::new();
        if self.deliver_to_server(&buf, &mut out) {
            self.deliver_to_client(&out);
        }
    }

    fn failure(&self) -> Option<&Failure> {
        self.events.iter().find_map(|e| match e {
            Event::Failed(f) => Some(f),
            _ => None,
        })
    }
}

#[test]
fn channel_mode_allocates_with_the_auth_round_and_relays_both_ways() {
    let mut p = Pair::new(DataMode::Channel, PASS, peer());
    p.drive();
    assert!(p.client.is_ready(), "events: {:?}", p.events);
    assert!(
        matches!(p.events[0], Event::Allocated { .. }),
        "{:?}",
        p.events
    );
    assert_eq!(p.engine.allocation_count(), 1);
    p.send(b"to the peer");
    assert_eq!(p.at_peers.len(), 1);
    let (port, to, data) = &p.at_peers[0];
    assert_eq!((*to, data.as_slice()), (peer(), &b"to the peer"[..]));
    assert_eq!(p.client.relayed().map(|r| r.port()), Some(*port));
    assert!(p.peer_sends(peer(), b"back"));
    assert_eq!(p.at_client, [b"back".to_vec()]);
    // Another peer has neither permission nor channel.
    assert!(!p.peer_sends("10.0.0.6:5000".parse().expect("addr"), b"x"));
    assert_eq!(p.at_client.len(), 1);
}

#[test]
fn send_indication_mode_relays_both_ways() {
    let mut p = Pair::new(DataMode::Send, PASS, peer());
    p.drive();
    assert!(p.client.is_ready(), "events: {:?}", p.events);
    p.send(b"indicated");
    assert_eq!(
        p.at_peers.last().map(|x| x.2.as_slice()),
        Some(&b"indicated"[..])
    );
    assert!(p.peer_sends(peer(), b"data indication"));
    assert_eq!(p.at_client, [b"data indication".to_vec()]);
}

#[test]
fn a_refreshing_client_outlives_its_lifetime_and_a_silent_one_expires() {
    let mut p = Pair::new(DataMode::Channel, PASS, peer());
    p.drive();
    assert!(p.client.is_ready());
    // 30 minutes of protocol time: the client refreshes the allocation and re-binds its channel.
    p.advance(Duration::from_secs(1800));
    assert_eq!(p.engine.allocation_count(), 1, "events: {:?}", p.events);
    assert!(p.client.is_ready(), "{:?} {:?}", p.client.phase(), p.events);
    p.send(b"still here");
    assert_eq!(p.at_peers.len(), 1, "the channel is still bound");
    // A client that goes silent: the allocation ends after its lifetime (600 s), not before.
    let mut silent = Pair::new(DataMode::Channel, PASS, peer());
    silent.drive();
    let now = silent.now;
    silent.engine.handle_timeout(now + Duration::from_secs(590));
    assert_eq!(silent.engine.allocation_count(), 1);
    silent.engine.handle_timeout(now + Duration::from_secs(601));
    assert_eq!(silent.engine.allocation_count(), 0);
}

#[test]
fn lost_replies_are_retransmitted_and_answered_consistently() {
    let mut p = Pair::new(DataMode::Channel, PASS, peer());
    p.lose_replies = 2;
    p.drive();
    assert!(!p.client.is_ready());
    p.advance(Duration::from_secs(3));
    assert!(p.client.is_ready(), "events: {:?}", p.events);
    assert_eq!(
        p.engine.allocation_count(),
        1,
        "a retransmission is no new allocation"
    );
}

#[test]
fn close_frees_the_allocation() {
    let mut p = Pair::new(DataMode::Channel, PASS, peer());
    p.drive();
    let now = p.now;
    p.client.close(now);
    p.drive();
    assert!(p.events.contains(&Event::Closed), "{:?}", p.events);
    assert_eq!(p.engine.allocation_count(), 0);
}

#[test]
fn a_wrong_password_and_an_unrouted_peer_fail_with_the_server_s_reason() {
    let mut p = Pair::new(DataMode::Channel, "wrong", peer());
    p.drive();
    let f = p.failure().expect("failed");
    assert!(f.reason.contains("401"), "{f:?}");
    assert_eq!(p.engine.allocation_count(), 0);
    let mut p = Pair::new(
        DataMode::Channel,
        PASS,
        "192.0.2.77:5000".parse().expect("addr"),
    );
    p.drive();
    let f = p.failure().expect("failed");
    assert!(f.reason.contains("403"), "{f:?}");
    assert!(p.at_peers.is_empty());
    assert_eq!(
        p.stats.permission_denied.get(),
        1,
        "counted as refused by peer filtering"
    );
}
