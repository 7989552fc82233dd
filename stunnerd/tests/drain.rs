//! Graceful drain (docs/ARCHITECTURE.md §4): SIGTERM keeps live allocations relaying, refuses new ones with 508,
//! keeps /ready at 200 and exits 0 right after the last allocation goes; the deadline path; the
//! admin drain (POST/DELETE /drain, token, loopback rule); abandoned clients ending a drain.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::turnc::{client, echo_peer, ping};
use common::*;
use testkit::turn::RawAlloc;
use webrtc_util::Conn;

async fn start(args: &'static [&'static str]) -> Stunnerd {
    let ports = Ports::new();
    let yaml = config(ports, STATIC_AUTH, &["127.0.0.1"]);
    tokio::task::spawn_blocking(move || Stunnerd::start(ports, &yaml, args))
        .await
        .expect("start")
}

/// Tries a fresh allocation; returns the error text if refused.
async fn try_allocate(port: u16) -> Result<(), String> {
    let c = client(port).await;
    let r = c.allocate().await.map(|_| ()).map_err(|e| e.to_string());
    let _ = c.close().await;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_live_allocations_then_exits() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut sd = start(&[]).await;
        let peer = echo_peer().await;
        let mut clients = Vec::new();
        for _ in 0..3 {
            let c = client(sd.ports.turn).await;
            let relay = c.allocate().await.expect("allocate");
            ping(&relay, peer, 3).await;
            clients.push((c, relay));
        }
        let t0 = Instant::now();
        sd.signal("TERM");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, status) = http("GET", sd.ports.health, "/status", &[]);
        assert!(status.contains("\"state\":\"DRAINING\""), "{status}");
        // The drain timeline (`cargo test -p stunnerd --test drain -- --nocapture` prints it).
        let timeline = |sd: &Stunnerd, what: &str| {
            let (_, st) = http("GET", sd.ports.health, "/status", &[]);
            let left = st
                .split("\"allocationCount\":")
                .nth(1)
                .and_then(|r| r.split([',', '}']).next());
            println!(
                "drain t={:>5}ms  allocations left={}  relayed packets={}  {what}",
                t0.elapsed().as_millis(),
                left.unwrap_or("?"),
                sd.metric("stunner_cluster_packets_total", ""),
            );
        };
        timeline(&sd, "SIGTERM sent, state DRAINING");
        assert!(
            status.contains("\"allocationCount\":3") && status.contains("drainDeadline"),
            "{status}"
        );
        assert_eq!(
            http("GET", sd.ports.health, "/ready", &[]).0,
            200,
            "ready while draining"
        );
        assert_eq!(sd.metric("stunner_dataplane_draining", ""), 1.0);
        let refused = try_allocate(sd.ports.turn)
            .await
            .expect_err("new allocation refused");
        assert!(
            refused.contains("508") || refused.to_lowercase().contains("draining"),
            "{refused}"
        );
        assert_eq!(
            sd.metric("stunner_allocations_total", "rejected_draining"),
            1.0
        );
        // Live flows keep relaying with zero loss; clients leave one by one.
        let mut last_release = Instant::now();
        while let Some((c, relay)) = clients.pop() {
            assert_eq!(ping(&relay, peer, 30).await, 30, "zero loss while draining");
            timeline(&sd, "30/30 echoes back (0% loss), releasing one allocation");
            relay.close().await.expect("release");
            c.close().await.expect("close");
            last_release = Instant::now();
            if !clients.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                assert!(
                    sd.child.try_wait().expect("wait").is_none(),
                    "exited with allocations left"
                );
            }
        }
        let (code, at) = tokio::task::spawn_blocking(move || sd.wait_exit(Duration::from_secs(5)))
            .await
            .expect("join")
            .expect("exited");
        assert_eq!(code, 0);
        println!(
            "drain t={:>5}ms  process exited with code 0, {} ms after the last release",
            at.duration_since(t0).as_millis(),
            at.duration_since(last_release).as_millis()
        );
        assert!(
            at.duration_since(last_release) < Duration::from_secs(1),
            "exit within 1 s of the last release"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_deadline_drops_and_exits() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let mut sd = start(&["--drain-timeout", "2"]).await;
        let c = client(sd.ports.turn).await;
        let _relay = c.allocate().await.expect("allocate");
        let t0 = Instant::now();
        sd.signal("TERM");
        let (exit, text) = tokio::task::spawn_blocking(move || {
            (sd.wait_exit(Duration::from_secs(6)), sd.log_text())
        })
        .await
        .expect("join");
        let (code, at) = exit.expect("exited at the deadline");
        assert_eq!(code, 0);
        let took = at.duration_since(t0);
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
            "{took:?}"
        );
        assert!(text.contains("dropped=1"), "{text}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_signal_exits_at_once() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let mut sd = start(&[]).await;
        let c = client(sd.ports.turn).await;
        let _relay = c.allocate().await.expect("allocate");
        sd.signal("TERM");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            sd.child.try_wait().expect("wait").is_none(),
            "still draining"
        );
        sd.signal("INT");
        let (code, _) = tokio::task::spawn_blocking(move || sd.wait_exit(Duration::from_secs(2)))
            .await
            .expect("join")
            .expect("exited at once");
        assert_eq!(code, 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_drain_and_cancel_with_token() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let sd = start(&["--admin-token", "t0ken"]).await;
        let port = sd.ports.health;
        assert_eq!(http("POST", port, "/drain", &[]).0, 401, "token required");
        assert_eq!(
            http("POST", port, "/drain", &[("Authorization", "Bearer nope")]).0,
            403
        );
        let auth = [("Authorization", "Bearer t0ken")];
        let (code, body) = http("POST", port, "/drain?timeout=60", &auth);
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("DRAINING"), "{body}");
        let refused = try_allocate(sd.ports.turn)
            .await
            .expect_err("508 while draining");
        assert!(
            refused.contains("508") || refused.to_lowercase().contains("draining"),
            "{refused}"
        );
        assert_eq!(http("GET", port, "/ready", &[]).0, 200);
        let (code, body) = http("DELETE", port, "/drain", &auth);
        assert_eq!(code, 200, "{body}");
        try_allocate(sd.ports.turn)
            .await
            .expect("allocations accepted again");
        assert_eq!(sd.metric("stunner_dataplane_draining", ""), 0.0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_drain_is_off_without_token_and_readiness_can_fail() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let ports = Ports::new();
        let yaml = config(ports, STATIC_AUTH, &["127.0.0.1"])
            .replace("http://127.0.0.1:", "http://0.0.0.0:");
        let sd = tokio::task::spawn_blocking(move || {
            Stunnerd::start(
                ports,
                &yaml,
                &["--drain-fail-readiness", "--admin-token", "t"],
            )
        })
        .await
        .expect("start");
        let lan = std::net::UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| s.connect("192.0.2.1:9").map(|()| s))
            .and_then(|s| s.local_addr())
            .map(|a| a.ip())
            .ok()
            .filter(|ip| !ip.is_loopback() && !ip.is_unspecified());
        if let Some(ip) = lan {
            let (code, _) = http_at(SocketAddr::new(ip, ports.health), "POST", "/drain", &[]);
            assert_eq!(code, 401, "non-loopback caller needs the token");
        }
        assert_eq!(
            http("POST", ports.health, "/drain", &[]).0,
            401,
            "loopback is not trusted"
        );
        let auth = [("Authorization", "Bearer t")];
        assert_eq!(http("POST", ports.health, "/drain", &auth).0, 200);
        assert_eq!(
            http("GET", ports.health, "/ready", &[]).0,
            503,
            "--drain-fail-readiness"
        );
        drop(sd);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_allocation_ends_the_drain_at_its_lifetime() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let mut sd = start(&["--default-lifetime", "2", "--max-lifetime", "2"]).await;
        // A raw client allocates, then vanishes without releasing (no refresh, no lifetime 0).
        let port = sd.ports.turn;
        let server = SocketAddr::from(([127, 0, 0, 1], port));
        tokio::task::spawn_blocking(move || drop(RawAlloc::new(server, "u", "p")))
            .await
            .expect("join");
        assert_eq!(sd.metric("stunner_allocations_active", ""), 1.0);
        let t0 = Instant::now();
        sd.signal("TERM");
        let (code, at) = tokio::task::spawn_blocking(move || sd.wait_exit(Duration::from_secs(8)))
            .await
            .expect("join")
            .expect("exited when the allocation expired");
        assert_eq!(code, 0);
        assert!(at.duration_since(t0) < Duration::from_secs(5));
    })
    .await
    .expect("test timed out");
}
