//! stunnerd: the STUNner dataplane daemon, a TURN server (RFC 8656) for Kubernetes media gateways.
//!
//! ```text
//!  main.rs (flags, tracing) ─▶ run(Options)
//!      config_source (file / CDS) ──configs──▶ run loop ──apply──▶ driver (workers ▶ engine)
//!      signals / admin drain ───────────────▶ control (state, drain) ◀── admin server (/ready …)
//!      metrics (prometheus-client) ◀── per-worker counters, shared allocation counters
//! ```

pub mod admin;
pub mod cli;
pub mod config_source;
pub mod control;
pub mod driver;
pub mod engine;
#[doc(hidden)]
pub mod fuzzing;
pub mod limits;
pub mod logging;
pub mod metrics;
mod run;
mod servers;

pub use run::{LogLevelSetter, Options, RunError, run};
