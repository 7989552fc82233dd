//! CDS end to end (issue 6): the operator's CDS server in-process on loopback → a real stunnerd
//! process watching it (`stunnerd -w -c http://.. --id default/gw`). Each route or listener change
//! published on the [`ConfigStore`] must show in stunnerd's `/status` quickly (p99 reported and
//! bounded), and a TURN allocation on the unchanged listener keeps relaying to a UDP echo peer
//! throughout.
//!
//! Needs the stunnerd binary of the same profile: `cargo build -p stunnerd --bins`.

mod cds_e2e;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cds_e2e::turn::{EchoPeer, allocate, challenged};
use cds_e2e::{Stunnerd, free_port};
use operator::cds::{ConfigSet, ConfigStore, serve};
use operator::store::ObjectKey;
use proto::admin::Status;
use proto::config::{AdminConfig, AuthConfig, ClusterConfig, ListenerConfig, StunnerConfig};
use tokio_util::sync::CancellationToken;

/// Config changes measured: 100 so that the nearest-rank p99 is not simply the maximum (one
/// scheduling hiccup on a loaded machine must not decide the verdict; the max is printed too).
const CHANGES: usize = 100;
/// Each change must be visible in `/status` within this (a failure, not a latency sample).
const LAND_LIMIT: Duration = Duration::from_secs(3);
/// Bound on the p99 publish-to-applied latency (issue 6). Debug builds measure ~3 ms p50 and
/// ~10 ms p99 on a 2-core machine, so this holds with a wide margin.
const P99_LIMIT: Duration = Duration::from_millis(100);
/// Packets relayed through the live allocation after every change.
const PINGS: u32 = 3;

/// Loopback ports of the dataplane under test.
struct Ports {
    turn: u16,
    turn2: u16,
    health: u16,
}

