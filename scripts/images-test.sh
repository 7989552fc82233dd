#!/usr/bin/env bash
# Smoke-tests the OCI archives scripts/images.sh exported: unpacks each image's root filesystem
# from its layers, checks the image config (non-root user, entrypoint, licence label, no shell),
# then runs each binary from that root filesystem in a chroot as user 65532, with nothing from the
# host's filesystem:
#   - stunnerd relays a turnutils_uclient session (UDP, 100 messages) to a turnutils_peer on the
#     host, with no loss, and answers its /ready and /metrics;
#   - the operator answers --help, and /healthz and /metrics while it connects to an API server;
#   - the scaler answers --help, and /healthz and /metrics;
#   - stunner-auth answers --help, /healthz, /readyz (503 with no CDS) and /metrics.
# Every port is a free ephemeral one; every wait is bounded. Needs root (chroot), python3 and coturn.
#
# Usage: scripts/images-test.sh   (after scripts/images.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

dir=target/images
work="$(mktemp -d)"
pids=()
cleanup() {
  # SIGTERM first; stunnerd then drains its allocations (turnutils_uclient leaves them open), so
  # whatever still runs after 5 s is killed: the smoke test never waits out a drain.
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A free TCP+UDP port on loopback (bound and released; a race with another test is unlikely).
free_port() {
  python3 - <<'PY'
import socket
while True:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        u.close(); t.close()
PY
}

# HTTP status of GET url within 1 s ("000" when nothing answers).
status() { curl -s -o /dev/null -m 1 -w '%{http_code}' "$1" || true; }

# The body of GET url, read whole before anyone filters it (`curl | grep -q` under pipefail fails
# when grep stops reading first and curl dies of SIGPIPE).
scrape() {
  local body
  body="$(curl -s -m 2 "$1")" || fail "GET $1 failed"
  printf '%s\n' "$body"
}

# Waits up to 20 s for url to answer with HTTP status want.
await() {
  local url="$1" want="$2" i
  for i in $(seq 1 100); do
    [ "$(status "$url")" = "$want" ] && return 0
    sleep 0.2
  done
  fail "$url did not answer $want within 20 s (last: $(status "$url"))"
}

# Unpacks archive into $work/<name>/rootfs and checks the image configuration.
unpack() {
  local name="$1" entry="$2"
  [ -f "$dir/$name.oci.tar" ] || fail "$dir/$name.oci.tar missing (run scripts/images.sh)"
  mkdir -p "$work/$name/oci" "$work/$name/rootfs"
  tar -xf "$dir/$name.oci.tar" -C "$work/$name/oci"
  python3 - "$work/$name" "$entry" <<'PY'
import json, os, sys, tarfile
root, entry = sys.argv[1], sys.argv[2]
oci = os.path.join(root, "oci")
def blob(digest):
    algo, hexd = digest.split(":")
    return os.path.join(oci, "blobs", algo, hexd)
index = json.load(open(os.path.join(oci, "index.json")))
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
config = json.load(open(blob(manifest["config"]["digest"])))["config"]
for layer in manifest["layers"]:
    with tarfile.open(blob(layer["digest"])) as t:
        try:
            t.extractall(os.path.join(root, "rootfs"), filter="tar")
        except TypeError:  # a Python without extraction filters (before 3.11.4)
            t.extractall(os.path.join(root, "rootfs"))
errors = []
if config.get("User") != "65532:65532":
    errors.append(f"User is {config.get('User')!r}, not 65532:65532")
if config.get("Entrypoint") != [entry]:
    errors.append(f"Entrypoint is {config.get('Entrypoint')!r}, not [{entry!r}]")
labels = config.get("Labels") or {}
for key in ("org.opencontainers.image.licenses", "org.opencontainers.image.version",
            "org.opencontainers.image.title"):
    if not labels.get(key):
        errors.append(f"label {key} missing")
for shell in ("bin/sh", "bin/bash", "usr/bin/sh", "usr/bin/bash"):
    if os.path.lexists(os.path.join(root, "rootfs", shell)):
        errors.append(f"{shell} present: the image must not ship a shell")
if errors:
    sys.exit(f"{root}: " + "; ".join(errors))
PY
}

# Runs the image's binary with args in a chroot of its root filesystem, as 65532, in the background.
start() {
  local name="$1"; shift
  chroot --userspec=65532:65532 "$work/$name/rootfs" "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
}

echo "== stunnerd"
unpack stunnerd /usr/local/bin/stunnerd
turn="$(free_port)" peer="$(free_port)" metrics="$(free_port)" health="$(free_port)"
cat >"$work/stunnerd/rootfs/etc/stunnerd.yaml" <<YAML
version: v1
admin:
  name: image-smoke
  loglevel: all:INFO
  metrics_endpoint: http://127.0.0.1:$metrics/metrics
  healthcheck_endpoint: http://127.0.0.1:$health
auth:
  type: static
  realm: stunner.l7mp.io
  credentials: { username: u, password: p }
listeners:
  - { name: udp, protocol: TURN-UDP, address: 127.0.0.1, port: $turn, routes: [media] }
clusters:
  - { name: media, type: STATIC, endpoints: [127.0.0.1] }
YAML
start stunnerd stunnerd -c /etc/stunnerd.yaml
await "http://127.0.0.1:$health/ready" 200
turnutils_peer -L 127.0.0.1 -p "$peer" >/dev/null 2>&1 &
pids+=($!)
sleep 0.2
out="$(timeout 30 turnutils_uclient -u u -w p -e 127.0.0.1 -r "$peer" -n 100 -m 1 -l 100 \
  -p "$turn" 127.0.0.1 2>&1)" || fail "turnutils_uclient failed: $out"
lost="$(sed -n 's/.*Total lost packets \([0-9]*\).*/\1/p' <<<"$out" | tail -1)"
[ "$lost" = 0 ] || fail "stunnerd from its image lost ${lost:-?} packets: $out"
grep -q '^stunner_allocations_total' <<<"$(scrape "http://127.0.0.1:$metrics/metrics")" ||
  fail "stunnerd /metrics has no stunner_allocations_total"
echo "stunnerd relayed 100 messages with no loss from its image"

echo "== stunner-gateway-operator"
unpack stunner-gateway-operator /usr/local/bin/stunner-gateway-operator
chroot --userspec=65532:65532 "$work/stunner-gateway-operator/rootfs" stunner-gateway-operator --help |
  grep -q -- '--metrics-listen' || fail "operator --help"
# An API server that accepts connections and never answers: the operator keeps connecting, its
# health and metrics server must answer meanwhile.
api="$(free_port)" cds="$(free_port)" opmetrics="$(free_port)"
python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',$api)); s.listen(64); time.sleep(120)" &
pids+=($!)
# Listening before the operator starts (else it finds the port closed and exits, as it must).
for i in $(seq 1 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$api") 2>/dev/null && break
  sleep 0.1
done
mkdir -p "$work/stunner-gateway-operator/rootfs/etc/kube"
cat >"$work/stunner-gateway-operator/rootfs/etc/kube/config" <<YAML
apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "http://127.0.0.1:$api" } }]
users: [{ name: u, user: {} }]
contexts: [{ name: c, context: { cluster: c, user: u } }]
current-context: c
YAML
KUBECONFIG=/etc/kube/config start stunner-gateway-operator stunner-gateway-operator \
  --cds-listen "127.0.0.1:$cds" --metrics-listen "127.0.0.1:$opmetrics"
