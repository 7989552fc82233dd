//! `StaticService`: a set of IP prefixes a UDPRoute may route to (all ports).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Spec of a StaticService: the reachable prefixes.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "stunner.l7mp.io",
    version = "v1",
    kind = "StaticService",
    plural = "staticservices",
    namespaced,
    shortname = "ssvc",
    category = "stunner",
    derive = "Default",
    derive = "PartialEq"
)]
pub struct StaticServiceSpec {
    /// IP address prefixes (`10.0.0.0/8`, `1.2.3.4`) reachable via this service.
    pub prefixes: Vec<String>,
}
