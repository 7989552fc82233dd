//! Whether io_uring can be used here, and if not, why: the sysctl, `io_uring_setup` itself (a
//! seccomp profile answers EPERM or ENOSYS), the opcodes, and a real multishot receive.

use std::fs;
use std::io;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use io_uring::{IoUring, Probe, opcode};

use crate::sys::{Multishot, new_ring};

/// What the uring modes can use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Support {
    /// `Err(reason)` when batched sends cannot run.
    pub(crate) send: Result<(), String>,
    /// `Err(reason)` when multishot receive with a buffer ring cannot run.
    pub(crate) multishot: Result<(), String>,
    /// Whether rings get DEFER_TASKRUN (completion work on the submitting thread only).
    pub(crate) defer_taskrun: bool,
}

impl Support {
    /// Nothing available, for `reason`.
    pub(crate) fn none(reason: &str) -> Self {
        Self {
            send: Err(reason.to_owned()),
            multishot: Err(reason.to_owned()),
            defer_taskrun: false,
        }
    }

    /// One line for the log.
    pub(crate) fn describe(&self) -> String {
        match (&self.send, &self.multishot) {
            (Ok(()), Ok(())) => format!(
                "io_uring available (batched IORING_OP_SEND, multishot RECVMSG with a buffer ring; \
                 DEFER_TASKRUN {})",
                if self.defer_taskrun {
                    "on"
                } else {
                    "unsupported"
                }
            ),
            (Err(e), Err(_)) => format!(
                "io_uring unavailable: {e}; uring-send and uring-multishot are skipped and only \
                 the epoll/sendto fallback is measured"
            ),
            (Ok(()), Err(e)) => format!("io_uring sends available; multishot receive is not: {e}"),
            (Err(e), Ok(())) => format!("io_uring multishot available; sends are not: {e}"),
        }
    }
}

/// Probes io_uring once (a few milliseconds).
pub(crate) fn probe() -> Support {
    if let Some(reason) = sysctl_refusal() {
        return Support::none(&reason);
    }
    let ring = match IoUring::new(8) {
        Ok(ring) => ring,
        Err(e) => return Support::none(&setup_refusal(&e)),
    };
    let mut ops = Probe::new();
    if let Err(e) = ring.submitter().register_probe(&mut ops) {
        return Support::none(&format!("IORING_REGISTER_PROBE failed ({e})"));
    }
    let defer_taskrun = matches!(new_ring(8, 16), Ok((_, true)));
    let send = if ops.is_supported(opcode::Send::CODE) {
        Ok(())
    } else {
        Err("the kernel has no IORING_OP_SEND".to_owned())
    };
    let multishot = if ops.is_supported(opcode::RecvMsg::CODE) {
        multishot_works().map_err(|e| format!("multishot RECVMSG self-test failed ({e})"))
    } else {
        Err("the kernel has no IORING_OP_RECVMSG".to_owned())
    };
    Support {
        send,
        multishot,
        defer_taskrun,
    }
}

/// `kernel.io_uring_disabled`: 0 allowed, 1 only for `kernel.io_uring_group`, 2 disabled.
fn sysctl_refusal() -> Option<String> {
    let text = fs::read_to_string("/proc/sys/kernel/io_uring_disabled").ok()?;
    match text.trim() {
        "2" => Some("kernel.io_uring_disabled = 2 (io_uring is off system-wide)".to_owned()),
        // Level 1 still lets CAP_SYS_ADMIN and the sysctl's group in; io_uring_setup decides.
        _ => None,
    }
}

fn setup_refusal(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) => "io_uring_setup: EPERM (refused by a seccomp profile, or \
                              kernel.io_uring_disabled = 1 and not in io_uring_group)"
            .to_owned(),
        Some(libc::ENOSYS) => "io_uring_setup: ENOSYS (kernel without io_uring, or a seccomp \
                               profile that hides it, as many container runtimes' defaults do)"
            .to_owned(),
        _ => format!("io_uring_setup failed: {e}"),
    }
}

/// Arms one multishot receive, sends it two datagrams, and expects both back with the request
/// still armed.
fn multishot_works() -> io::Result<()> {
    let rx = UdpSocket::bind("127.0.0.1:0")?;
    let tx = UdpSocket::bind("127.0.0.1:0")?;
    let mut ms = Multishot::new(8, 256)?;
    ms.arm(0, rx.as_raw_fd())?;
    ms.submit()?;
    tx.send_to(b"probe", rx.local_addr()?)?;
    tx.send_to(b"probe", rx.local_addr()?)?;
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut got = 0;
    while got < 2 && Instant::now() < deadline {
        ms.wait(Duration::from_millis(100))?;
        got += ms.reap(&[rx.as_raw_fd()], |p| debug_assert_eq!(p, b"probe"))?;
    }
    match (got, ms.rearms) {
        (2, 0) => Ok(()),
        (2, _) => Err(io::Error::other("the request ended after one datagram")),
        _ => Err(io::Error::other(format!("{got} of 2 datagrams received"))),
    }
}
