//! Load-testing tools for TURN servers: `turncat` (a TURN tunnel client), `loadtest swarm` (many
//! allocations relaying timestamped packets through an echo peer), and `loadtest bench`
//! (stunnerd against coturn, side by side).
//!
//! ```text
//!   client        sans-IO TURN client state machine (one allocation), credentials, TCP deframing
//!   peer          UDP echo peer (batched syscalls)
//!   swarm         the load generator: mio event loop per worker thread, report
//!   bench         server process management, profiles, rate search, tables
//!   turncat       the tunnel client (tokio)
//!   demo          the local autoscaling demo (stunnerd fleet + scaler + ramping calls)
//!   sys           /proc readers, socket builders, the one unsafe module (recvmmsg/sendmmsg...)
//!   stats         latency histograms
//!   tls           client-side TLS (rustls) and DTLS (webrtc-rs dtls) for turns:// servers
//! ```

pub mod bench;
pub mod cli;
pub mod client;
pub mod demo;
mod error;
pub mod peer;
pub mod stats;
pub mod swarm;
pub mod sys;
pub mod tls;
pub mod turncat;
pub mod uri;

pub use error::{Error, Result};
