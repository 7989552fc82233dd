//! STUN/TURN requests: authentication (RFC 8489 §9.2 long-term credentials, 401/438/441), Binding,
//! Allocate (two-phase: checks here, relay socket from the driver, then `complete_allocate`), Refresh,
//! and the error responses they share (CreatePermission and ChannelBind are in `permissions`).

use std::net::SocketAddr;
use std::time::Instant;

use proto::turn::{
    Class, DecodeError, Family, Header, Message, MessageBuilder, MessageType, Method,
    TransactionId, attr, code,
};

use super::alloc::Allocation;
use super::table::Table;
use super::{
    Action, AllocId, AllocOutcome, AllocateRequest, DropReason, Engine, RelayError, SWEEP_INTERVAL,
};

/// Highest channel number a client may bind. RFC 8656 §12 narrows the range to 0x4000-0x4FFF, but
/// RFC 5766 clients (coturn's own `turnutils_uclient` among them) still pick numbers up to 0x7FFF,
/// and ChannelData framing (top bits 01) carries them unambiguously, so we accept the RFC 5766 range
/// like coturn does.
pub(super) const CHANNEL_BIND_MAX: u16 = 0x7FFF;
/// Most unknown attributes listed in a 420 response.
const MAX_UNKNOWN: usize = 16;

/// The request being answered.
pub(super) struct Req {
    pub(super) li: usize,
    pub(super) client: SocketAddr,
    pub(super) method: Method,
    pub(super) tid: TransactionId,
    /// Key to sign the response with, once the request is authenticated.
    pub(super) key: Option<[u8; 16]>,
}

