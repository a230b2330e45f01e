#!/usr/bin/env bash
# Real housing data for the learning benchmark, offline from Debian packages:
#
#   Benchmarks/learning/housing.sh [OUT_DIR]     # default Benchmarks/results/learning/housing
#
# Installs R's interpreter alone (Deploy/install-deps.sh --housing: r-base-core, 3
# packages), downloads Debian's r-cran-modeldata with `apt-get download` into a temporary
# directory and unpacks it with `dpkg-deb -x` (not installed: it would pull R's ~570
# recommended packages and dependencies), and runs housing.R, which reads the package's
# lazy-load database and writes OUT_DIR/ames.csv and OUT_DIR/sacramento.csv (binary label
# = sale price above the median; factor columns as integer codes in R's level order,
# the mapping in *_levels.csv) and OUT_DIR/PROVENANCE (package, version, rows × columns).
# The 80/20 train/test split is learning-bench's (`--dataset ames --csv OUT_DIR`, fixed seed).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${1:-$ROOT/Benchmarks/results/learning/housing}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

command -v Rscript >/dev/null || "$ROOT/Deploy/install-deps.sh" --housing

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
# apt-get download fetches the .deb of the candidate version into the current directory
# (as the invoking user, no root needed); refresh the lists only when it cannot find it.
apt-get download r-cran-modeldata >/dev/null 2>&1 || {
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    apt-get download r-cran-modeldata
}
DEB="$(ls r-cran-modeldata_*.deb)"
dpkg-deb -x "$DEB" x
MODELDATA="$TMP/x/usr/lib/R/site-library/modeldata"
Rscript "$ROOT/Benchmarks/learning/housing.R" "$MODELDATA" "$OUT"
{
    echo "package: $(dpkg-deb -f "$DEB" Package) $(dpkg-deb -f "$DEB" Version) (Debian, $(sha256sum "$DEB" | cut -c1-16)…)"
    echo "upstream: CRAN modeldata $(grep '^Version:' "$MODELDATA/DESCRIPTION" | cut -d' ' -f2)"
    echo "R: $(Rscript --version 2>&1 | head -1)"
    for f in ames sacramento; do
        echo "$f.csv: $(($(wc -l < "$OUT/$f.csv") - 1)) rows, $(($(head -1 "$OUT/$f.csv" | tr ',' '\n' | wc -l) - 1)) features + label"
    done
} > "$OUT/PROVENANCE"
cat "$OUT/PROVENANCE"
