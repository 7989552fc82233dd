#!/usr/bin/env python3
"""The application side of STUNner, browser-style, with aiortc.

Fetches an ICE configuration from stunner-auth's `/ice` endpoint exactly as a web page would
(`new RTCPeerConnection(await (await fetch('/ice?...')).json())`), then connects two peers in
this process over a data channel:

  peer A  the "browser": the ICE servers from `/ice`, iceTransportPolicy "relay", so its only
          candidates are TURN relay candidates allocated on stunnerd;
  peer B  the "media server" inside the cluster: no ICE servers, host candidates on 127.0.0.1
          only (aioice leaves loopback out of host candidates; it is patched in below, as the
          tests stay on loopback).

A sends N messages, B echoes them; the script exits 0 only if every echo came back over a
selected pair whose local (A) candidate is of type relay. Every step is bounded by --timeout.

  usage: webrtc_client.py ICE_URL [--username U] [--messages N] [--timeout S] [--hold] [-v]

ICE_URL is the `/ice` endpoint, optionally with a query (`namespace`, `gateway`, ...);
`service=turn`, `username` and `iceTransportPolicy=relay` are added unless present.
With --hold, after the echoes the script prints `HOLDING` and keeps the connection (and so the
TURN allocation) open until a line or EOF arrives on stdin, so a caller can inspect stunnerd.

Output lines (stdout): `ice-server ...`, `candidate A ...`, `candidate B ...`,
`selected-pair local=<type> <ip>:<port> remote=<type> <ip>:<port>`, `echoed <n>/<N>`, then
`OK` (exit 0) or `FAIL: <reason>` (exit 1).
"""

import argparse
import asyncio
import json
import logging
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

try:
    import aioice.ice
    from aiortc import (
        RTCConfiguration,
        RTCIceServer,
        RTCPeerConnection,
    )
    from aiortc.rtcconfiguration import RTCIceTransportPolicy
except ImportError as exc:  # pragma: no cover - reported to the Rust test
    print(f"FAIL: aiortc is not installed ({exc}); run scripts/setup.sh", flush=True)
    sys.exit(2)


class Failure(Exception):
    """A check of the script failed; the message says which."""


def out(line: str) -> None:
    print(line, flush=True)


def loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """Replaces aioice.ice.get_host_addresses: host candidates on 127.0.0.1 only."""
    return ["127.0.0.1"] if use_ipv4 else []


def ice_request_url(ice_url: str, username: str) -> str:
    """ICE_URL with service=turn, username and iceTransportPolicy=relay added unless present."""
    parts = urllib.parse.urlsplit(ice_url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in query}
    for key, value in (
        ("service", "turn"),
        ("username", username),
        ("iceTransportPolicy", "relay"),
    ):
        if key not in present:
            query.append((key, value))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def fetch_ice(url: str, timeout: float) -> dict:
    """GET /ice; the JSON must have upstream's shape and ask for relay-only transport."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = resp.read().decode()
    except urllib.error.HTTPError as exc:
        raise Failure(f"GET {url}: HTTP {exc.code}: {exc.read().decode(errors='replace')}")
    except (urllib.error.URLError, OSError) as exc:
        raise Failure(f"GET {url}: {exc}")
    try:
        ice = json.loads(body)
    except json.JSONDecodeError as exc:
        raise Failure(f"GET {url}: not JSON ({exc}): {body!r}")
    servers = ice.get("iceServers")
    if not isinstance(servers, list) or not servers:
        raise Failure(f"GET {url}: no iceServers in {body}")
    for s in servers:
        if not (s.get("urls") and s.get("username") and s.get("credential")):
            raise Failure(f"GET {url}: an ICE server lacks urls/username/credential: {s}")
    if ice.get("iceTransportPolicy") != "relay":
        raise Failure(f"GET {url}: iceTransportPolicy is not relay: {body}")
    return ice


def rtc_configuration(ice: dict) -> RTCConfiguration:
    """What `new RTCPeerConnection(json)` makes of the /ice answer."""
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=s["urls"], username=s["username"], credential=s["credential"])
            for s in ice["iceServers"]
        ],
        iceTransportPolicy=RTCIceTransportPolicy(ice["iceTransportPolicy"]),
    )


def sdp_candidates(sdp: str) -> list[str]:
    return [line[2:] for line in sdp.splitlines() if line.startswith("a=candidate:")]


def candidate_type(candidate: str) -> str:
    fields = candidate.split()
    return fields[fields.index("typ") + 1] if "typ" in fields else "?"


def selected_pair(pc: RTCPeerConnection):
    """The nominated pair of pc's (bundled) ICE transport. aiortc has no public API for it
    (no candidate-pair stats), so this reads aioice's connection."""
    ice_transport = pc.sctp.transport.transport
    pair = ice_transport._connection._nominated.get(1)
    if pair is None:
        raise Failure("no nominated candidate pair on peer A")
    return pair.local_candidate, pair.remote_candidate


