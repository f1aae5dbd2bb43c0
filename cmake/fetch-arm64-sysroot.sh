#!/usr/bin/env bash
# Unpacks the arm64 XNNPACK, pthreadpool and cpuinfo .debs into DEST_DIR as a cross sysroot.
# apt-get install of libxnnpack-dev:arm64 would remove the amd64 one (it is not Multi-Arch: same),
# so the packages are only downloaded and extracted with dpkg -x.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 DEST_DIR" >&2
  exit 2
fi
dest=$1
packages=(libxnnpack0 libxnnpack-dev libpthreadpool0 libpthreadpool-dev libcpuinfo0)

# The version file is written last, so its presence means a complete earlier run.
if [[ -f "$dest/xnnpack-version.txt" ]]; then
  echo "arm64 sysroot already in $dest (XNNPACK $(cat "$dest/xnnpack-version.txt"))"
  exit 0
fi

need_root() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "error: $1 needs root; run as root or do it once by hand" >&2
    exit 1
  fi
}

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  need_root "dpkg --add-architecture arm64"
  dpkg --add-architecture arm64
fi
# Update only when the arm64 package lists are missing, so repeated runs work offline.
if ! apt-cache show libxnnpack0:arm64 >/dev/null 2>&1; then
  need_root "apt-get update"
  apt-get update -qq || { echo "error: apt-get update failed (no network?)" >&2; exit 1; }
  if ! apt-cache show libxnnpack0:arm64 >/dev/null 2>&1; then
    echo "error: libxnnpack0:arm64 not found in the apt lists after apt-get update" >&2
    exit 1
  fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt drops privileges to _apt for downloads; let it write here to avoid the unsandboxed warning.
chown _apt "$tmp" 2>/dev/null || true
(cd "$tmp" && apt-get download -q "${packages[@]/%/:arm64}") ||
  { echo "error: apt-get download of ${packages[*]} (arm64) failed" >&2; exit 1; }

mkdir -p "$dest"
for deb in "$tmp"/*.deb; do
  dpkg -x "$deb" "$dest"
done

libdir=$dest/usr/lib/aarch64-linux-gnu
if [[ ! -e $libdir/libXNNPACK.so.0 ]]; then
  echo "error: $libdir/libXNNPACK.so.0 missing after extraction" >&2
  exit 1
fi
dpkg-deb -f "$tmp"/libxnnpack0_*.deb Version >"$dest/xnnpack-version.txt"
echo "arm64 sysroot ready in $dest (XNNPACK $(cat "$dest/xnnpack-version.txt"))"
