//! Full permission and channel tables (`MAX_PERMISSIONS` / `MAX_CHANNELS` = 256): lookups stay exact
//! on the first and the last binding, expiry frees numbers and peers, "bound differently" and 508
//! still hold; plus the ignored callgrind harness of the relay path at 1 vs 256 channels
//! (`callgrind_relay_on_channel_*`).

use super::*;

type Cred = Option<(&'static str, [u8; 16])>;

/// The i-th peer: a distinct IP in 10.0.0.0/8 (inside the rig's routes), port 5000.
fn nth_peer(i: u16) -> SocketAddr {
    SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 5000))
}

fn bind(rig: &mut Rig, cred: Cred, n: u16, p: SocketAddr) -> Outcome {
    let m = rig.req(Method::ChannelBind, cred, |b| {
        b.channel_number(n).xor_peer_address(p);
    });
    rig.feed(client(1), &m)
}

fn permit(rig: &mut Rig, cred: Cred, p: SocketAddr) -> Outcome {
    let m = rig.req(Method::CreatePermission, cred, |b| {
        b.xor_peer_address(p);
    });
    rig.feed(client(1), &m)
}

/// What relaying the test payload to `p` looks like.
fn relayed(p: SocketAddr) -> Outcome {
    Outcome::Relayed(50001, p, b"media".to_vec())
}

#[track_caller]
fn assert_ok(out: Outcome) {
    assert!(matches!(out, Outcome::Ok(_)), "{out:?}");
}

fn channel_data(n: u16) -> Vec<u8> {
    let mut cd = Vec::new();
    encode_channel_data(&mut cd, n, b"media", false).expect("encode");
    cd
}

/// ChannelData from the client on channel `n`.
fn client_sends(rig: &mut Rig, n: u16) -> Outcome {
    rig.feed(client(1), &channel_data(n))
}

/// A datagram from `p` to the relay of `id`: the ChannelData number the client gets, 0 for a Data
/// indication, None when dropped.
fn peer_sends(rig: &mut Rig, id: AllocId, p: SocketAddr) -> Option<u16> {
    if !rig.e.handle_peer(rig.now, id, p, b"back", &mut rig.out) {
        return None;
    }
    Some(match Message::decode(&rig.out) {
        Ok(_) => 0,
        Err(_) => u16::from_be_bytes([rig.out[0], rig.out[1]]),
    })
}

/// Keeps the allocation of client 1 alive for an hour.
fn long_lifetime(rig: &mut Rig, cred: Cred) {
    let m = rig.req(Method::Refresh, cred, |b| {
        b.lifetime(3600);
    });
    assert_ok(rig.feed(client(1), &m));
}

/// Binds channels `0x4000 + i` to `nth_peer(i)` for `i` in `range`.
fn bind_range(rig: &mut Rig, cred: Cred, range: std::ops::Range<u16>) {
    for i in range {
        assert_ok(bind(rig, cred, 0x4000 + i, nth_peer(i)));
    }
}

/// A rig whose client 1 has an allocation with `n` channels (and so `n` permissions).
fn rig_with_channels(n: u16) -> (Rig, Cred, AllocId) {
    let (mut rig, cred) = static_rig();
    let id = rig.allocate(client(1), cred);
    bind_range(&mut rig, cred, 0..n);
    (rig, cred, id)
}

#[test]
fn full_tables_relay_on_the_first_and_last_binding() {
    let (mut rig, cred, id) = rig_with_channels(256);
    for i in [0, 1, 128, 254, 255] {
        assert_eq!(client_sends(&mut rig, 0x4000 + i), relayed(nth_peer(i)));
        assert_eq!(peer_sends(&mut rig, id, nth_peer(i)), Some(0x4000 + i));
    }
    assert_eq!(client_sends(&mut rig, 0x4100), Outcome::Dropped, "unbound");
    // Permitted IP, other port: no channel, so a Data indication.
    let other_port = SocketAddr::from(([10, 1, 0, 255], 6000));
    assert_eq!(peer_sends(&mut rig, id, other_port), Some(0));
    assert_eq!(
        peer_sends(&mut rig, id, nth_peer(256)),
        None,
        "no permission"
    );
    // A refresh of the last binding at full tables is fine.
    assert_ok(bind(&mut rig, cred, 0x40FF, nth_peer(255)));
}

