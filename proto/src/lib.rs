//! Every byte that crosses a process boundary, and no I/O: the wire contracts shared by stunnerd,
//! the operator, the scaler and the load generator.
//!
//! ```text
//!   turn     STUN/TURN messages and ChannelData (RFC 8489 / RFC 8656), sans-IO and zero-copy
//!   config   stunnerd config v1 (upstream STUNner's schema), validation, defaults, CDS types
//!   admin    stunnerd's /status and drain JSON
//!   auth     the ICE/TURN credential API (upstream stunner-auth-service), TURN REST credentials
//!   keda     KEDA's externalscaler gRPC service (tonic/prost generated; feature `keda`)
//!   tls      the one rustls crypto provider every TLS endpoint speaks with
//! ```

pub mod admin;
pub mod auth;
pub mod config;
#[cfg(feature = "keda")]
pub mod keda;
pub mod tls;
pub mod turn;