await "http://127.0.0.1:$opmetrics/healthz" 200
grep -q '^stunner_operator_' <<<"$(scrape "http://127.0.0.1:$opmetrics/metrics")" ||
  fail "operator /metrics has no stunner_operator_ series"
echo "operator answers --help, /healthz and /metrics from its image"

echo "== stunner-scaler"
unpack stunner-scaler /usr/local/bin/stunner-scaler
chroot --userspec=65532:65532 "$work/stunner-scaler/rootfs" stunner-scaler --help |
  grep -q -- '--grpc-addr' || fail "scaler --help"
grpc="$(free_port)" http="$(free_port)"
start stunner-scaler stunner-scaler --no-kubernetes --grpc-addr "127.0.0.1:$grpc" \
  --http-addr "127.0.0.1:$http"
await "http://127.0.0.1:$http/healthz" 200
grep -q '^# TYPE stunner_scaler_' <<<"$(scrape "http://127.0.0.1:$http/metrics")" ||
  fail "scaler /metrics has no stunner_scaler_ series"
echo "scaler answers --help, /healthz and /metrics from its image"
echo "== stunner-auth"
unpack stunner-auth /usr/local/bin/stunner-auth
chroot --userspec=65532:65532 "$work/stunner-auth/rootfs" stunner-auth --help |
  grep -q -- '--cds-server-address' || fail "stunner-auth --help"
authport="$(free_port)" nocds="$(free_port)"
# No CDS server: the service is live (and not ready) while it keeps reconnecting.
start stunner-auth stunner-auth --listen "127.0.0.1:$authport" --cds-server-address "127.0.0.1:$nocds"
await "http://127.0.0.1:$authport/healthz" 200
await "http://127.0.0.1:$authport/readyz" 503
grep -q '^# TYPE stunner_auth_' <<<"$(scrape "http://127.0.0.1:$authport/metrics")" ||
  fail "stunner-auth /metrics has no stunner_auth_ series"
echo "stunner-auth answers --help, /healthz, /readyz (not ready without CDS) and /metrics from its image"
echo "images-test: ok"
