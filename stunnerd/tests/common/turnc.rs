//! webrtc-rs `turn` client helpers: a UDP echo peer, a client with the test credentials, pings.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use turn::client::{Client, ClientConfig};
use webrtc_util::Conn;

/// A UDP echo peer on loopback; returns its address.
pub async fn echo_peer() -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind peer");
    let addr = sock.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let _ = sock.send_to(&buf[..n], from).await;
        }
    });
    addr
}

/// A `turn` client for u/p on 127.0.0.1:`turn_port`, listening.
pub async fn client(turn_port: u16) -> Client {
    let conn = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind client"));
    let cfg = ClientConfig {
        stun_serv_addr: format!("127.0.0.1:{turn_port}"),
        turn_serv_addr: format!("127.0.0.1:{turn_port}"),
        username: "u".into(),
        password: "p".into(),
        realm: "stunner.l7mp.io".into(),
        software: String::new(),
        rto_in_ms: 0,
        conn,
        vnet: None,
    };
    let c = Client::new(cfg).await.expect("client");
    c.listen().await.expect("listen");
    c
}

/// Sends `n` numbered packets to `peer` through `relay`; returns how many echoes came back.
pub async fn ping(relay: &impl Conn, peer: SocketAddr, n: u32) -> u32 {
    let mut got = 0;
    let mut buf = [0u8; 1500];
    for i in 0..n {
        let msg = format!("ping {i}");
        relay.send_to(msg.as_bytes(), peer).await.expect("send");
        if let Ok(Ok((len, _))) =
            tokio::time::timeout(Duration::from_secs(2), relay.recv_from(&mut buf)).await
        {
            got += u32::from(&buf[..len] == msg.as_bytes());
        }
    }
    got
}
