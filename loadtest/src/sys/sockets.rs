//! Socket construction with the buffer sizes a load generator needs (the kernel
//! default of ~208 KB drops packets at around 10k messages/s).

use std::io;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

fn domain(addr: SocketAddr) -> Domain {
    if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    }
}

/// The wildcard address (port 0) of `remote`'s family: where a client socket to it binds.
pub fn unspecified_for(remote: SocketAddr) -> SocketAddr {
    if remote.is_ipv4() {
        "0.0.0.0:0".parse()
    } else {
        "[::]:0".parse()
    }
    .unwrap_or(remote)
}

/// Sets SO_RCVBUF and SO_SNDBUF (best effort: the kernel caps them at rmem_max/wmem_max).
fn set_buffers(sock: &Socket, bytes: usize) {
    if bytes > 0 {
        let _ = sock.set_recv_buffer_size(bytes);
        let _ = sock.set_send_buffer_size(bytes);
    }
}

/// A non-blocking UDP socket bound to `bind` with `buf_bytes` socket buffers.
pub fn udp_bound(bind: SocketAddr, buf_bytes: usize) -> io::Result<UdpSocket> {
    let sock = Socket::new(domain(bind), Type::DGRAM, Some(Protocol::UDP))?;
    set_buffers(&sock, buf_bytes);
    sock.bind(&SockAddr::from(bind))?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

/// A non-blocking UDP socket on an ephemeral port, connected to `server` (so the kernel filters
/// out everything else and sends need no address).
pub fn udp_connected(server: SocketAddr, buf_bytes: usize) -> io::Result<UdpSocket> {
    let sock = udp_bound(unspecified_for(server), buf_bytes)?;
    sock.connect(server)?;
    Ok(sock)
}

/// A blocking TCP connection to `server` with a connect timeout, then switched to non-blocking
/// with TCP_NODELAY (TURN over TCP carries small real-time frames).
pub fn tcp_connected(
    server: SocketAddr,
    buf_bytes: usize,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let sock = Socket::new(domain(server), Type::STREAM, Some(Protocol::TCP))?;
    set_buffers(&sock, buf_bytes);
    sock.connect_timeout(&SockAddr::from(server), timeout)?;
    sock.set_tcp_nodelay(true)?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

/// Picks a currently free port on `ip` for both UDP and TCP (bind to port 0 and release; racy by
/// nature but adequate for starting test servers on loopback).
pub fn free_port(ip: std::net::IpAddr) -> io::Result<u16> {
    for _ in 0..20 {
        let udp = UdpSocket::bind(SocketAddr::new(ip, 0))?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind(SocketAddr::new(ip, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no free port found",
    ))
}
