//! Operating-system helpers: `/proc` readers, socket construction, the raw batch syscalls, and
//! the optional-deadline sleep the tokio drivers share.

pub mod ffi;
pub mod procfs;
pub mod sockets;

use std::time::Instant;

/// Sleeps until `t`, or forever when there is no deadline (a `select!` branch that never fires).
pub(crate) async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
