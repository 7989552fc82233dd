#!/usr/bin/env python3
"""How long a TURN server holds each relayed packet, read off a loopback packet capture.

The swarm's round-trip time includes the load generator's own queueing: one generator thread plays
every client and the echo peer, so a reply waits behind the records of other clients that arrived
with it (and the faster the server answers, the sooner it joins that queue). This script takes the
generator out: it captures loopback UDP with tcpdump while a load runs, and measures, from the
kernel's timestamps, the two legs only the server is responsible for:

  client --(in)--> server --(to peer)--> peer        leg 1: in -> to peer
  client <-(out)-- server <-(from peer)- peer        leg 2: from peer -> out

Packets are paired first in, first out within each leg (the relay keeps arrival order per flow;
across flows a pair can be off by a neighbour, which moves the median by little). A GSO send shows
as one captured datagram of k records; it counts as k departures at its timestamp.

Usage (root; tcpdump installed):
  scripts/relay-residence.py --port 5349 --size 100 \\
      --server 'taskset -c 1 target/release/stunnerd -c bench.yaml --udp-thread-num 1' \\
      -- target/release/loadtest swarm 'turn://u:p@127.0.0.1:5349?transport=dtls' -i \\
         -n 50 -r 200 -s 100 -d 10s --cpus 0 --progress none
Prints a JSON line: per leg the pair count and p50/p90/p99 in microseconds.
"""

import argparse
import collections
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

LINE = re.compile(
    r"(\d+\.\d+) IP 127\.0\.0\.1\.(\d+) > 127\.0\.0\.1\.(\d+): UDP, length (\d+)"
)


def parse(path):
    """(time, src port, dst port, length) of every loopback IPv4 UDP datagram captured."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if m:
                out.append((float(m[1]), int(m[2]), int(m[3]), int(m[4])))
    return out


def events(pkts, port, size):
    """The capture as a time-ordered list of (leg event, time)."""
    peers = collections.Counter()
    for _, s, d, n in pkts:
        if port not in (s, d) and n == size:
            peers[s] += 1
            peers[d] += 1
    if not peers:
        sys.exit(f"no relayed datagrams of {size} bytes in the capture")
    peer = peers.most_common(1)[0][0]
    rec_in = collections.Counter(n for _, s, d, n in pkts if d == port).most_common(1)[0][0]
    rec_out = collections.Counter(n for _, s, d, n in pkts if s == port).most_common(1)[0][0]
    ev = []
    for t, s, d, n in pkts:
        if d == port and n == rec_in:
            ev.append(("in", t))
        elif d == peer and n == size:
            ev.append(("to_peer", t))
        elif s == peer and n == size:
            ev.append(("from_peer", t))
        elif s == port and n % rec_out == 0:
            ev.extend(("out", t) for _ in range(n // rec_out))
    return ev


def pair(ev, first, then):
    """Microseconds from each `first` event to the `then` event paired with it (FIFO)."""
    queue, out = collections.deque(), []
    for kind, t in ev:
        if kind == first:
            queue.append(t)
        elif kind == then and queue:
            out.append((t - queue.popleft()) * 1e6)
    return out


def summary(xs):
    xs = sorted(xs)
    if not xs:
        return {"pairs": 0}
    q = lambda p: round(xs[min(len(xs) - 1, int(p * len(xs)))], 1)
    return {"pairs": len(xs), "p50": q(0.5), "p90": q(0.9), "p99": q(0.99)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True, help="the server's client-facing port")
    ap.add_argument("--size", type=int, default=100, help="payload bytes of the load")
    ap.add_argument("--server", help="command that starts the server (killed at the end)")
    ap.add_argument("load", nargs=argparse.REMAINDER, help="-- the load command")
    a = ap.parse_args()
    load = a.load[1:] if a.load[:1] == ["--"] else a.load
    if not load:
        ap.error("no load command after --")
    if shutil.which("tcpdump") is None:
        sys.exit("tcpdump not found (apt-get install tcpdump), and the capture needs root")
    server = (
        subprocess.Popen(shlex.split(a.server), stdout=subprocess.DEVNULL)
        if a.server
        else None
    )
    with tempfile.NamedTemporaryFile("w+", suffix=".txt") as cap:
        dump = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-n", "-tt", "-B", "65536", "udp"],
            stdout=cap,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.5)
            subprocess.run(load, check=True, stdout=subprocess.DEVNULL)
        finally:
            dump.terminate()
            dump.wait()
            if server:
                server.terminate()
                server.wait()
        ev = events(parse(cap.name), a.port, a.size)
    legs = {
        "client_to_peer": summary(pair(ev, "in", "to_peer")),
        "peer_to_client": summary(pair(ev, "from_peer", "out")),
        "echo_peer": summary(pair(ev, "to_peer", "from_peer")),
    }
    print(json.dumps(legs))


if __name__ == "__main__":
    main()
