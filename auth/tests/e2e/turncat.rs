//! turncat's upstream `k8s://<namespace>/<gateway>:<listener>` server form against the same CDS
//! server and stunnerd: turncat finds the listener's public address and the Gateway's ephemeral
//! secret in CDS and relays a local UDP client to the echo peer through stunnerd.
//!
//! Needs the turncat binary of the same profile: `cargo build -p loadtest --bin turncat`.

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::free_port;
use testkit::peer::EchoPeer;

use crate::{Harness, bin};

#[test]
fn turncat_k8s_uri_relays_through_the_gateway() {
    let h = Harness::start(None);
    let peer = EchoPeer::start();
    let local = free_port();
    let mut turncat = Command::new(bin("turncat"))
        .args([
            &format!("udp://127.0.0.1:{local}"),
            "k8s://default/gw:udp",
            &format!("udp://{}", peer.addr),
            "--cds-server-address",
            &h.cds,
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn turncat");
    let client = UdpSocket::bind("127.0.0.1:0").expect("client");
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let end = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 64];
    let echoed = loop {
        let _ = client.send_to(b"through k8s://", ("127.0.0.1", local));
        if let Ok(n) = client.recv(&mut buf) {
            break Some(buf[..n].to_vec());
        }
        if Instant::now() > end || turncat.try_wait().ok().flatten().is_some() {
            break None;
        }
    };
    let allocations = h.json_status();
    let _ = turncat.kill();
    let status = turncat.wait().ok();
    assert_eq!(
        echoed.as_deref(),
        Some(&b"through k8s://"[..]),
        "no echo through turncat (exit {status:?})"
    );
    assert_eq!(allocations, 1, "the relay goes through stunnerd");
}
