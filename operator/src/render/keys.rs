//! Label and annotation keys and values shared with upstream: the names the operator writes on
//! (and reads from) cluster objects, in one place.

/// Label marking objects created by the operator.
pub const OWNED_BY: &str = "stunner.l7mp.io/owned-by";
/// Value of [`OWNED_BY`].
pub const OWNED_BY_VALUE: &str = "stunner";
/// Label (gateway name) and annotation (`ns/name`) linking an object to its Gateway.
pub const RELATED_GATEWAY_NAME: &str = "stunner.l7mp.io/related-gateway-name";
/// Label linking an object to its Gateway's namespace.
pub const RELATED_GATEWAY_NAMESPACE: &str = "stunner.l7mp.io/related-gateway-namespace";
/// App label of dataplane pods.
pub const APP: &str = "app";
/// Value of [`APP`].
pub const APP_VALUE: &str = "stunner";
/// Service type of the Gateway's Service (default LoadBalancer).
pub const SERVICE_TYPE: &str = "stunner.l7mp.io/service-type";
/// `"true"`: put UDP and TCP listeners into one LoadBalancer Service.
pub const MIXED_PROTOCOL: &str = "stunner.l7mp.io/enable-mixed-protocol-lb";
/// `"local"`: `externalTrafficPolicy: Local`.
pub const EXTERNAL_TRAFFIC_POLICY: &str = "stunner.l7mp.io/external-traffic-policy";
/// JSON map listener name → nodePort.
pub const NODEPORT: &str = "stunner.l7mp.io/nodeport";
/// JSON map listener name → targetPort.
pub const TARGETPORT: &str = "stunner.l7mp.io/targetport";
/// `"true"`: `sessionAffinity: None` instead of ClientIP.
pub const DISABLE_SESSION_AFFINITY: &str = "stunner.l7mp.io/disable-session-affinity";
/// `"true"`: do not add the health-check port to a LoadBalancer Service even when a
/// `service.beta.kubernetes.io/…health…port` annotation asks for one.
pub const DISABLE_HEALTH_CHECK_EXPOSE: &str = "stunner.l7mp.io/disable-health-check-expose";
/// Prefix of the cloud load-balancer annotations read for the health-check port/protocol.
pub const CLOUD_LB_PREFIX: &str = "service.beta.kubernetes.io/";
/// `"true"`: do not run a Deployment for this Gateway.
pub const DISABLE_MANAGED_DATAPLANE: &str = "stunner.l7mp.io/disable-managed-dataplane";
