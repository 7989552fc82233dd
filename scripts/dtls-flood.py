#!/usr/bin/env python3
"""A bounded DTLS ClientHello flood against a running stunnerd's TURN-DTLS listener (issue 13,
finding 6): SOURCES sockets on 127.0.0.2 each send ROUNDS well-formed ClientHellos without a
cookie; prints the HelloVerifyRequests that came back, bytes each way, the server's RSS before,
at its peak and after, the associations gauge, and how long a real handshake (openssl s_client)
took during the flood.

    python3 scripts/dtls-flood.py PORT STUNNERD_PID METRICS_URL [SOURCES=1000] [ROUNDS=300]
"""
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request


def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def metric(url, name):
    text = urllib.request.urlopen(url).read().decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith(name + "{") and "dtls" in l)


def hello(i):
    """A DTLS 1.2 ClientHello record (no cookie) offering ECDHE-ECDSA-AES128-GCM."""
    body = b"\xfe\xfd" + struct.pack(">I", i) * 8 + b"\x00\x00" + b"\x00\x04\xc0\x2b\x00\xff\x01\x00"
    ext = bytes([0, 0x0a, 0, 6, 0, 4, 0, 29, 0, 23, 0, 0x0d, 0, 4, 0, 2, 4, 3, 0, 0x17, 0, 0])
    body += struct.pack(">H", len(ext)) + ext
    n = len(body).to_bytes(3, "big")
    msg = b"\x01" + n + b"\x00\x00\x00\x00\x00" + n + body
    return bytes([22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0]) + struct.pack(">H", len(msg)) + msg


def drain(sock, seen):
    while True:
        try:
            seen[0] += 1
            seen[1] += len(sock.recv(2048))
        except BlockingIOError:
            seen[0] -= 1
            return


def main():
    port, pid, url = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    sources = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 300
    socks = []
    for _ in range(sources):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.2", 0))
        s.setblocking(False)
        socks.append(s)
    real = [None]

    def handshake():
        time.sleep(0.5)
        t = time.time()
        out = subprocess.run(
            f"timeout 10 openssl s_client -dtls1_2 -connect 127.0.0.1:{port} </dev/null 2>/dev/null",
            shell=True, capture_output=True, text=True).stdout
        real[0] = (time.time() - t, "BEGIN CERTIFICATE" in out)

    before, peak, sent, out_bytes, seen = rss(pid), 0, 0, 0, [0, 0]
    started = time.time()
    th = threading.Thread(target=handshake)
    th.start()
    for r in range(rounds):
        for i, s in enumerate(socks):
            h = hello(r * sources + i)
            try:
                s.sendto(h, ("127.0.0.1", port))
                sent, out_bytes = sent + 1, out_bytes + len(h)
            except BlockingIOError:
                pass
        for s in socks:
            drain(s, seen)
        if r % 10 == 0:
            peak = max(peak, rss(pid))
    time.sleep(0.5)
    for s in socks:
        drain(s, seen)
    th.join()
    took = time.time() - started
    print(f"ClientHellos sent {sent} in {took:.1f} s ({sent / took:.0f}/s) from {sources} sources; "
          f"HelloVerifyRequests back {seen[0]}; bytes back/sent {seen[1] / max(out_bytes, 1):.2f}")
    print(f"RSS before {before} KiB, peak {max(peak, before)} KiB, after {rss(pid)} KiB; open associations "
          f"{metric(url, 'stunner_listener_connections')}")
    print(f"a real handshake during the flood: {real[0][0]:.2f} s, certificate received: {real[0][1]}")


if __name__ == "__main__":
    main()
