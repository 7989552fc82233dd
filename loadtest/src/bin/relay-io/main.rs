//! `relay-io`: decides by measurement whether an io_uring driver would cut stunnerd's relay CPU
//! (issue 17). It owns only this measurement: it rebuilds the relay path's socket I/O on loopback,
//! without stunnerd, and compares, per datagram, the CPU of the one thread doing it.
//!
//! - send side (client→peer): datagrams leave round-robin from N relay sockets to one sink,
//!   B at a time (what one `recvmmsg` wake-up hands the relay): `sendto` once per datagram
//!   (stunnerd today) vs `uring-send`, B IORING_OP_SEND entries with a destination address
//!   submitted and reaped with one `io_uring_enter`;
//! - receive side (peer→client): another thread offers datagrams round-robin to the N sockets in
//!   bursts of B at a bounded rate: `epoll-recvmmsg` (edge-triggered epoll, then `recvmmsg` with
//!   8 slots per ready socket, stunnerd today) vs `uring-multishot`, one multishot
//!   IORING_OP_RECVMSG per socket drawing from one provided-buffer ring.
//!
//! The measuring thread is pinned to `--cpu` (1), the sink / offering thread to `--peer-cpu`
//! (0). CPU is `getrusage(RUSAGE_THREAD)` of the measuring thread; syscalls are counted at each
//! call site. Loopback delivery runs in the sender's context: on the send side it is inside the
//! measured CPU (both modes), on the receive side it is in the offering thread's ("other threads"
//! column, with any io_uring worker). Modes alternate within each repetition (A B, then B A).
//! io_uring is probed first (sysctl, `io_uring_setup` EPERM/ENOSYS under seccomp, opcodes, a
//! real multishot receive); when it is unavailable the log says why and the uring modes are
//! skipped.
//!
//! ```text
//! cargo build --release -p loadtest --bin relay-io
//! target/release/relay-io                                   # N 1000,10000 × B 8,32,64, 3 reps
//! target/release/relay-io --sockets 100 --batches 8 --packets 20000 --reps 1 --json
//! target/release/relay-io --no-uring                        # the fallback alone
//! ```

mod probe;
mod recv;
mod report;
mod run;
mod send;
mod sys;

use std::time::Duration;

use clap::{Parser, ValueEnum};
use loadtest::sys::ffi::raise_nofile_limit;
use loadtest::{Error, Result};

use crate::probe::Support;
use crate::report::{Key, Results, json_line, json_skip};
use crate::run::{Mode, RunConfig};

/// Which side of the relay path to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Side {
    Send,
    Recv,
    Both,
}

/// Compares sendto/epoll against io_uring on relay-like UDP sockets (loopback only).
#[derive(Parser, Debug)]
#[command(name = "relay-io")]
struct Args {
    /// Relay socket counts (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    sockets: Vec<usize>,
    /// Batch sizes: datagrams per submission (send) or per offered burst (receive).
    #[arg(long, value_delimiter = ',', default_value = "8,32,64")]
    batches: Vec<usize>,
    /// Datagrams per run.
    #[arg(long, default_value_t = 400_000)]
    packets: u64,
    /// Datagram payload bytes (160: an audio frame).
    #[arg(long, default_value_t = 160)]
    size: usize,
    /// Offered rate of the receive side, datagrams/s.
    #[arg(long, default_value_t = 200_000)]
    rate: u64,
    /// Repetitions of every cell (modes alternate within each).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Which side to measure.
    #[arg(long, value_enum, default_value = "both")]
    side: Side,
    /// Skip io_uring (measure the epoll/sendto fallback alone).
    #[arg(long)]
    no_uring: bool,
    /// CPU of the measuring thread.
    #[arg(long, default_value_t = 1)]
    cpu: usize,
    /// CPU of the sink / offering thread.
    #[arg(long, default_value_t = 0)]
    peer_cpu: usize,
    /// A run gives up after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// Print one JSON line per run (and per skipped mode) on stdout before the tables.
    #[arg(long)]
    json: bool,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run_all(&args) {
        eprintln!("relay-io: {e}");
        std::process::exit(if e.is_config() { 64 } else { 1 });
    }
}

