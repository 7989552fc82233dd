//! Operating-system helpers: `/proc` readers, socket construction, and the raw batch syscalls.

pub mod ffi;
pub mod procfs;
pub mod sockets;
