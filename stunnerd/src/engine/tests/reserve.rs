//! EVEN-PORT and RESERVATION-TOKEN (RFC 8656 §7.2): the R bit makes the driver reserve port + 1 and
//! the response carry the token; a later Allocate with the token gets that port or 508.

use super::*;

fn token_of(resp: &[u8]) -> Option<[u8; 8]> {
    Message::decode(resp).expect("decode").reservation_token()
}

#[test]
fn even_port_with_r_bit_returns_a_token_that_allocates_once() {
    let (mut rig, cred) = static_rig();
    let first = rig.req(Method::Allocate, None, |b| {
        b.requested_transport(17);
    });
    assert_eq!(rig.feed(client(1), &first), Outcome::Err(401));
    let m = rig.req(Method::Allocate, cred, |b| {
        b.requested_transport(17).even_port(true);
    });
    let Outcome::Ok(resp) = rig.feed(client(1), &m) else {
        panic!("EVEN-PORT allocate failed")
    };
    assert_eq!(token_of(&resp), Some([9; 8]));
    // Retransmission repeats the token.
    let again = rig.req_tid(Method::Allocate, TransactionId([rig.tid; 12]), cred, |b| {
        b.requested_transport(17).even_port(true);
    });
    let Outcome::Ok(resp) = rig.feed(client(1), &again) else {
        panic!("retransmission failed")
    };
    assert_eq!(token_of(&resp), Some([9; 8]));
    // The token allocates (from another 5-tuple), once.
    let m = rig.req(Method::Allocate, cred, |b| {
        b.requested_transport(17).reservation_token([9; 8]);
    });
    let Outcome::Ok(resp) = rig.feed(client(2), &m) else {
        panic!("token allocate failed")
    };
    assert_eq!(token_of(&resp), None);
    let m = rig.req(Method::Allocate, cred, |b| {
        b.requested_transport(17).reservation_token([9; 8]);
    });
    assert_eq!(rig.feed(client(3), &m), Outcome::Err(508));
    assert_eq!(rig.e.allocation_count(), 2);
}

#[test]
fn even_port_without_r_bit_issues_no_token() {
    let (mut rig, cred) = static_rig();
    let first = rig.req(Method::Allocate, None, |b| {
        b.requested_transport(17);
    });
    rig.feed(client(1), &first);
    let m = rig.req(Method::Allocate, cred, |b| {
        b.requested_transport(17).even_port(false);
    });
    let now = rig.now;
    let Action::Allocate(rq) = rig.e.handle_client(now, L, client(1), &m, &mut rig.out) else {
        panic!("expected allocate")
    };
    assert!(rq.even_port && !rq.reserve && rq.reservation.is_none());
}

#[test]
fn token_conflicts_are_400_and_unknown_tokens_508() {
    let (mut rig, cred) = static_rig();
    let first = rig.req(Method::Allocate, None, |b| {
        b.requested_transport(17);
    });
    rig.feed(client(1), &first);
    let m = rig.req(Method::Allocate, cred, |b| {
        b.requested_transport(17)
            .reservation_token([1; 8])
            .even_port(false);
    });
    assert_eq!(rig.feed(client(1), &m), Outcome::Err(400));
    let m = rig.req(Method::Allocate, cred, |b| {
        b.requested_transport(17)
            .reservation_token([1; 8])
            .requested_address_family(Family::V4);
    });
    assert_eq!(rig.feed(client(1), &m), Outcome::Err(400));
    let m = rig.req(Method::Allocate, cred, |b| {
        b.requested_transport(17).reservation_token([1; 8]);
    });
    assert_eq!(rig.feed(client(1), &m), Outcome::Err(508));
    assert_eq!(rig.e.allocation_count(), 0);
}
