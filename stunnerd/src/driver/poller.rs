//! One readiness source for all relay sockets of a worker that serve TURN-UDP clients: a nested
//! epoll instance (`mio::Poll`) holding every such socket, whose own descriptor the worker's runtime
//! watches. One wake-up of the worker's relay task then yields every relay socket that has data
//! (up to [`EVENTS`] per call), however many allocations there are, instead of one task wake-up
//! per socket. The table maps each registration token to its allocation and client; tokens carry a
//! generation, so an event of a socket already gone never reaches a newer one in the same slot.
//!
//! ```text
//!   relay sockets ──(edge-triggered)──▶ mio::Poll ──its fd──▶ tokio AsyncFd ──▶ relay::serve_polled
//!                                            └─ Token(slot, generation) ─▶ Entry { alloc, client }
//! ```

use std::cell::RefCell;
use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use tokio::io::unix::AsyncFd;

use super::sink::UdpClient;
use crate::engine::AllocId;

/// Readiness events taken per call.
pub(crate) const EVENTS: usize = 256;

/// A registered relay socket.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The relay socket.
    pub(crate) sock: Rc<std::net::UdpSocket>,
    /// Its allocation (set once the engine has created it).
    pub(crate) alloc: Option<AllocId>,
    /// Where peer data goes.
    pub(crate) client: UdpClient,
}

#[derive(Debug, Default)]
struct Table {
    slots: Vec<(u32, Option<Entry>)>,
    free: Vec<u32>,
}

/// The relay poll of one worker.
pub(crate) struct RelayPoll {
    /// The poll instance's readiness, watched by the runtime through a registry handle (its own
    /// duplicate of the instance's descriptor).
    ready: AsyncFd<mio::Registry>,
    poll: RefCell<Poll>,
    events: RefCell<Events>,
    table: RefCell<Table>,
}

impl std::fmt::Debug for RelayPoll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayPoll")
            .field("sockets", &self.table.borrow().slots.len())
            .finish_non_exhaustive()
    }
}

fn token(slot: u32, generation: u32) -> Token {
    Token((usize::try_from(generation).unwrap_or(0) << 32) | slot as usize)
}

fn slot_of(t: Token) -> (usize, u32) {
    (
        t.0 & 0xffff_ffff,
        u32::try_from(t.0 >> 32).unwrap_or(u32::MAX),
    )
}

impl RelayPoll {
    /// A new poll instance, watched by the current runtime.
    pub(crate) fn new() -> io::Result<Self> {
        let poll = Poll::new()?;
        let handle = poll.registry().try_clone()?;
        // SAFETY: the `Registry` owns its descriptor (a duplicate of the poll instance's), which
        // stays open and the same for as long as the `AsyncFd` owns the `Registry`.
        #[allow(unsafe_code)]
        let ready = unsafe {
            AsyncFd::register_with_interest(handle, tokio::io::Interest::READABLE)
                .map_err(io::Error::from)?
        };
        Ok(Self {
            ready,
            poll: RefCell::new(poll),
            events: RefCell::new(Events::with_capacity(EVENTS)),
            table: RefCell::new(Table::default()),
        })
    }

    /// Registers relay socket `sock` (non-blocking) for `client`.
    pub(crate) fn register(
        &self,
        sock: Rc<std::net::UdpSocket>,
        client: UdpClient,
    ) -> io::Result<Token> {
        let mut table = self.table.borrow_mut();
        let slot = match table.free.pop() {
            Some(slot) => slot,
            None => {
                table.slots.push((0, None));
                u32::try_from(table.slots.len() - 1).map_err(|_| io::Error::other("full"))?
            }
        };
        let generation = table.slots[slot as usize].0;
        let t = token(slot, generation);
        let fd = sock.as_raw_fd();
        if let Err(e) =
            self.poll
                .borrow()
                .registry()
                .register(&mut SourceFd(&fd), t, Interest::READABLE)
        {
            table.free.push(slot);
            return Err(e);
        }
        table.slots[slot as usize].1 = Some(Entry {
            sock,
            alloc: None,
            client,
        });
        Ok(t)
    }

    /// Ties a registered socket to its allocation.
    pub(crate) fn set_alloc(&self, t: Token, alloc: AllocId) {
        let (slot, generation) = slot_of(t);
        if let Some((g, Some(e))) = self.table.borrow_mut().slots.get_mut(slot)
            && *g == generation
        {
            e.alloc = Some(alloc);
        }
    }

    /// Forgets a socket (its allocation is gone); the caller closes it.
    pub(crate) fn remove(&self, t: Token) {
        let (slot, generation) = slot_of(t);
        let mut table = self.table.borrow_mut();
        let Some((g, entry)) = table.slots.get_mut(slot) else {
            return;
        };
        if *g != generation {
            return;
        }
        if let Some(e) = entry.take() {
            let fd = e.sock.as_raw_fd();
            let _ = self.poll.borrow().registry().deregister(&mut SourceFd(&fd));
        }
        *g = g.wrapping_add(1);
        if let Ok(slot) = u32::try_from(slot) {
            table.free.push(slot);
        }
    }

    /// Waits until some registered socket may have data, then takes the ready tokens into `out`
    /// (at most [`EVENTS`]); an empty `out` means a spurious wake-up.
    pub(crate) async fn ready(&self, out: &mut Vec<Token>) -> io::Result<()> {
        out.clear();
        let mut guard = self.ready.readable().await?;
        let mut events = self.events.borrow_mut();
        self.poll
            .borrow_mut()
            .poll(&mut events, Some(std::time::Duration::ZERO))?;
        out.extend(events.iter().map(mio::event::Event::token));
        if out.len() < EVENTS {
            // Every ready socket was taken: the poll instance is not readable any more (a socket
            // that gets data from now on raises a new edge).
            guard.clear_ready();
        }
        Ok(())
    }

    /// Runs `f` on the entry of `t`, if it is still registered.
    pub(crate) fn with<R>(&self, t: Token, f: impl FnOnce(&Entry) -> R) -> Option<R> {
        let (slot, generation) = slot_of(t);
        let table = self.table.borrow();
        match table.slots.get(slot) {
            Some((g, Some(e))) if *g == generation => Some(f(e)),
            _ => None,
        }
    }
}
