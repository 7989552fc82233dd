//! Socket set-up: SO_REUSEPORT listener groups (one socket per worker), large send/receive buffers,
//! and relay sockets bound per allocation. Everything here is synchronous and runs off the packet path.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsFd;

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

/// How relay sockets are made.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RelayOpts {
    /// SO_RCVBUF/SO_SNDBUF (0 = kernel default).
    pub(crate) buffer: usize,
    /// Port range (inclusive); `None` = an ephemeral port chosen by the kernel.
    pub(crate) ports: Option<(u16, u16)>,
}

/// Attempts at a free port of a configured relay port range.
const RANGE_ATTEMPTS: usize = 64;

/// The wildcard address of `ip`'s family.
pub(crate) fn unspecified_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    }
}

/// A relay socket with an ephemeral port (an even one when `even`) or a port of the configured
/// range, bound to every interface of `ip`'s family as upstream does; the returned address (what
/// XOR-RELAYED-ADDRESS carries) is `ip` with that port, so `ip` may be an address the host does not
/// own (a NAT'd public IP).
pub(crate) fn relay_socket(
    ip: IpAddr,
    even: bool,
    opts: RelayOpts,
) -> io::Result<(UdpSocket, SocketAddr)> {
    if let Some(range) = opts.ports {
        return relay_in_range(ip, even, opts.buffer, range);
    }
    let attempts = if even { EVEN_PORT_ATTEMPTS } else { 1 };
    let any = SocketAddr::new(unspecified_like(ip), 0);
    for _ in 0..attempts {
        let sock = new_socket(any, Type::DGRAM, Protocol::UDP)?;
        set_buffers(&sock, opts.buffer);
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

/// A relay socket on a random free port of `lo..=hi` (an even one when `even`).
fn relay_in_range(
    ip: IpAddr,
    even: bool,
    buffer: usize,
    (lo, hi): (u16, u16),
) -> io::Result<(UdpSocket, SocketAddr)> {
    let span = u32::from(hi - lo) + 1;
    let start: u32 = rand::random::<u32>() % span;
    let candidates = (0..span)
        .map(|i| lo + u16::try_from((start + i) % span).unwrap_or(0))
        .filter(|p| !even || p % 2 == 0)
        .take(RANGE_ATTEMPTS);
    for port in candidates {
        let any = SocketAddr::new(unspecified_like(ip), port);
        let sock = new_socket(any, Type::DGRAM, Protocol::UDP)?;
        set_buffers(&sock, buffer);
        if sock.bind(&any.into()).is_ok() {
            return Ok((sock.into(), SocketAddr::new(ip, port)));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no free port in the relay port range",
    ))
}

/// Two relay sockets on `ip`: an even port and the odd port right above it (EVEN-PORT with the R
/// bit, RFC 8656 §7.2).
pub(crate) fn relay_pair(
    ip: IpAddr,
    opts: RelayOpts,
) -> io::Result<((UdpSocket, SocketAddr), (UdpSocket, SocketAddr))> {
    for _ in 0..EVEN_PORT_ATTEMPTS {
        let (even, addr) = relay_socket(ip, true, opts)?;
        let Some(next) = addr.port().checked_add(1) else {
            continue;
        };
        if opts.ports.is_some_and(|(_, hi)| next > hi) {
            continue;
        }
        let odd = SocketAddr::new(ip, next);
        let odd_any = SocketAddr::new(unspecified_like(ip), next);
        let sock = new_socket(odd_any, Type::DGRAM, Protocol::UDP)?;
        set_buffers(&sock, opts.buffer);
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
pub(crate) fn send_now(sock: &impl AsFd, data: &[u8], to: SocketAddr) -> io::Result<usize> {
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
            relay_socket("127.0.0.1".parse().expect("ip"), true, RelayOpts::default())
                .expect("relay");
        assert_eq!(local.port() % 2, 0);
        // Bound to every interface, advertised with the given IP.
        let bound = relay.local_addr().expect("addr");
        assert!(bound.ip().is_unspecified() && bound.port() == local.port());
        assert_eq!(local.ip().to_string(), "127.0.0.1");
        assert_eq!(local_ip_towards(addr).expect("route"), addr.ip());
        let ((_, even), (odd_sock, odd)) =
            relay_pair("127.0.0.1".parse().expect("ip"), RelayOpts::default()).expect("pair");
        assert_eq!(even.port() % 2, 0);
        assert_eq!(odd.port(), even.port() + 1);
        assert_eq!(odd_sock.local_addr().expect("addr").port(), odd.port());
        let advertised = relay_socket(
            "203.0.113.7".parse().expect("ip"),
            false,
            RelayOpts::default(),
        );
        assert_eq!(
            advertised.expect("a foreign IP binds").1.ip().to_string(),
            "203.0.113.7"
        );
    }

    #[test]
    fn relay_ports_stay_in_the_configured_range() {
        let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = probe.local_addr().expect("addr").port();
        drop(probe);
        let (lo, hi) = (port, port.saturating_add(3));
        let opts = RelayOpts {
            buffer: 0,
            ports: Some((lo, hi)),
        };
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let mut held = Vec::new();
        while let Ok((sock, addr)) = relay_socket(ip, false, opts) {
            assert!((lo..=hi).contains(&addr.port()), "{addr}");
            held.push(sock);
            assert!(held.len() <= 4, "more sockets than ports");
        }
        assert!(!held.is_empty());
    }
}
