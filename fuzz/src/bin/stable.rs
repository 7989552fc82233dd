//! A stable-toolchain fuzz loop (no nightly, no libFuzzer): for each target, seeds from
//! `fuzz/corpus/<target>/` plus built-in valid inputs are mutated (bit flips, byte sets, interesting
//! length values, truncation, insertion, duplication, splicing) by a seeded xorshift generator, and
//! every input is run under `catch_unwind`. Prints inputs run and panics per target; exits 1 on any
//! panic, writing the input to `fuzz/artifacts/<target>/`.
//!
//! ```text
//! cargo run --release --bin stable-fuzz -- <target|all> <iterations per target> [seed]
//! ```

use std::path::Path;
use std::time::Instant;

use proto::turn::{
    Class, Family, MessageBuilder, MessageType, Method, TransactionId, attr, encode_channel_data,
};
use stunner_fuzz::TARGETS;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: [u16; 10] = [0, 1, 3, 4, 7, 8, 0x7f, 0xff, 0x7fff, 0xffff];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, pool: &[Vec<u8>]) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            2 if len > 1 => {
                let i = rng.below(len - 1);
                let v = INTERESTING[rng.below(INTERESTING.len())].to_be_bytes();
                input[i..i + 2].copy_from_slice(&v);
            }
            3 => input.truncate(rng.below(len + 1)),
            4 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                input.splice(i..i, bytes);
            }
            5 if len > 0 => {
                let (a, b) = (rng.below(len), rng.below(len));
                let chunk = input[a.min(b)..a.max(b)].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, chunk);
            }
            6 if !pool.is_empty() => {
                let other = &pool[rng.below(pool.len())];
                let cut = rng.below(input.len() + 1);
                let from = rng.below(other.len() + 1);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            _ => {
                if len > 0 {
                    let i = rng.below(len);
                    input[i] = input[i].wrapping_add(1);
                }
            }
        }
        if input.len() > 4096 {
            input.truncate(4096);
        }
    }
}

/// Built-in valid inputs: STUN/TURN requests with every attribute family, ChannelData, DTLS
/// records, configs, CDS answers and drain queries.
fn builtin_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let tid = TransactionId([1; 12]);
    let peer: std::net::SocketAddr = "10.0.0.1:7".parse().expect("addr");
    let peer6: std::net::SocketAddr = "[fd00::1]:7".parse().expect("addr");
    for method in [
        Method::Binding,
        Method::Allocate,
        Method::Refresh,
        Method::CreatePermission,
        Method::ChannelBind,
    ] {
        let mut out = Vec::new();
        let mut b = MessageBuilder::new(&mut out, MessageType::new(Class::Request, method), tid);
        b.requested_transport(attr::TRANSPORT_UDP)
            .lifetime(600)
            .xor_peer_address(peer)
            .xor_peer_address(peer6)
            .channel_number(0x4001)
            .even_port(true)
            .requested_address_family(Family::V4)
            .username("u")
            .realm("stunner.l7mp.io")
            .nonce("00000000aaaaaaaaaaaaaaaa");
        if b.finish_with_integrity(&[7; 16]).is_ok() {
            seeds.push(out);
        }
    }
    let mut out = Vec::new();
    let mut b = MessageBuilder::new(
        &mut out,
        MessageType::new(Class::Indication, Method::Send),
        tid,
    );
    b.xor_peer_address(peer).data(b"hello");
    if b.finish().is_ok() {
        seeds.push(out);
    }
    let mut cd = Vec::new();
    if encode_channel_data(&mut cd, 0x4001, b"payload", true).is_ok() {
        seeds.push(cd);
    }
    // A datagram-per-packet engine sequence: allocate, permission, bind, send, data.
    let mut seq = Vec::new();
    for s in seeds.iter().filter(|s| s.len() < 256) {
        seq.push(s.len() as u8);
        seq.extend_from_slice(s);
    }
    seeds.push(seq);
    let mut hello = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 60, 1];
    hello.resize(13 + 60, 0);
    seeds.push(hello);
    seeds.push(client_hello());
    let mut server_hello = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 60, 2];
    server_hello.resize(13 + 60, 9);
    seeds.push(server_hello);
    let mut app = vec![23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 2, 0, 30];
    app.resize(13 + 30, 5);
    seeds.push(app);
    seeds.push(
        b"version: v1\nadmin: {name: a, user_quota: 5, metrics_endpoint: \"http://:8080/m\"}\n\
auth: {type: ephemeral, realm: r, credentials: {secret: s}}\nlisteners:\n- {name: l, protocol: \
TURN-DTLS, address: $POD_IP, port: 3478, routes: [c], cert: eA==, key: eA==}\nclusters:\n- {name: c, \
type: STRICT_DNS, endpoints: [\"10.0.0.0/8:<1-9>\", example.com, \"::1\"]}\n"
            .to_vec(),
    );
    seeds.push(
        br#"HTTP/1.1 200 OK

{"items":[{"version":"v1","admin":{"name":"ns/gw"},"auth":{"type":"static","credentials":{"username":"u","password":"p"}},"listeners":[{"name":"l","protocol":"TURN-UDP","port":3478,"routes":["c"]}],"clusters":[{"name":"c","endpoints":["10.0.0.0/8"]}]}]}"#
            .to_vec(),
    );
    seeds.push(b"timeout=30&x=1&timeout=18446744073709551615".to_vec());
    seeds
}

