#!/usr/bin/env bash
# Assembles the whole runtime root filesystem of one image: the stripped binary at
# /usr/local/bin/<name>, the shared libraries it loads (as ldd resolves them on the build machine,
# at the same paths), an /etc/passwd and /etc/group with the non-root user 65532 ("nonroot"), an
# /etc/nsswitch.conf, and the CA bundle (the scaler's Prometheus/Mimir client over https and
# stunnerd's CDS client over https verify servers with it). Nothing else: no shell, no package
# manager.
#
# The Containerfile's builder stage and scripts/images.sh both run this script, so the published
# images and the images built offline here hold the same files.
#
# Usage: scripts/rootfs.sh <binary> <name> <dest-dir>
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 <binary> <name> <dest-dir>" >&2
  exit 64
fi
bin="$1" name="$2" dest="$3"
[ -x "$bin" ] || { echo "$0: $bin is not an executable" >&2; exit 64; }
ca=/etc/ssl/certs/ca-certificates.crt
[ -f "$ca" ] || { echo "$0: $ca missing (install ca-certificates)" >&2; exit 1; }

rm -rf "$dest"
mkdir -p "$dest/usr/local/bin" "$dest/etc/ssl/certs"
install -m 0755 "$bin" "$dest/usr/local/bin/$name"
strip --strip-all "$dest/usr/local/bin/$name"

# The dynamic loader and every library the binary needs, copied (not linked) to the path the
# binary will look them up at.
libs="$(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}')"
for lib in $libs; do
  mkdir -p "$dest$(dirname "$lib")"
  cp -L "$lib" "$dest$lib"
done

printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
  >"$dest/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$dest/etc/group"
printf 'hosts: files dns\n' >"$dest/etc/nsswitch.conf"
install -m 0644 "$ca" "$dest/etc/ssl/certs/ca-certificates.crt"