impl<R> Engine<R> {
    /// Writes a response to `req` into `out`: `fill` adds the attributes, then SOFTWARE, integrity
    /// (when the request was authenticated) and FINGERPRINT.
    pub(super) fn respond(
        &self,
        out: &mut Vec<u8>,
        req: &Req,
        class: Class,
        fill: impl FnOnce(&mut MessageBuilder<'_>),
    ) {
        self.build(out, req, class, true, fill);
    }

    /// [`Self::respond`] without SOFTWARE and FINGERPRINT (challenges to unauthenticated requests
    /// stay small).
    pub(super) fn respond_bare(
        &self,
        out: &mut Vec<u8>,
        req: &Req,
        class: Class,
        fill: impl FnOnce(&mut MessageBuilder<'_>),
    ) {
        self.build(out, req, class, false, fill);
    }

    fn build(
        &self,
        out: &mut Vec<u8>,
        req: &Req,
        class: Class,
        software: bool,
        fill: impl FnOnce(&mut MessageBuilder<'_>),
    ) {
        let mut b = MessageBuilder::new(out, MessageType::new(class, req.method), req.tid);
        fill(&mut b);
        if software && req.key.is_some() && !self.cfg.software.is_empty() {
            b.software(&self.cfg.software);
        }
        b.fingerprint(software);
        let sealed = match &req.key {
            Some(key) => b.finish_with_integrity(key),
            None => b.finish(),
        };
        if sealed.is_err() {
            out.clear();
        }
    }

    /// Writes an error response with `code` and `reason` into `out` and returns the reply action.
    pub(super) fn fail<'a>(
        &self,
        out: &mut Vec<u8>,
        req: &Req,
        code: u16,
        reason: &str,
    ) -> Action<'a, R> {
        self.respond(out, req, Class::Error, |b| {
            b.error_code(code, reason);
        });
        self.reply(req.li, out)
    }

    /// A 401 or 438 challenge carrying REALM and a fresh NONCE (never signed).
    fn challenge<'a>(
        &mut self,
        now: Instant,
        out: &mut Vec<u8>,
        req: &Req,
        code: u16,
    ) -> Action<'a, R> {
        let spec = &self.listeners[req.li].spec;
        if !spec.stream && !self.challenges.allow(req.client.ip(), now) {
            return self.dropped(req.li, DropReason::RateLimited);
        }
        let mut nonce = std::mem::take(&mut self.nonce_buf);
        self.nonces
            .issue(&self.shared, now, req.client.ip(), &mut nonce);
        // No reason phrase, SOFTWARE or FINGERPRINT: an answer to an unauthenticated request
        // stays within 3× a minimal Allocate (reflection), with a realm of up to 16 bytes.
        self.respond_bare(out, req, Class::Error, |b| {
            b.error_code(code, "").realm(&self.cfg.realm).nonce(&nonce);
        });
        self.nonce_buf = nonce;
        self.reply(req.li, out)
    }

    /// Answers a Binding request with the client's reflexive address.
    pub(super) fn binding<'a>(
        &self,
        li: usize,
        client: SocketAddr,
        msg: &Message<'_>,
        out: &mut Vec<u8>,
    ) -> Action<'a, R> {
        let req = Req {
            li,
            client,
            method: Method::Binding,
            tid: msg.transaction_id(),
            key: None,
        };
        if let Some(action) = self.unknown_attributes(msg, &req, out) {
            return action;
        }
        self.respond(out, &req, Class::Success, |b| {
            b.xor_mapped_address(client);
        });
        self.reply(li, out)
    }

    /// A 420 response if the request has comprehension-required attributes we do not know.
    fn unknown_attributes<'a>(
        &self,
        msg: &Message<'_>,
        req: &Req,
        out: &mut Vec<u8>,
    ) -> Option<Action<'a, R>> {
        let mut unknown = [0u16; MAX_UNKNOWN];
        let mut n = 0;
        for (slot, typ) in unknown.iter_mut().zip(msg.unknown_comprehension_required()) {
            *slot = typ;
            n += 1;
        }
        if n == 0 {
            return None;
        }
        self.respond(out, req, Class::Error, |b| {
            b.error_code(
                code::UNKNOWN_ATTRIBUTE,
                code::reason(code::UNKNOWN_ATTRIBUTE),
            )
            .unknown_attributes(&unknown[..n]);
        });
        Some(self.reply(req.li, out))
    }

    /// A STUN message that failed to decode: malformed requests get 400 (440 for an unknown address
    /// family); anything else, and bad FINGERPRINTs, are dropped silently (RFC 8489 §6.3).
    pub(super) fn undecodable<'a>(
        &self,
        li: usize,
        client: SocketAddr,
        buf: &[u8],
        error: DecodeError,
        out: &mut Vec<u8>,
    ) -> Action<'a, R> {
        self.listeners[li]
            .spec
            .stats
            .drop_packet(DropReason::Malformed);
        let Ok(h) = Header::decode(buf) else {
            return Action::Drop;
        };
        if h.typ.class != Class::Request {
            return Action::Drop;
        }
        let req = Req {
            li,
            client,
            method: h.typ.method,
            tid: h.tid,
            key: None,
        };
        match error {
            DecodeError::InvalidAttribute {
                typ: attr::REQUESTED_ADDRESS_FAMILY,
                ..
            } => self.fail(
                out,
                &req,
                code::ADDRESS_FAMILY_NOT_SUPPORTED,
                "Unknown address family",
            ),
            DecodeError::InvalidAttribute { .. } | DecodeError::TruncatedAttribute(_) => {
                self.fail(out, &req, code::BAD_REQUEST, "Malformed attribute")
            }
            _ => Action::Drop,
        }
    }

    /// Any request but Binding: authenticate, check attributes, dispatch by method.
    pub(super) fn request<'a>(
        &mut self,
        now: Instant,
        li: usize,
        client: SocketAddr,
        msg: &Message<'_>,
        out: &mut Vec<u8>,
    ) -> Action<'a, R> {
        let method = msg.message_type().method;
        let mut req = Req {
            li,
            client,
            method,
            tid: msg.transaction_id(),
            key: None,
        };
        if !matches!(
            method,
            Method::Allocate | Method::Refresh | Method::CreatePermission | Method::ChannelBind
        ) {
            return self.fail(out, &req, code::BAD_REQUEST, "Unknown method");
        }
        let user = match self.authenticate(now, &mut req, msg, out) {
            Ok(user) => user,
            Err(action) => return action,
        };
        if let Some(action) = self.unknown_attributes(msg, &req, out) {
            return action;
        }
        let existing = self
            .by_client
            .get(&(self.listeners[li].id, client))
            .copied();
        if method == Method::Allocate {
            return self.allocate(&req, msg, user, existing, now, out);
        }
        let Some(id) = existing.filter(|&id| self.allocs.get(id).is_some()) else {
            return self.fail(
                out,
                &req,
                code::ALLOCATION_MISMATCH,
                "No allocation for this 5-tuple",
            );
        };
        if self.allocs.get(id).is_some_and(|a| &*a.username != user) {
            return self.fail(
                out,
                &req,
                code::WRONG_CREDENTIALS,
                "Username differs from the allocation's",
            );
        }
        match method {
            Method::Refresh => self.refresh(&req, msg, id, now, out),
            Method::CreatePermission => self.create_permission(&req, msg, id, now, out),
            _ => self.channel_bind(&req, msg, id, now, out),
        }
    }

    /// Long-term credential check. On success returns the username and sets `req.key`; on failure the
    /// error response is already in `out`.
    fn authenticate<'m, 'a>(
        &mut self,
        now: Instant,
        req: &mut Req,
        msg: &Message<'m>,
        out: &mut Vec<u8>,
    ) -> Result<&'m str, Action<'a, R>> {
        if !self.cfg.auth.required() {
            return Ok(msg.username().unwrap_or(""));
        }
        if !msg.has_integrity() {
            return Err(self.challenge(now, out, req, code::UNAUTHENTICATED));
        }
        let (Some(user), Some(_), Some(nonce)) = (msg.username(), msg.realm(), msg.nonce()) else {
            return Err(self.fail(
                out,
                req,
                code::BAD_REQUEST,
                "Missing USERNAME, REALM or NONCE",
            ));
        };
        if self.nonces.check(&self.shared, now, req.client.ip(), nonce) != Ok(true) {
            return Err(self.challenge(now, out, req, code::STALE_NONCE));
        }
        let key = self
            .cfg
            .auth
            .key_for(user, &self.cfg.realm, self.unix_now(now));
        let key = match key.map(|k| msg.verify_integrity(&k).map(|()| k)) {
            Ok(Ok(key)) => key,
            failure => {
                tracing::debug!(client = %req.client, user, ?failure, "authentication failed");
                if req.method == Method::Allocate {
                    self.shared.record_outcome(AllocOutcome::RejectedAuth);
                }
                return Err(self.challenge(now, out, req, code::UNAUTHENTICATED));
            }
        };
        req.key = Some(key);
        Ok(user)
    }

    /// Allocate, phase one: every check that needs no socket.
    fn allocate<'a>(
        &self,
        req: &Req,
        msg: &Message<'_>,
        user: &str,
        existing: Option<AllocId>,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Action<'a, R> {
        if let Some(a) = existing.and_then(|id| self.allocs.get(id)) {
            if a.alloc_tid != req.tid {
                return self.fail(
                    out,
                    req,
                    code::ALLOCATION_MISMATCH,
                    "Allocation already exists",
                );
            }
            let lifetime = a.expires.saturating_duration_since(now);
            return self.allocate_success(out, req, a.relay_addr, lifetime.as_secs(), a.token);
        }
        match msg.requested_transport() {
            None => return self.fail(out, req, code::BAD_REQUEST, "Missing REQUESTED-TRANSPORT"),
            Some(attr::TRANSPORT_UDP) => {}
            Some(_) => {
                return self.fail(out, req, code::UNSUPPORTED_TRANSPORT, "Only UDP relaying");
            }
        }
        if msg.reservation_token().is_some()
            && (msg.even_port().is_some() || msg.requested_address_family().is_some())
        {
            return self.fail(
                out,
                req,
                code::BAD_REQUEST,
                "RESERVATION-TOKEN with EVEN-PORT or REQUESTED-ADDRESS-FAMILY",
            );
        }
        let (requested, additional) = (
            msg.requested_address_family(),
            msg.additional_address_family(),
        );
        if (requested.is_some() && additional.is_some()) || additional == Some(Family::V4) {
            return self.fail(
                out,
                req,
                code::BAD_REQUEST,
                "Bad address family combination",
            );
        }
        if self.shared.is_draining() {
            self.shared.record_outcome(AllocOutcome::RejectedDraining);
            return self.fail(
                out,
                req,
                code::INSUFFICIENT_CAPACITY,
                "Server is draining, try another server",
            );
        }
        if !user.is_empty() && !self.shared.quota_allows(user, self.cfg.user_quota) {
            self.shared.record_outcome(AllocOutcome::RejectedQuota);
            return self.fail(
                out,
                req,
                code::ALLOCATION_QUOTA_REACHED,
                "User quota reached",
            );
        }
        if let Some(refused) = self.limits_refuse(req, out) {
            return refused;
        }
        Action::Allocate(AllocateRequest {
            listener: self.listeners[req.li].id,
            client: req.client,
            family: requested.unwrap_or(Family::V4),
            even_port: msg.even_port().is_some(),
            reserve: msg.even_port() == Some(true),
            reservation: msg.reservation_token(),
            issued_token: None,
            tid: req.tid,
            username: user.into(),
            key: req.key,
            lifetime: self.cfg.granted_lifetime(msg.lifetime()),
        })
    }

    /// Answers 486 (client IP quota) or 508 (server full) when an allocation would exceed the
    /// per-client-IP or total limit; counted by outcome.
    fn limits_refuse<'a>(&self, req: &Req, out: &mut Vec<u8>) -> Option<Action<'a, R>> {
        if !self.shared.capacity_allows(self.cfg.max_allocations) {
            self.shared.record_outcome(AllocOutcome::RejectedCapacity);
            return Some(self.fail(
                out,
                req,
                code::INSUFFICIENT_CAPACITY,
                "Server allocation limit reached",
            ));
        }
        if !self
            .shared
            .ip_quota_allows(req.client.ip(), self.cfg.client_quota)
        {
            self.shared
                .record_outcome(AllocOutcome::RejectedClientQuota);
            return Some(self.fail(
                out,
                req,
                code::ALLOCATION_QUOTA_REACHED,
                "Client address quota reached",
            ));
        }
        None
    }

    fn allocate_success<'a>(
        &self,
        out: &mut Vec<u8>,
        req: &Req,
        relay: SocketAddr,
        secs: u64,
        token: Option<[u8; 8]>,
    ) -> Action<'a, R> {
        let client = req.client;
        self.respond(out, req, Class::Success, |b| {
            b.xor_relayed_address(relay)
                .lifetime(u32::try_from(secs).unwrap_or(u32::MAX))
                .xor_mapped_address(client);
            if let Some(token) = token {
                b.reservation_token(token);
            }
        });
        self.reply(req.li, out)
    }

    /// Allocate, phase two: `relay` is the driver's socket (or why there is none). Writes the response
    /// into `out` (empty when the listener is gone) and returns the new allocation.
    pub fn complete_allocate(
        &mut self,
        now: Instant,
        rq: AllocateRequest,
        relay: Result<(R, SocketAddr), RelayError>,
        out: &mut Vec<u8>,
    ) -> Option<AllocId> {
        out.clear();
        let li = self.listener_index(rq.listener)?;
        let req = Req {
            li,
            client: rq.client,
            method: Method::Allocate,
            tid: rq.tid,
            key: rq.key,
        };
        let (relay, relay_addr) = match relay {
            Ok(r) => r,
            Err(RelayError::Family) => {
                self.fail(
                    out,
                    &req,
                    code::ADDRESS_FAMILY_NOT_SUPPORTED,
                    "Address family not supported",
                );
                return None;
            }
            Err(RelayError::Capacity) => {
                self.fail(
                    out,
                    &req,
                    code::INSUFFICIENT_CAPACITY,
                    "No relay port available",
                );
                return None;
            }
            Err(RelayError::UnknownReservation) => {
                self.fail(
                    out,
                    &req,
                    code::INSUFFICIENT_CAPACITY,
                    "Unknown or expired reservation",
                );
                return None;
            }
        };
        if self.by_client.contains_key(&(rq.listener, rq.client)) {
            self.fail(
                out,
                &req,
                code::ALLOCATION_MISMATCH,
                "Allocation already exists",
            );
            return None;
        }
        if !rq.username.is_empty() && !self.shared.quota_take(&rq.username, self.cfg.user_quota) {
            self.shared.record_outcome(AllocOutcome::RejectedQuota);
            self.fail(
                out,
                &req,
                code::ALLOCATION_QUOTA_REACHED,
                "User quota reached",
            );
            return None;
        }
        if !self
            .shared
            .ip_quota_take(rq.client.ip(), self.cfg.client_quota)
        {
            self.shared.quota_release(&rq.username);
            self.shared
                .record_outcome(AllocOutcome::RejectedClientQuota);
            self.fail(
                out,
                &req,
                code::ALLOCATION_QUOTA_REACHED,
                "Client address quota reached",
            );
            return None;
        }
        let id = self.allocs.insert(Allocation {
            listener: rq.listener,
            client: rq.client,
            relay,
            relay_addr,
            username: rq.username,
            alloc_tid: rq.tid,
            token: rq.issued_token,
            expires: now + rq.lifetime,
            permissions: Table::default(),
            channels: Table::default(),
        });
        self.by_client.insert((rq.listener, rq.client), id);
        self.shared.allocation_opened();
        self.listeners[li].spec.stats.connections_total.add(1);
        self.next_sweep.get_or_insert(now + SWEEP_INTERVAL);
        tracing::debug!(listener = %self.listeners[li].spec.name, client = %rq.client,
                        relay = %relay_addr, lifetime = rq.lifetime.as_secs(), "allocation created");
        self.allocate_success(
            out,
            &req,
            relay_addr,
            rq.lifetime.as_secs(),
            rq.issued_token,
        );
        Some(id)
    }

    fn refresh<'a>(
        &mut self,
        req: &Req,
        msg: &Message<'_>,
        id: AllocId,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Action<'a, R> {
        let Some(a) = self.allocs.get_mut(id) else {
            return Action::Drop;
        };
        if msg
            .requested_address_family()
            .is_some_and(|f| f != Family::of(&a.relay_addr))
        {
            return self.fail(
                out,
                req,
                code::PEER_ADDRESS_FAMILY_MISMATCH,
                "Address family mismatch",
            );
        }
        let secs = match msg.lifetime() {
            Some(0) => {
                self.close(id, "released by client");
                0
            }
            requested => {
                let lifetime = self.cfg.granted_lifetime(requested);
                a.expires = now + lifetime;
                lifetime.as_secs()
            }
        };
        let secs = u32::try_from(secs).unwrap_or(u32::MAX);
        self.respond(out, req, Class::Success, |b| {
            b.lifetime(secs);
        });
        self.reply(req.li, out)
    }
}