/// A well-formed DTLS 1.2 ClientHello record with a cookie and the extensions a WebRTC client
/// sends (supported groups, signature algorithms, EMS, renegotiation info, point formats).
fn client_hello() -> Vec<u8> {
    let mut body = vec![0xfe, 0xfd];
    body.extend_from_slice(&[7; 32]);
    body.extend_from_slice(&[0, 20]);
    body.extend_from_slice(&[3; 20]);
    body.extend_from_slice(&[0, 6, 0xc0, 0x2b, 0xc0, 0x2c, 0x00, 0xff, 1, 0]);
    let exts: &[u8] = &[
        0x00, 0x0a, 0, 6, 0, 4, 0, 29, 0, 23, 0x00, 0x0d, 0, 4, 0, 2, 4, 3, 0x00, 0x17, 0, 0, 0xff,
        0x01, 0, 1, 0, 0x00, 0x0b, 0, 2, 1, 0,
    ];
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(exts);
    let len = (body.len() as u32).to_be_bytes();
    let mut msg = vec![
        1, len[1], len[2], len[3], 0, 1, 0, 0, 0, len[1], len[2], len[3],
    ];
    msg.extend_from_slice(&body);
    let rlen = (msg.len() as u16).to_be_bytes();
    let mut rec = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, rlen[0], rlen[1]];
    rec.extend_from_slice(&msg);
    rec
}

fn load_corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect()
}

fn run(name: &str, target: fn(&[u8]), iterations: u64, seed: u64) -> u64 {
    let mut pool = builtin_seeds();
    pool.extend(load_corpus(name));
    let mut rng = Rng(seed | 1);
    let mut panics = 0;
    let started = Instant::now();
    for i in 0..iterations {
        let mut input = pool[rng.below(pool.len())].clone();
        mutate(&mut rng, &mut input, &pool);
        if std::panic::catch_unwind(|| target(&input)).is_err() {
            panics += 1;
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("artifacts")
                .join(name);
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join(format!("panic-{seed}-{i}")), &input);
            eprintln!("{name}: panic on input #{i}: {input:02x?}");
        } else if i % 64 == 0 && pool.len() < 4096 {
            // Keep some mutants as new seeds so mutations compound.
            pool.push(input);
        }
    }
    println!(
        "{name}: {iterations} inputs, {panics} panics, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    panics
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map_or("all", String::as_str);
    let iterations: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0x5eed);
    // Panics are counted, not printed one by one with a backtrace.
    std::panic::set_hook(Box::new(|_| {}));
    let mut panics = 0;
    let mut known = false;
    for (name, target) in TARGETS {
        if which == "all" || which == name {
            known = true;
            panics += run(name, target, iterations, seed);
        }
    }
    if !known {
        eprintln!("unknown target {which:?}");
        std::process::exit(2);
    }
    if panics > 0 {
        std::process::exit(1);
    }
}