async def wait_stdin_line() -> None:
    """Returns on a line or EOF on stdin (read in a daemon thread, so a timeout can abandon it)."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def read() -> None:
        sys.stdin.readline()
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=read, daemon=True).start()
    await done.wait()


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stage = "starting"
        self.pcs: list[RTCPeerConnection] = []

    async def main(self) -> None:
        args = self.args
        self.stage = "fetching /ice"
        url = ice_request_url(args.ice_url, args.username)
        loop = asyncio.get_running_loop()
        ice = await loop.run_in_executor(None, fetch_ice, url, 5.0)
        for s in ice["iceServers"]:
            out(f"ice-server urls={s['urls']} username={s['username']}")

        aioice.ice.get_host_addresses = loopback_host_addresses
        a = RTCPeerConnection(rtc_configuration(ice))
        b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs = [a, b]

        @b.on("datachannel")
        def on_datachannel(channel):
            @channel.on("message")
            def on_message(message):
                channel.send(message)

        expected = {f"message {i} through stunnerd" for i in range(args.messages)}
        echoed: set[str] = set()
        all_echoed = asyncio.Event()
        channel = a.createDataChannel("echo")

        @channel.on("open")
        def on_open():
            for m in sorted(expected):
                channel.send(m)

        @channel.on("message")
        def on_echo(message):
            if message in expected:
                echoed.add(message)
            if echoed == expected:
                all_echoed.set()

        self.stage = "gathering A's candidates (TURN allocation on stunnerd)"
        await a.setLocalDescription(await a.createOffer())
        cands_a = sdp_candidates(a.localDescription.sdp)
        for c in cands_a:
            out(f"candidate A {c}")
        if not cands_a:
            raise Failure("peer A gathered no candidates: the TURN allocation failed")
        if any(candidate_type(c) != "relay" for c in cands_a):
            raise Failure("peer A offered a non-relay candidate under the relay policy")

        self.stage = "gathering B's candidates"
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        cands_b = sdp_candidates(b.localDescription.sdp)
        for c in cands_b:
            out(f"candidate B {c}")
        if not cands_b or any(
            candidate_type(c) != "host" or " 127.0.0.1 " not in f" {c} " for c in cands_b
        ):
            raise Failure("peer B must offer host candidates on 127.0.0.1 only")

        self.stage = "connecting (ICE checks through stunnerd, DTLS, SCTP) and echoing"
        ice_failed = asyncio.Event()

        @a.on("connectionstatechange")
        def on_state():
            if a.connectionState == "failed":
                ice_failed.set()

        await a.setRemoteDescription(b.localDescription)
        echoes, failed = asyncio.ensure_future(all_echoed.wait()), asyncio.ensure_future(
            ice_failed.wait()
        )
        await asyncio.wait([echoes, failed], return_when=asyncio.FIRST_COMPLETED)
        echoes.cancel()
        failed.cancel()
        if not all_echoed.is_set():
            raise Failure(
                "peer A's connection failed: no candidate pair through stunnerd worked"
                f" (echoed {len(echoed)}/{len(expected)})"
            )

        local, remote = selected_pair(a)
        out(
            f"selected-pair local={local.type} {local.host}:{local.port}"
            f" remote={remote.type} {remote.host}:{remote.port}"
        )
        out(f"echoed {len(echoed)}/{len(expected)}")
        if local.type != "relay":
            raise Failure(f"peer A's selected local candidate is {local.type}, not relay")
        if remote.type != "host":
            raise Failure(f"peer A's selected remote candidate is {remote.type}, not host")

        if args.hold:
            self.stage = "holding (waiting for a line on stdin)"
            out("HOLDING")
            await wait_stdin_line()

        self.stage = "closing"
        await self.close()

    async def close(self) -> None:
        pcs, self.pcs = self.pcs, []
        for pc in pcs:
            await pc.close()


async def run(args: argparse.Namespace) -> int:
    r = Run(args)
    try:
        await asyncio.wait_for(r.main(), args.timeout)
    except asyncio.TimeoutError:
        out(f"FAIL: timed out after {args.timeout:g} s while {r.stage}")
        return 1
    except Failure as exc:
        out(f"FAIL: {exc}")
        return 1
    except Exception as exc:  # aiortc/aioice errors: same verdict format, with the stage
        out(f"FAIL: {type(exc).__name__}: {exc} while {r.stage}")
        return 1
    finally:
        try:
            await asyncio.wait_for(r.close(), 5)
        except (asyncio.TimeoutError, Exception) as exc:  # closing must not hide the verdict
            print(f"closing the peer connections: {exc!r}", file=sys.stderr, flush=True)
    out("OK")
    return 0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ice_url", help="stunner-auth's /ice URL, e.g. http://127.0.0.1:8088/ice")
    p.add_argument("--username", default="webrtc-e2e", help="the username asked of /ice")
    p.add_argument("--messages", type=int, default=20, help="messages to echo (default 20)")
    p.add_argument("--timeout", type=float, default=30, help="overall bound in seconds")
    p.add_argument("--hold", action="store_true", help="wait for stdin before closing")
    p.add_argument("-v", "--verbose", action="store_true", help="aiortc/aioice debug log")
    args = p.parse_args()
    if args.messages < 1:
        p.error("--messages must be at least 1")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    logging.basicConfig(
        level=logging.DEBUG if arguments.verbose else logging.WARNING, stream=sys.stderr
    )
    sys.exit(asyncio.run(run(arguments)))
