//! The webrtc-rs `turn` crate client allocating through stunnerd and relaying to a UDP echo peer;
//! the config is then hot-reloaded (`-w`) while the allocation keeps relaying, and an invalid
//! config is rejected with the previous one kept in force.

mod common;

use std::time::Duration;

use common::turnc::{client, echo_peer, ping};
use common::*;
use webrtc_util::Conn;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_crate_relays_and_survives_hot_reload() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let ports = Ports::new();
        let yaml = config(ports, STATIC_AUTH, &["127.0.0.1"]);
        let sd = tokio::task::spawn_blocking(move || Stunnerd::start(ports, &yaml, &["-w"]))
            .await
            .expect("start");
        let peer = echo_peer().await;
        let c = client(ports.turn).await;
        let mapped = c.send_binding_request().await.expect("binding");
        assert_eq!(mapped.ip().to_string(), "127.0.0.1");
        let relay = c.allocate().await.expect("allocate");
        let relayed = relay.local_addr().expect("relay addr");
        assert_eq!(
            relayed.ip().to_string(),
            "127.0.0.1",
            "XOR-RELAYED-ADDRESS is the listener address"
        );
        // The first send also creates the permission and the channel in the background: warm up.
        ping(&relay, peer, 3).await;
        assert_eq!(ping(&relay, peer, 20).await, 20);

        // Live reload: the TCP listener moves to another port, routes gain a cluster. The UDP
        // listener is unchanged, so the allocation must keep relaying.
        let new_tcp = free_port();
        let changed = config(ports, STATIC_AUTH, &["127.0.0.1", "10.0.0.0/8"]).replacen(
            &format!(
                "protocol: TURN-TCP\n    address: 127.0.0.1\n    port: {}",
                ports.turn
            ),
            &format!("protocol: TURN-TCP\n    address: 127.0.0.1\n    port: {new_tcp}"),
            1,
        );
        std::fs::write(&sd.config, &changed).expect("rewrite config");
        wait_log(&sd, "listener started", 2).await;
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", new_tcp)).is_ok(),
            "restarted TCP listener"
        );
        assert_eq!(
            ping(&relay, peer, 20).await,
            20,
            "allocation survived the reload"
        );

        // An invalid config is rejected; the previous one stays in force.
        std::fs::write(
            &sd.config,
            "version: v1\nlisteners:\n  - name: x\n    port: 99999\n",
        )
        .expect("write");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(
            ping(&relay, peer, 10).await,
            10,
            "still relaying after an invalid config"
        );
        assert_eq!(http("GET", ports.health, "/ready", &[]).0, 200);
        c.close().await.expect("close");
    })
    .await
    .expect("test timed out");
}

/// Waits until the log contains `needle` more than `times` times.
async fn wait_log(sd: &Stunnerd, needle: &str, times: usize) {
    for _ in 0..100 {
        if sd.log_text().matches(needle).count() > times {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "log never showed {needle:?} more than {times} times:\n{}",
        sd.log_text()
    );
}
