#!/usr/bin/env bash
# Builds the four container images (stunnerd, stunner-gateway-operator, stunner-scaler,
# stunner-auth) without
# any registry or network, and exports each as an OCI archive under target/images/:
#
#   1. cargo builds the binaries (release by default; --profile debug reuses the test build);
#   2. scripts/rootfs.sh assembles each image's root filesystem, exactly as the Containerfile's
#      builder stage does;
#   3. buildah (Debian's package, installed here when missing) builds the Containerfile's own
#      runtime stages, with its builder stage swapped for "FROM scratch + COPY of those root
#      filesystems", so labels, user, environment and entrypoint are the Containerfile's;
#   4. each image is pushed to target/images/<image>.oci.tar and its size printed.
#
# Usage: scripts/images.sh [--profile release|debug] [--no-build]
# Then scripts/images-test.sh runs every binary from its image's root filesystem.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="${2:?--profile needs release or debug}"; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "usage: $0 [--profile release|debug] [--no-build]" >&2; exit 64 ;;
  esac
done
case "$profile" in release|debug) ;; *) echo "$0: --profile is release or debug" >&2; exit 64 ;; esac

if ! command -v buildah >/dev/null 2>&1; then
  echo "== apt-get install buildah"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends buildah >/dev/null
fi

if [ "$build" = 1 ]; then
  flag=""; [ "$profile" = release ] && flag="--release"
  echo "== cargo build $flag (stunnerd, operator, scaler, stunner-auth)"
  cargo build $flag --locked -p stunnerd -p operator -p scaler -p stunner-auth --bins
fi

version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
out=target/images
mkdir -p "$out"
# image target : binary name : image name
images="stunnerd:stunnerd:stunnerd operator:stunner-gateway-operator:stunner-gateway-operator scaler:stunner-scaler:stunner-scaler auth:stunner-auth:stunner-auth"

for spec in $images; do
  IFS=: read -r target bin _ <<<"$spec"
  scripts/rootfs.sh "target/$profile/$bin" "$bin" "$out/rootfs/$target"
done

# The Containerfile with its builder stage replaced by the root filesystems built above.
awk '
  /^FROM .* AS build$/ { print "FROM scratch AS build"; print "COPY rootfs/ /rootfs/"; skip = 1; next }
  /^FROM scratch AS runtime-base$/ { skip = 0 }
  !skip { print }
' Containerfile >"$out/Containerfile.offline"
grep -q '^COPY rootfs/ /rootfs/$' "$out/Containerfile.offline" ||
  { echo "$0: the Containerfile has no 'FROM ... AS build' stage to replace" >&2; exit 1; }

export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}" BUILDAH_ISOLATION=chroot
printf '%-28s %12s %12s\n' image "archive (B)" "rootfs (B)"
for spec in $images; do
  IFS=: read -r target _ name <<<"$spec"
  tag="localhost/$name:$version"
  buildah bud --quiet --layers=false --target "$target" --build-arg "VERSION=$version" \
    -f "$out/Containerfile.offline" -t "$tag" "$out" >/dev/null
  rm -f "$out/$name.oci.tar"
  buildah push --quiet "$tag" "oci-archive:$out/$name.oci.tar:$tag" >/dev/null
  buildah rmi "$tag" >/dev/null
  printf '%-28s %12s %12s\n' "$name" "$(stat -c %s "$out/$name.oci.tar")" \
    "$(du -sb "$out/rootfs/$target" | cut -f1)"
done
