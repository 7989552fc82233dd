//! What one worker thread owns: its engine shard (whose allocations hold [`Relay`] handles), the
//! receive/send buffers every task of the worker borrows between awaits, and the handles it shares
//! with the other workers (reservations, live relay addresses, connection counts, limits). Nothing
//! here is touched by another thread on the packet path.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use mio::Token;
use tokio::net::UdpSocket;
use tokio::task::AbortHandle;

use super::batch::RecvBatch;
use super::conns::ConnLimits;
use super::poller::RelayPoll;
use super::reserve::Reservations;
use super::sink::{ClientBatch, UdpClient};
use super::sockets;
use crate::engine::special::RelayAddrs;
use crate::engine::{AllocId, Engine, RelayError};
use crate::limits::Limits;

/// Largest datagram we receive (a full-size UDP payload).
pub(crate) const RX_BUF: usize = 65_536;

/// An allocation's relay socket. Dropping it (when the engine frees the allocation) stops reading
/// it, closes it and frees the port.
pub(crate) struct Relay {
    sock: RelaySock,
    /// Where the socket is registered as one of the server's own addresses.
    own: Option<(SocketAddr, Arc<RelayAddrs>)>,
}

/// How a relay socket is read.
enum RelaySock {
    /// By the worker's relay poll (the client is a TURN-UDP client).
    Polled {
        sock: Rc<std::net::UdpSocket>,
        token: Token,
        poll: Rc<RelayPoll>,
    },
    /// By a task of its own (the client is on a connection: frames are written by awaiting).
    Task {
        sock: Rc<UdpSocket>,
        task: Cell<Option<AbortHandle>>,
    },
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").finish_non_exhaustive()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        match &self.sock {
            RelaySock::Polled { token, poll, .. } => poll.remove(*token),
            RelaySock::Task { task, .. } => {
                if let Some(task) = task.take() {
                    task.abort();
                }
            }
        }
        if let Some((addr, relays)) = self.own.take() {
            relays.remove(addr);
        }
    }
}

impl Relay {
    /// A relay socket (bound on `addr`) read by the worker's relay poll on behalf of `client`.
    pub(crate) fn polled(
        sock: std::net::UdpSocket,
        addr: SocketAddr,
        relays: &Arc<RelayAddrs>,
        poll: &Rc<RelayPoll>,
        client: UdpClient,
    ) -> Result<Self, RelayError> {
        let sock = Rc::new(sock);
        let token = poll
            .register(sock.clone(), client)
            .map_err(|_| RelayError::Capacity)?;
        relays.insert(addr);
        Ok(Self {
            sock: RelaySock::Polled {
                sock,
                token,
                poll: poll.clone(),
            },
            own: Some((addr, relays.clone())),
        })
    }

    /// A relay socket (bound on `addr`) registered with the worker's runtime, for a reader task.
    pub(crate) fn tasked(
        sock: std::net::UdpSocket,
        addr: SocketAddr,
        relays: &Arc<RelayAddrs>,
    ) -> Result<Self, RelayError> {
        let sock = UdpSocket::from_std(sock).map_err(|_| RelayError::Capacity)?;
        relays.insert(addr);
        Ok(Self {
            sock: RelaySock::Task {
                sock: Rc::new(sock),
                task: Cell::new(None),
            },
            own: Some((addr, relays.clone())),
        })
    }

    /// Sends one datagram to `peer` now (see [`sockets::send_now`]).
    #[inline]
    pub(crate) fn send_to(&self, data: &[u8], peer: SocketAddr) -> io::Result<usize> {
        match &self.sock {
            RelaySock::Polled { sock, .. } => sockets::send_now(&**sock, data, peer),
            RelaySock::Task { sock, .. } => sockets::send_now(&**sock, data, peer),
        }
    }

    /// Ties the relay to its allocation: the poll's entry learns the id, or `spawn` is given the
    /// runtime-registered socket and makes the reader task (aborted when the handle is dropped).
    pub(crate) fn attach(
        &self,
        id: AllocId,
        spawn: impl FnOnce(Rc<UdpSocket>) -> Option<AbortHandle>,
    ) {
        match &self.sock {
            RelaySock::Polled { token, poll, .. } => poll.set_alloc(*token, id),
            RelaySock::Task { sock, task } => task.set(spawn(sock.clone())),
        }
    }
}

/// Per-worker buffers, borrowed only between awaits.
#[derive(Debug, Default)]
pub(crate) struct Bufs {
    /// Received datagrams (one `recvmmsg`).
    pub(crate) rx: RecvBatch,
    /// What the engine writes (a response, or ChannelData / a Data indication for a client).
    pub(crate) out: Vec<u8>,
    /// Datagrams for TURN-UDP clients (flushed before every await).
    pub(crate) tx: ClientBatch,
}

/// What a worker shares with the others and the control plane.
#[derive(Debug, Clone)]
pub(crate) struct SharedEnv {
    /// SO_RCVBUF/SO_SNDBUF of relay sockets.
    pub(crate) socket_buffer: usize,
    /// Reserved relay ports (EVEN-PORT / RESERVATION-TOKEN).
    pub(crate) reservations: Arc<Reservations>,
    /// Live relay addresses of all workers (refused as peers).
    pub(crate) relays: Arc<RelayAddrs>,
    /// Connection limits and timeouts, relay port range.
    pub(crate) limits: Arc<Limits>,
    /// Open connections per listener and client IP, of all workers.
    pub(crate) conns: Arc<ConnLimits>,
}

/// State of one worker thread.
#[derive(Debug)]
pub(crate) struct Shard {
    pub(crate) engine: RefCell<Engine<Relay>>,
    pub(crate) bufs: RefCell<Bufs>,
    /// The relay sockets of TURN-UDP clients.
    pub(crate) relay_poll: Rc<RelayPoll>,
    pub(crate) env: SharedEnv,
}

impl Shard {
    /// A shard around `engine` with fresh buffers (on the worker's runtime).
    pub(crate) fn new(engine: Engine<Relay>, env: SharedEnv) -> io::Result<Self> {
        Ok(Self {
            engine: RefCell::new(engine),
            bufs: RefCell::new(Bufs {
                out: Vec::with_capacity(RX_BUF + 64),
                ..Bufs::default()
            }),
            relay_poll: Rc::new(RelayPoll::new()?),
            env,
        })
    }
}
