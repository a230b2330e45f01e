#!/usr/bin/env bash
# Installs the Debian packages Tower needs. Idempotent: skips what is present, and runs
# apt-get only when something is missing. Usage: install-deps.sh [--proto] [--media] [--test] [--bench] [--housing]
# --test adds what the multi-host tests use (network namespaces, nftables for half-open links)
# and the browser the user app's test drives (Chromium over chromedriver's WebDriver).
# --bench adds the load generator and the virtualenv support the peer benchmarks use.
# --housing adds R's interpreter alone (r-base-core, 3 packages with --no-install-recommends),
# which Benchmarks/learning/housing.sh uses to read the real housing data sets out of the
# Debian package r-cran-modeldata (downloaded, not installed).
set -euo pipefail
packages=(libsqlite3-dev libssl-dev libcurl4-openssl-dev openssl ca-certificates curl)
for arg in "$@"; do
  case "$arg" in
    --proto) packages+=(protobuf-compiler) ;;
    --media) packages+=(ffmpeg espeak-ng fonts-noto-cjk) ;;
    --test) packages+=(iproute2 nftables chromium chromium-driver) ;;
    --bench) packages+=(wrk python3-venv) ;;
    --housing) packages+=(r-base-core) ;;
    *) echo "install-deps.sh: unknown option $arg (use --proto, --media, --test, --bench or --housing)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
command -v swift >/dev/null || echo "install-deps.sh: no swift on PATH — install Swift 6.1 or later from swift.org" >&2
