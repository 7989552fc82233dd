//! Config Discovery Service (docs/ARCHITECTURE.md §5.2): stunnerd fetches (REST) or watches (WebSocket) the
//! config of its Gateway from the operator.
//!
//! ```text
//!  renderer ─publish─► ConfigStore (watch channel) ─┬─► GET /api/v1/configs[/{ns}[/{name}]]
//!                                                   └─► ?watch=true: WebSocket, one text frame
//!                                                       per changed config (deletions as a
//!                                                       config with only admin.name)
//! ```

mod server;
mod store;

pub use server::{DEFAULT_PORT, router, serve};
pub use store::{ConfigSet, ConfigStore, Selector, diff};
