#!/usr/bin/env bash
# The learning loop's hot paths against Python peers, same data, same machine, same run:
#
#   drift  20 numeric features, 1M reference vs 1M current rows, 2 threads:
#          Tower's bins + sharded DriftHistograms.count + merge + DriftReport.compute
#          vs numpy/scipy (PSI on 10 quantile bins + scipy.stats.ks_2samp; and a binned KS
#          on 1000 quantile bins with searchsorted/bincount)
#   score  Recommender (features + GBDT + top 10 per user) vs LightGBM predict on the
#          pairs' feature matrix + numpy argpartition, the same trees (exported)
#   pit    PointInTimeJoin.build, 1M impressions, 100k listings × 10 versions,
#          20k users × 3, vs pandas merge_asof with the written-at rule
#
#   Benchmarks/loop/run.sh          # from anywhere; RUNS=3 BENCHES="drift score pit"
#
# Creates Benchmarks/.venv-loop (pandas, numpy, scipy, lightgbm from PyPI; nothing is
# installed globally), builds tower-bench in release mode with its own scratch path
# (SCRATCH, default .build-release; or BIN=an existing tower-bench), writes the data once (REGENERATE=1 to redo), then
# runs each side RUNS times, alternating, and prints median, min and max per row.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
VENV="$ROOT/Benchmarks/.venv-loop"
OUT="$ROOT/Benchmarks/results/loop"
SCRATCH="${SCRATCH:-$ROOT/.build-release}"
RUNS="${RUNS:-3}"
BENCHES="${BENCHES:-drift score pit}"
mkdir -p "$OUT"

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check pandas numpy scipy lightgbm
PY="$VENV/bin/python"

# BIN=path/to/tower-bench runs a binary built elsewhere instead of building one.
if [ -z "${BIN:-}" ]; then
    swift build -c release --scratch-path "$SCRATCH" --product tower-bench
    BIN="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)/tower-bench"
fi

for b in $BENCHES; do
    if [ -n "${REGENERATE:-}" ] || [ ! -f "$OUT/$b/generated" ]; then
        echo "== generating $b data"
        "$BIN" loop "$b-data" --dir "$OUT/$b"
        touch "$OUT/$b/generated"
    fi
done

RESULTS="$OUT/results.txt"
: > "$RESULTS"
echo "before: $(uptime)" | tee "$OUT/uptime.txt"
for i in $(seq 1 "$RUNS"); do
    for b in $BENCHES; do
        # Alternate which side goes first, so neither always runs on a warmer machine.
        if [ $((i % 2)) -eq 1 ]; then order="tower peer"; else order="peer tower"; fi
        for side in $order; do
            echo "== run $i: $b ($side)"
            if [ "$side" = tower ]; then
                "$BIN" loop "$b" --dir "$OUT/$b" | tee -a "$RESULTS"
            else
                "$PY" "$ROOT/Benchmarks/loop/loop_peer.py" "$b" --dir "$OUT/$b" | tee -a "$RESULTS"
            fi
        done
    done
done
echo "after: $(uptime)" | tee -a "$OUT/uptime.txt"

python3 "$ROOT/Benchmarks/loop/summary.py" "$RESULTS"
cat "$OUT/uptime.txt"
