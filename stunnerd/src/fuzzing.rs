//! Entry points for the fuzz targets in `fuzz/`: every decoder that takes untrusted bytes, reached
//! through the same code the daemon runs. Not part of the supported API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::config::{ClusterType, Endpoint};

use crate::engine::{
    Action, Auth, Engine, EngineConfig, ListenerId, ListenerSpec, PeerFilter, Shared,
};

/// The DTLS demultiplexer's record checks (ClientHello detection, record splitting, the fast
/// path's app-data test, the ServerHello cipher suite reader) on one datagram.
pub fn dtls_datagram(pkt: &[u8]) {
    crate::driver::fuzz_dtls_datagram(pkt);
}

/// The admin API's drain query parsing.
pub fn admin_query(query: &str) {
    crate::admin::fuzz_query(query);
}

/// A CDS answer body (HTTP) and a CDS WebSocket text frame.
pub fn cds_message(text: &str) {
    crate::config_source::fuzz_cds(text);
}

/// One engine shard with static auth, a listener routed to 10.0.0.0/8 and everything that the
/// packet path does with client and peer bytes.
pub struct EngineRig {
    engine: Engine<()>,
    now: Instant,
    out: Vec<u8>,
}

const L: ListenerId = ListenerId(1);

impl Default for EngineRig {
    fn default() -> Self {
        let now = Instant::now();
        let shared = Arc::new(Shared::new(now, 1_700_000_000, [3; 20]));
        let cfg = EngineConfig {
            auth: Auth::None,
            ..EngineConfig::default()
        };
        let mut engine = Engine::new(Arc::new(cfg), shared);
        let mut filter = PeerFilter::deny_all();
        if let Ok(ep) = Endpoint::parse("10.0.0.0/8", ClusterType::Static) {
            filter.add_cluster([ep], Arc::default());
        }
        engine.add_listener(
            L,
            ListenerSpec {
                name: "fuzz".into(),
                stream: false,
                filter,
                stats: Arc::default(),
            },
        );
        Self {
            engine,
            now,
            out: Vec::new(),
        }
    }
}

impl EngineRig {
    /// Feeds `data` as a client datagram (completing any allocation it asks for), then as a peer
    /// datagram to every allocation.
    pub fn feed(&mut self, data: &[u8]) {
        let client = SocketAddr::from(([192, 0, 2, 1], 5000));
        self.now += Duration::from_millis(1);
        let action = self
            .engine
            .handle_client(self.now, L, client, data, &mut self.out);
        if let Action::Allocate(rq) = action {
            let relay = SocketAddr::from(([192, 0, 2, 9], 40000));
            self.engine
                .complete_allocate(self.now, rq, Ok(((), relay)), &mut self.out);
        }
        if let Some(id) = self.engine.allocation_of(L, client) {
            let peer = SocketAddr::from(([10, 0, 0, 1], 7));
            let _ = self
                .engine
                .handle_peer(self.now, id, peer, data, &mut self.out);
        }
        self.engine.handle_timeout(self.now);
    }
}