#[test]
fn full_tables_answer_508_to_one_more() {
    let (mut rig, cred, _) = rig_with_channels(256);
    assert_eq!(
        bind(&mut rig, cred, 0x4100, nth_peer(256)),
        Outcome::Err(508)
    );
    assert_eq!(permit(&mut rig, cred, nth_peer(256)), Outcome::Err(508));
    assert_eq!(client_sends(&mut rig, 0x4100), Outcome::Dropped);
    // Permissions alone: 256 fit, the 257th does not, refreshing one still works.
    let (mut rig, cred) = static_rig();
    let id = rig.allocate(client(1), cred);
    for i in 0..256 {
        assert_ok(permit(&mut rig, cred, nth_peer(i)));
    }
    assert_eq!(permit(&mut rig, cred, nth_peer(256)), Outcome::Err(508));
    assert_ok(permit(&mut rig, cred, nth_peer(0)));
    assert_eq!(peer_sends(&mut rig, id, nth_peer(255)), Some(0));
    assert_eq!(peer_sends(&mut rig, id, nth_peer(256)), None);
}

#[test]
fn bound_differently_is_400_with_full_tables() {
    let (mut rig, cred, id) = rig_with_channels(256);
    // Number bound to another peer, peer bound to another number, both ways round.
    assert_eq!(bind(&mut rig, cred, 0x40FF, nth_peer(0)), Outcome::Err(400));
    assert_eq!(
        bind(&mut rig, cred, 0x4000, nth_peer(255)),
        Outcome::Err(400)
    );
    assert_eq!(
        bind(&mut rig, cred, 0x4100, nth_peer(200)),
        Outcome::Err(400)
    );
    assert_eq!(
        bind(&mut rig, cred, 0x4080, nth_peer(300)),
        Outcome::Err(400)
    );
    // Nothing changed.
    assert_eq!(peer_sends(&mut rig, id, nth_peer(0)), Some(0x4000));
    assert_eq!(peer_sends(&mut rig, id, nth_peer(255)), Some(0x40FF));
    assert_eq!(client_sends(&mut rig, 0x4080), relayed(nth_peer(0x80)));
}

#[test]
fn expired_bindings_free_their_number_and_peer_at_full_tables() {
    let (mut rig, cred) = static_rig();
    let id = rig.allocate(client(1), cred);
    long_lifetime(&mut rig, cred);
    bind_range(&mut rig, cred, 0..2);
    // The other 254 bindings come 300 s later, so only 0x4000 and 0x4001 expire at 601 s.
    rig.now += Duration::from_secs(300);
    bind_range(&mut rig, cred, 2..256);
    // Move the clock without a purge: the bind itself must drop the expired bindings.
    rig.now += Duration::from_secs(301);
    assert_eq!(client_sends(&mut rig, 0x4000), Outcome::Dropped, "expired");
    assert_eq!(
        peer_sends(&mut rig, id, nth_peer(1)),
        None,
        "permission expired"
    );
    // 0x4000's number and 0x4001's peer, both expired, make one new binding.
    assert_ok(bind(&mut rig, cred, 0x4000, nth_peer(1)));
    assert_eq!(client_sends(&mut rig, 0x4000), relayed(nth_peer(1)));
    assert_eq!(peer_sends(&mut rig, id, nth_peer(1)), Some(0x4000));
    assert_eq!(client_sends(&mut rig, 0x4001), Outcome::Dropped);
    // 255 bindings: one more fits (the old peer of 0x4000 on 0x4001), then 508.
    assert_ok(bind(&mut rig, cred, 0x4001, nth_peer(0)));
    assert_eq!(peer_sends(&mut rig, id, nth_peer(0)), Some(0x4001));
    assert_eq!(
        bind(&mut rig, cred, 0x4100, nth_peer(256)),
        Outcome::Err(508)
    );
    // A purge keeps every live binding reachable (the late ones' permissions expired at 600 s).
    rig.advance(1);
    for i in [2, 128, 255] {
        let relayed = relayed(nth_peer(i));
        assert_eq!(client_sends(&mut rig, 0x4000 + i), relayed);
        assert_eq!(peer_sends(&mut rig, id, nth_peer(i)), None);
    }
    assert_eq!(peer_sends(&mut rig, id, nth_peer(1)), Some(0x4000));
    // After 900 s the late bindings expire too and the purge empties the tables.
    rig.advance(300);
    assert_eq!(client_sends(&mut rig, 0x40FF), Outcome::Dropped);
    bind_range(&mut rig, cred, 100..101);
    assert_eq!(peer_sends(&mut rig, id, nth_peer(100)), Some(0x4064));
}