/// The Gateway `default/gw` config: a TURN-UDP listener routed to cluster `default/peers`
/// (127.0.0.1/32), optionally a second cluster on the same route and a second listener.
fn config(p: &Ports, second_cluster: bool, second_listener: bool) -> StunnerConfig {
    let cluster = |name: &str, ep: &str| ClusterConfig {
        name: name.to_owned(),
        endpoints: vec![ep.to_owned()],
        ..ClusterConfig::default()
    };
    let mut routes = vec!["default/peers".to_owned()];
    let mut clusters = vec![cluster("default/peers", "127.0.0.1/32")];
    if second_cluster {
        routes.push("default/extra".to_owned());
        clusters.push(cluster("default/extra", "127.0.0.2/32"));
    }
    let listener = |name: &str, port: u16| ListenerConfig {
        name: name.to_owned(),
        address: "127.0.0.1".to_owned(),
        port,
        routes: routes.clone(),
        ..ListenerConfig::default()
    };
    let mut listeners = vec![listener("default/gw/udp", p.turn)];
    if second_listener {
        listeners.push(listener("default/gw/udp-2", p.turn2));
    }
    let mut c = StunnerConfig {
        admin: AdminConfig {
            name: "default/gw".to_owned(),
            healthcheck_endpoint: Some(format!("http://127.0.0.1:{}", p.health)),
            ..AdminConfig::default()
        },
        auth: AuthConfig {
            credentials: [("username", "user-1"), ("password", "pass-1")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into(),
            ..AuthConfig::default()
        },
        listeners,
        clusters,
        ..StunnerConfig::default()
    };
    c.validate().expect("valid config");
    c
}

/// What `/status` must show for `c`: listeners (name, port, sorted routes) and cluster names.
type Shape = (Vec<(String, u16, Vec<String>)>, Vec<String>);

fn shape_of_config(c: &StunnerConfig) -> Shape {
    shape(
        c.listeners.iter().map(|l| (&l.name, l.port, &l.routes)),
        c.clusters.iter().map(|c| &c.name),
    )
}

fn shape_of_status(s: &Status) -> Shape {
    shape(
        s.listeners.iter().map(|l| (&l.name, l.port, &l.routes)),
        s.clusters.iter().map(|c| &c.name),
    )
}

fn shape<'a>(
    listeners: impl Iterator<Item = (&'a String, u16, &'a Vec<String>)>,
    clusters: impl Iterator<Item = &'a String>,
) -> Shape {
    let ls = listeners.map(|(n, p, r)| (n.clone(), p, sorted(r.clone())));
    (sorted(ls.collect()), sorted(clusters.cloned().collect()))
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// Publishes `c` as the only config and returns when it is live in stunnerd: the publish-to-
/// visible latency, measured by polling `/status` every millisecond.
fn publish_and_wait(store: &ConfigStore, d: &Stunnerd, c: StunnerConfig) -> Duration {
    let want = shape_of_config(&c);
    let set: ConfigSet = [(ObjectKey::new("default", "gw"), c)].into();
    let start = Instant::now();
    assert!(
        store.publish(set),
        "the change must differ from the current config"
    );
    loop {
        let status = d.status();
        let elapsed = start.elapsed();
        if status.as_ref().map(shape_of_status).as_ref() == Some(&want) {
            return elapsed;
        }
        assert!(
            elapsed < LAND_LIMIT,
            "change not applied within {LAND_LIMIT:?}: want {want:?}, status {status:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Starts the CDS server on 127.0.0.1:0 on its own runtime.
fn start_cds(rt: &tokio::runtime::Runtime, store: ConfigStore) -> (SocketAddr, CancellationToken) {
    let stop = CancellationToken::new();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind CDS");
    let addr = listener.local_addr().expect("CDS addr");
    rt.spawn(serve(listener, store, stop.clone()));
    (addr, stop)
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[test]
fn cds_changes_reach_stunnerd_fast_and_allocations_keep_relaying() {
    let t0 = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let store = ConfigStore::new();
    let ports = Ports {
        turn: free_port(),
        turn2: free_port(),
        health: free_port(),
    };
    store.publish(
        [(
            ObjectKey::new("default", "gw"),
            config(&ports, false, false),
        )]
        .into(),
    );
    let (cds, stop) = start_cds(&rt, store.clone());
    let d = Stunnerd::spawn(cds, "default/gw", ports.health);
    d.wait_ready(Duration::from_secs(15));

    let peer = EchoPeer::start();
    let turn = SocketAddr::from(([127, 0, 0, 1], ports.turn));
    let alloc = allocate(turn, "user-1", "pass-1", peer.addr);
    assert_eq!(alloc.relay.ip(), turn.ip(), "relay on the listener address");
    let lost = alloc.warm_up(Duration::from_secs(5));
    println!("warm-up: {lost} packet(s) lost before the channel relayed");
    assert_eq!(alloc.ping(PINGS), PINGS, "relaying before any change");

    let (mut extra_cluster, mut extra_listener) = (false, false);
    let mut samples = Vec::with_capacity(CHANGES);
    for i in 0..CHANGES {
        if i % 5 == 4 {
            extra_listener = !extra_listener;
        } else {
            extra_cluster = !extra_cluster;
        }
        let c = config(&ports, extra_cluster, extra_listener);
        samples.push(publish_and_wait(&store, &d, c));
        if i % 5 == 4 && extra_listener {
            let second = SocketAddr::from(([127, 0, 0, 1], ports.turn2));
            assert!(challenged(second), "the added listener serves TURN");
        }
        assert_eq!(
            alloc.ping(PINGS),
            PINGS,
            "allocation on the unchanged listener stopped relaying after change {i}"
        );
    }
    let status = d.status().expect("status");
    assert_eq!(status.allocation_count, 1, "the allocation survived");

    samples.sort();
    let (p50, p99, max) = (
        percentile(&samples, 50.0),
        percentile(&samples, 99.0),
        samples[samples.len() - 1],
    );
    println!(
        "CDS propagation: p50={:.1} ms p99={:.1} ms max={:.1} ms over {} changes",
        ms(p50),
        ms(p99),
        ms(max),
        samples.len()
    );
    assert!(p99 < P99_LIMIT, "p99 {p99:?} over {P99_LIMIT:?}");
    stop.cancel();
    drop(d);
    let total = t0.elapsed();
    println!("test took {:.1} s", total.as_secs_f64());
    assert!(total < Duration::from_secs(60), "test took {total:?}");
}