fn run_all(args: &Args) -> Result<()> {
    check(args)?;
    let support = if args.no_uring {
        Support::none("disabled by --no-uring")
    } else {
        probe::probe()
    };
    eprintln!("relay-io: {}", support.describe());
    let modes = modes(args.side, &support, args.json);
    let nofile = raise_nofile_limit().map_err(|e| Error::io("raise RLIMIT_NOFILE", e))?;
    let mut results = Results::default();
    for rep in 0..args.reps {
        for &sockets in &args.sockets {
            if sockets as u64 + 64 > nofile {
                eprintln!("relay-io: N={sockets} skipped: RLIMIT_NOFILE is {nofile}");
                continue;
            }
            for &batch in &args.batches {
                let cfg = config(args, sockets, batch);
                for mode in order(&modes, rep) {
                    measure(mode, cfg, rep, args.json, &mut results)?;
                }
            }
        }
    }
    println!("{}", results.tables());
    Ok(())
}

fn check(args: &Args) -> Result<()> {
    let bad = |what: &str| Err(Error::Config(what.to_owned()));
    if args.sockets.contains(&0) || args.batches.contains(&0) {
        return bad("--sockets and --batches must be positive");
    }
    if args.batches.iter().any(|&b| b > 4096) {
        return bad("--batches above 4096 do not fit one submission queue");
    }
    if args.packets == 0 || args.reps == 0 || args.size == 0 || args.size > 1400 {
        return bad("--packets and --reps must be positive and --size 1..=1400");
    }
    Ok(())
}

/// The modes to run, in their A-before-B order; the skipped ones are reported here.
fn modes(side: Side, support: &Support, json: bool) -> Vec<Mode> {
    let wanted = |m: Mode| side == Side::Both || (side == Side::Send) == (m.side() == "send");
    let mut out = Vec::new();
    for mode in Mode::ALL.into_iter().filter(|&m| wanted(m)) {
        let available = match mode {
            Mode::UringSend => &support.send,
            Mode::UringMultishot => &support.multishot,
            _ => &Ok(()),
        };
        match available {
            Ok(()) => out.push(mode),
            Err(reason) => {
                eprintln!("relay-io: {} skipped: {reason}", mode.name());
                if json {
                    println!("{}", json_skip(mode, reason));
                }
            }
        }
    }
    out
}

/// Each side's pair in A B order on even repetitions and B A on odd ones.
fn order(modes: &[Mode], rep: usize) -> Vec<Mode> {
    let mut out = modes.to_vec();
    if rep % 2 == 1 {
        for pair in out.chunk_by_mut(|a, b| a.side() == b.side()) {
            pair.reverse();
        }
    }
    out
}

fn config(args: &Args, sockets: usize, batch: usize) -> RunConfig {
    RunConfig {
        sockets,
        batch,
        packets: args.packets,
        size: args.size,
        rate: args.rate,
        cpu: args.cpu,
        peer_cpu: args.peer_cpu,
        timeout: Duration::from_secs(args.timeout_secs),
    }
}

fn measure(
    mode: Mode,
    cfg: RunConfig,
    rep: usize,
    json: bool,
    results: &mut Results,
) -> Result<()> {
    let sample = match mode.side() {
        "send" => send::run(mode, cfg)?,
        _ => recv::run(mode, cfg)?,
    };
    let key = Key {
        side: mode.side(),
        sockets: cfg.sockets,
        batch: cfg.batch,
        mode,
    };
    eprintln!(
        "relay-io: rep {rep} {} N={} B={}: {}/{} datagrams, {:.3} CPU-s, {} syscalls",
        mode.name(),
        cfg.sockets,
        cfg.batch,
        sample.received,
        sample.sent,
        sample.cpu.total().as_secs_f64(),
        sample.syscalls
    );
    if json {
        println!("{}", json_line(&key, rep, &sample));
    }
    results.add(key, sample);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_repetitions_swap_each_sides_pair() {
        let all = Mode::ALL.to_vec();
        assert_eq!(order(&all, 0), all);
        let swapped = vec![
            Mode::UringSend,
            Mode::Sendto,
            Mode::UringMultishot,
            Mode::EpollRecvmmsg,
        ];
        assert_eq!(order(&all, 1), swapped);
        let fallback = vec![Mode::Sendto, Mode::EpollRecvmmsg];
        assert_eq!(order(&fallback, 1), fallback);
    }
}