#[test]
fn filter_change_recomputes_verdicts_of_every_channel() {
    let (mut rig, _, id) = rig_with_channels(256);
    rig.e.set_filter(L, PeerFilter::deny_all());
    assert_eq!(client_sends(&mut rig, 0x40FF), Outcome::Dropped);
    assert_eq!(peer_sends(&mut rig, id, nth_peer(0)), None);
    rig.e.set_filter(L, filter());
    assert_eq!(client_sends(&mut rig, 0x40FF), relayed(nth_peer(255)));
    assert_eq!(peer_sends(&mut rig, id, nth_peer(0)), Some(0x4000));
}

#[test]
fn table_finds_every_key_as_it_grows_and_shrinks() {
    let ip = |i: u16| nth_peer(i).ip();
    let finds = |t: &table::Table<alloc::Permission>, i: u16| t.get(ip(i)).is_some();
    let mut t = table::Table::default();
    for i in 0..300 {
        t.push(alloc::Permission {
            ip: ip(i),
            expires: Instant::now(),
        });
        assert!((0..=i).all(|j| finds(&t, j)), "after push {i}");
        assert!(!finds(&t, i + 1));
    }
    t.retain(|p| ip(150) <= p.ip);
    assert!((0..150).all(|j| !finds(&t, j)) && (150..300).all(|j| finds(&t, j)));
    // Down to a scanned table and up again.
    t.retain(|p| p.ip < ip(155));
    assert_eq!(t.len(), 5);
    assert!((150..155).all(|j| finds(&t, j)) && !finds(&t, 155));
    for i in 0..20 {
        t.push(alloc::Permission {
            ip: ip(i),
            expires: Instant::now(),
        });
    }
    assert!((0..20).chain(150..155).all(|j| finds(&t, j)) && !finds(&t, 20));
}

/// How many packets each direction of the `callgrind_relay_*` harness relays.
const PACKETS: u32 = 10_000;

/// Calls `relay_one` [`PACKETS`] times; returns how often it relayed.
#[inline(always)]
fn relay_all(mut relay_one: impl FnMut() -> bool) -> u32 {
    (0..PACKETS).map(|_| u32::from(relay_one())).sum()
}

/// Relays [`PACKETS`] ChannelData on channel `n` from the client.
#[inline(never)]
fn relay_client_to_peer(rig: &mut Rig, n: u16) -> u32 {
    let cd = channel_data(n);
    relay_all(|| {
        let action = rig
            .e
            .handle_client(rig.now, L, client(1), &cd, &mut rig.out);
        matches!(action, Action::Relay { .. })
    })
}

/// Relays [`PACKETS`] datagrams from `p` to the client.
#[inline(never)]
fn relay_peer_to_client(rig: &mut Rig, id: AllocId, p: SocketAddr) -> u32 {
    relay_all(|| rig.e.handle_peer(rig.now, id, p, b"media", &mut rig.out))
}

/// Relays both ways on the last of `n` channels (`relay_*` functions, [`PACKETS`] each).
fn relay_on_the_last_of(n: u16) {
    let (mut rig, _, id) = rig_with_channels(n);
    assert_eq!(relay_client_to_peer(&mut rig, 0x4000 + n - 1), PACKETS);
    assert_eq!(relay_peer_to_client(&mut rig, id, nth_peer(n - 1)), PACKETS);
}

/// Not timing tests: the engine's relay path with 1 and with 256 channels (traffic on the last-bound
/// one), for callgrind. Ir per packet = inclusive Ir of `relay_client_to_peer` or
/// `relay_peer_to_client` / `PACKETS` (10 000):
///
/// ```text
/// nice -n 19 cargo test --release -p stunnerd --lib --no-run    # prints target/release/deps/stunnerd-<hash>
/// for n in 1 256; do nice -n 19 valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n \
///     target/release/deps/stunnerd-<hash> --ignored --exact \
///     engine::tests::tables::callgrind_relay_on_channel_$n --test-threads=1
///   callgrind_annotate --inclusive=yes /tmp/cg.$n | grep relay_; done
/// ```
#[test]
#[ignore = "callgrind harness: run under valgrind, see relay_on_the_last_of"]
fn callgrind_relay_on_channel_1() {
    relay_on_the_last_of(1);
}

/// See [`relay_on_the_last_of`].
#[test]
#[ignore = "callgrind harness: run under valgrind, see relay_on_the_last_of"]
fn callgrind_relay_on_channel_256() {
    relay_on_the_last_of(256);
}
