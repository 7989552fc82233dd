//! Condition helpers: build `metav1.Condition`s that keep their `lastTransitionTime` while their
//! status does not change, so re-renders of an unchanged cluster produce identical statuses (and
//! the updater writes nothing).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// A condition type this operator writes (Gateway API's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CondType {
    /// `Accepted`.
    Accepted,
    /// `Programmed`.
    Programmed,
    /// `ResolvedRefs`.
    ResolvedRefs,
    /// `Conflicted`.
    Conflicted,
}

impl CondType {
    /// The type as the API spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "Accepted",
            Self::Programmed => "Programmed",
            Self::ResolvedRefs => "ResolvedRefs",
            Self::Conflicted => "Conflicted",
        }
    }
}

/// A condition reason this operator writes (Gateway API's, CamelCase).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// `Accepted`.
    Accepted,
    /// `Programmed`.
    Programmed,
    /// `ResolvedRefs`.
    ResolvedRefs,
    /// `Invalid`.
    Invalid,
    /// `InvalidParameters`.
    InvalidParameters,
    /// `Pending`.
    Pending,
    /// `AddressNotAssigned`.
    AddressNotAssigned,
    /// `UnsupportedProtocol`.
    UnsupportedProtocol,
    /// `PortUnavailable`.
    PortUnavailable,
    /// `ProtocolConflict`.
    ProtocolConflict,
    /// `NoConflicts`.
    NoConflicts,
    /// `InvalidRouteKinds`.
    InvalidRouteKinds,
    /// `NotAllowedByListeners`.
    NotAllowedByListeners,
    /// `NoMatchingParent`.
    NoMatchingParent,
    /// `InvalidKind`.
    InvalidKind,
    /// `RefNotPermitted`.
    RefNotPermitted,
    /// `BackendNotFound`.
    BackendNotFound,
    /// `InvalidCertificateRef`.
    InvalidCertificateRef,
}

impl Reason {
    /// The reason as the API spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "Accepted",
            Self::Programmed => "Programmed",
            Self::ResolvedRefs => "ResolvedRefs",
            Self::Invalid => "Invalid",
            Self::InvalidParameters => "InvalidParameters",
            Self::Pending => "Pending",
            Self::AddressNotAssigned => "AddressNotAssigned",
            Self::UnsupportedProtocol => "UnsupportedProtocol",
            Self::PortUnavailable => "PortUnavailable",
            Self::ProtocolConflict => "ProtocolConflict",
            Self::NoConflicts => "NoConflicts",
            Self::InvalidRouteKinds => "InvalidRouteKinds",
            Self::NotAllowedByListeners => "NotAllowedByListeners",
            Self::NoMatchingParent => "NoMatchingParent",
            Self::InvalidKind => "InvalidKind",
            Self::RefNotPermitted => "RefNotPermitted",
            Self::BackendNotFound => "BackendNotFound",
            Self::InvalidCertificateRef => "InvalidCertificateRef",
        }
    }
}

/// What a condition says, before it is stamped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cond {
    /// Condition type.
    pub(crate) type_: CondType,
    /// True or False.
    pub(crate) ok: bool,
    /// Reason.
    pub(crate) reason: Reason,
    /// Human-readable message.
    pub(crate) message: String,
}

impl Cond {
    /// A condition that is True.
    pub(crate) fn yes(type_: CondType, reason: Reason, message: impl Into<String>) -> Self {
        Self {
            type_,
            ok: true,
            reason,
            message: message.into(),
        }
    }

    /// A condition that is False.
    pub(crate) fn no(type_: CondType, reason: Reason, message: impl Into<String>) -> Self {
        Self {
            type_,
            ok: false,
            reason,
            message: message.into(),
        }
    }
}

/// Stamps `conds` with `generation` and a transition time: the previous one when the previous
/// condition of that type had the same status, `now` otherwise.
pub(crate) fn stamp(
    conds: Vec<Cond>,
    previous: &[Condition],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    conds
        .into_iter()
        .map(|c| {
            let status = if c.ok { "True" } else { "False" };
            let since = previous
                .iter()
                .find(|p| p.type_ == c.type_.as_str() && p.status == status)
                .map_or_else(|| now.clone(), |p| p.last_transition_time.clone());
            Condition {
                type_: c.type_.as_str().into(),
                status: status.into(),
                reason: c.reason.as_str().into(),
                message: c.message,
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn transition_time_kept_only_while_status_unchanged() {
        let first = stamp(
            vec![Cond::yes(CondType::Accepted, Reason::Accepted, "ok")],
            &[],
            Some(1),
            &at(10),
        );
        assert_eq!(first[0].last_transition_time, at(10));
        let same = stamp(
            vec![Cond::yes(CondType::Accepted, Reason::Accepted, "ok")],
            &first,
            Some(2),
            &at(20),
        );
        assert_eq!(same[0].last_transition_time, at(10));
        assert_eq!(same[0].observed_generation, Some(2));
        let flipped = stamp(
            vec![Cond::no(CondType::Accepted, Reason::Invalid, "bad")],
            &same,
            Some(2),
            &at(30),
        );
        assert_eq!(flipped[0].last_transition_time, at(30));
        assert_eq!(flipped[0].status, "False");
    }
}
