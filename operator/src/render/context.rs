//! The per-render context: the snapshot and options plus the indexes every Gateway render reads
//! (the effective routes and their index by Gateway, the rendered cluster of each route, the
//! public Services and Node address). Built in one go from the modules below it ([`routes`],
//! [`cluster`], [`address`]); it owns no logic of its own.
//!
//! [`routes`]: super::routes
//! [`cluster`]: super::cluster
//! [`address`]: super::address

use std::collections::HashMap;

use super::address::Addresses;
use super::cluster::{self, ClusterResult};
use super::options::RenderOptions;
use super::routes::{self, Route};
use crate::store::{ObjectKey, Snapshot};

/// Indexes built once per render.
pub(crate) struct Context<'a> {
    /// The snapshot.
    pub(crate) snap: &'a Snapshot,
    /// Render inputs.
    pub(crate) opts: &'a RenderOptions,
    /// Effective routes, ordered by key.
    pub(crate) routes: Vec<Route<'a>>,
    /// Route indexes by the Gateway keys their parentRefs name.
    pub(crate) routes_by_gateway: HashMap<ObjectKey, Vec<usize>>,
    /// The rendered cluster of each route, by route index.
    pub(crate) clusters: Vec<ClusterResult>,
    /// Where each Gateway's listeners are reachable from outside.
    pub(crate) addresses: Addresses<'a>,
}

impl<'a> Context<'a> {
    /// Builds the indexes.
    pub(crate) fn new(snap: &'a Snapshot, opts: &'a RenderOptions) -> Self {
        let routes = routes::effective(snap);
        let routes_by_gateway = routes::by_gateway(&routes);
        let clusters = cluster::render_all(snap, opts.require_backend_grants, &routes);
        Self {
            snap,
            opts,
            routes,
            routes_by_gateway,
            clusters,
            addresses: Addresses::new(snap),
        }
    }
}
