//! Leader election through a `coordination.k8s.io/v1` Lease: only the holder writes to the
//! cluster, so two operator replicas are safe. Every replica keeps rendering and serving CDS.
//!
//! A replica takes the Lease when it is absent, unheld, or not renewed within its duration, and
//! renews it while holding it; all writes carry the resourceVersion read, so two replicas racing
//! for an expired Lease cannot both win (the loser gets 409 Conflict).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::{Api, Client};

/// Lease-based leader elector.
#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

impl LeaderElector {
    /// An elector for Lease `namespace/name`, identifying as `identity`.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.into(),
            identity: identity.into(),
            duration,
        }
    }

    /// How often to call [`LeaderElector::try_acquire_or_renew`]: a third of the lease duration.
    pub fn retry_period(&self) -> Duration {
        self.duration / 3
    }

    /// One election round at time `now`: whether this replica holds the Lease afterwards.
    pub async fn try_acquire_or_renew(&self, now: Timestamp) -> Result<bool, kube::Error> {
        let current = match self.api.get(&self.name).await {
            Ok(l) => l,
            Err(kube::Error::Api(e)) if e.code == 404 => return self.create(now).await,
            Err(e) => return Err(e),
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let mine = holder == self.identity;
        if !mine && !holder.is_empty() && !self.expired(&spec, now) {
            return Ok(false);
        }
        let mut next = current;
        next.spec = Some(self.spec(now, mine, &spec));
        match self
            .api
            .replace(&self.name, &PostParams::default(), &next)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn expired(&self, spec: &LeaseSpec, now: Timestamp) -> bool {
        let secs = spec
            .lease_duration_seconds
            .map_or(self.duration.as_secs() as i64, i64::from);
        match &spec.renew_time {
            Some(MicroTime(t)) => *t + SignedDuration::from_secs(secs) < now,
            None => true,
        }
    }

    fn spec(&self, now: Timestamp, renewing: bool, old: &LeaseSpec) -> LeaseSpec {
        let transitions = old.lease_transitions.unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: if renewing {
                old.acquire_time.clone()
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if renewing {
                transitions
            } else {
                transitions + 1
            }),
            ..Default::default()
        }
    }

    async fn create(&self, now: Timestamp) -> Result<bool, kube::Error> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                lease_transitions: Some(0),
                ..self.spec(now, false, &LeaseSpec::default())
            }),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}
