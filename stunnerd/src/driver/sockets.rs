//! Socket set-up: SO_REUSEPORT listener groups (one socket per worker), large send/receive buffers,
//! and relay sockets bound per allocation. Everything here is synchronous and runs off the packet path.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// Attempts at finding an even relay port when EVEN-PORT asks for one.
const EVEN_PORT_ATTEMPTS: usize = 32;

fn new_socket(addr: SocketAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        sock.set_only_v6(false).ok();
    }
    sock.set_nonblocking(true)?;
    Ok(sock)
}

fn set_buffers(sock: &Socket, bytes: usize) {
    if bytes > 0 {
        // Capped by net.core.{r,w}mem_max; a smaller buffer is not fatal.
        let _ = sock.set_recv_buffer_size(bytes);
        let _ = sock.set_send_buffer_size(bytes);
    }
}

/// `count` UDP sockets bound to the same `addr` with SO_REUSEPORT, so the kernel spreads client
/// 5-tuples over them (a given 5-tuple always lands on the same socket).
pub(crate) fn udp_group(
    addr: SocketAddr,
    count: usize,
    buffer: usize,
) -> io::Result<Vec<UdpSocket>> {
    (0..count.max(1))
        .map(|_| {
            let sock = new_socket(addr, Type::DGRAM, Protocol::UDP)?;
            sock.set_reuse_address(true)?;
            sock.set_reuse_port(true)?;
            set_buffers(&sock, buffer);
            sock.bind(&addr.into())?;
            Ok(sock.into())
        })
        .collect()
}

/// `count` TCP listening sockets on the same `addr` with SO_REUSEPORT.
pub(crate) fn tcp_group(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
    (0..count.max(1))
        .map(|_| {
            let sock = new_socket(addr, Type::STREAM, Protocol::TCP)?;
            sock.set_reuse_address(true)?;
            sock.set_reuse_port(true)?;
            sock.set_tcp_nodelay(true)?;
            sock.bind(&addr.into())?;
            sock.listen(1024)?;
            Ok(sock.into())
        })
        .collect()
}

/// The wildcard address of `ip`'s family.
pub(crate) fn unspecified_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    }
}

/// A relay socket with an ephemeral port (an even one when `even`), bound to every interface of
/// `ip`'s family as upstream does; the returned address (what XOR-RELAYED-ADDRESS carries) is
/// `ip` with that port, so `ip` may be an address the host does not own (a NAT'd public IP).
pub(crate) fn relay_socket(
    ip: IpAddr,
    even: bool,
    buffer: usize,
) -> io::Result<(UdpSocket, SocketAddr)> {
    let attempts = if even { EVEN_PORT_ATTEMPTS } else { 1 };
    let any = SocketAddr::new(unspecified_like(ip), 0);
    for _ in 0..attempts {
        let sock = new_socket(any, Type::DGRAM, Protocol::UDP)?;
        set_buffers(&sock, buffer);
        sock.bind(&any.into())?;
        let local = sock
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("no local address"))?;
        if !even || local.port() % 2 == 0 {
            return Ok((sock.into(), SocketAddr::new(ip, local.port())));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no even relay port found",
    ))
}

/// Two relay sockets on `ip`: an even port and the odd port right above it (EVEN-PORT with the R
/// bit, RFC 8656 §7.2).
pub(crate) fn relay_pair(
    ip: IpAddr,
    buffer: usize,
) -> io::Result<((UdpSocket, SocketAddr), (UdpSocket, SocketAddr))> {
    for _ in 0..EVEN_PORT_ATTEMPTS {
        let (even, addr) = relay_socket(ip, true, buffer)?;
        let Some(next) = addr.port().checked_add(1) else {
            continue;
        };
        let odd = SocketAddr::new(ip, next);
        let odd_any = SocketAddr::new(unspecified_like(ip), next);
        let sock = new_socket(odd_any, Type::DGRAM, Protocol::UDP)?;
        set_buffers(&sock, buffer);
        if sock.bind(&odd_any.into()).is_ok() {
            return Ok(((even, addr), (sock.into(), odd)));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no free even/odd relay port pair",
    ))
}

/// Sends one datagram with a direct `sendto`, never consulting tokio's cached write readiness.
///
/// `tokio::net::UdpSocket::try_send_to` does not even try the system call until the runtime's
/// reactor has recorded the socket as writable, which it learns only from an epoll event it
/// processes later. A relay socket bound while handling an Allocate has no such record yet, so the
/// first ChannelData or Send indication right after the allocation was refused with `WouldBlock`
/// (counted `send_failed`) and lost; after an `EAGAIN` the same cache refused every later send
/// until the next write edge. UDP sends are never awaited here, so the kernel's answer is the truth.
#[inline]
pub(crate) fn send_now(
    sock: &tokio::net::UdpSocket,
    data: &[u8],
    to: SocketAddr,
) -> io::Result<usize> {
    socket2::SockRef::from(sock).send_to(data, &to.into())
}

/// The local IP the kernel would use to reach `peer` (a route lookup via a connected UDP socket;
/// no packet is sent). Used as relay address for listeners bound to a wildcard address.
pub(crate) fn local_ip_towards(peer: SocketAddr) -> io::Result<IpAddr> {
    let unspecified: IpAddr = match peer {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    let probe = UdpSocket::bind(SocketAddr::new(unspecified, 0))?;
    probe.connect(peer)?;
    Ok(probe.local_addr()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuseport_group_and_relays() {
        let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = probe.local_addr().expect("addr");
        drop(probe);
        let group = udp_group(addr, 3, 1 << 20).expect("group");
        assert_eq!(group.len(), 3);
        let (relay, local) =
            relay_socket("127.0.0.1".parse().expect("ip"), true, 0).expect("relay");
        assert_eq!(local.port() % 2, 0);
        // Bound to every interface, advertised with the given IP.
        let bound = relay.local_addr().expect("addr");
        assert!(bound.ip().is_unspecified() && bound.port() == local.port());
        assert_eq!(local.ip().to_string(), "127.0.0.1");
        assert_eq!(local_ip_towards(addr).expect("route"), addr.ip());
        let ((_, even), (odd_sock, odd)) =
            relay_pair("127.0.0.1".parse().expect("ip"), 0).expect("pair");
        assert_eq!(even.port() % 2, 0);
        assert_eq!(odd.port(), even.port() + 1);
        assert_eq!(odd_sock.local_addr().expect("addr").port(), odd.port());
        let advertised = relay_socket("203.0.113.7".parse().expect("ip"), false, 0);
        assert_eq!(
            advertised.expect("a foreign IP binds").1.ip().to_string(),
            "203.0.113.7"
        );
    }
}
