#!/usr/bin/env bash
# Tower's distributed TPE search (2 worker processes) against Optuna's TPE with n_jobs=2
# over LightGBM, same space, same 20-trial budget, same data, same machine, same run, in
# two rows: without early stopping on either side, and Tower's ASHA against Optuna's
# successive-halving pruner at the same rungs. Each side runs RUNS times (median, min, max).
# Creates Benchmarks/.venv-hpo (optuna, lightgbm, scikit-learn, numpy); installs nothing
# globally. Environment: INTERACTIONS (default 200000), TRIALS (default 20), RUNS (default 3).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
VENV="$ROOT/Benchmarks/.venv-hpo"
OUT="$ROOT/Benchmarks/results/hpo"
RUNS="${RUNS:-3}"
mkdir -p "$OUT"
rm -f "$OUT"/run-*.txt
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check optuna lightgbm scikit-learn numpy
swift build -c release --scratch-path .build-release --product tower-bench
swift build -c release --scratch-path .build-release --product worker
BIN=.build-release/release
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: $("$VENV/bin/python" -c 'import optuna, lightgbm; print("optuna", optuna.__version__, "lightgbm", lightgbm.__version__)'); $(swift --version 2>&1 | head -1)"
for i in $(seq 1 "$RUNS"); do
    # The first run also writes the featurized CSVs the peer reads.
    "$BIN/tower-bench" hpo --interactions "${INTERACTIONS:-200000}" --trials "${TRIALS:-20}" --out "$OUT" $([ "$i" -gt 1 ] && echo --no-peer-files) | tee "$OUT/run-tower-plain-$i.txt"
    "$VENV/bin/python" Benchmarks/hpo/optuna_peer.py --data "$OUT" --trials "${TRIALS:-20}" --jobs 2 | tee "$OUT/run-optuna-plain-$i.txt"
    "$BIN/tower-bench" hpo --interactions "${INTERACTIONS:-200000}" --trials "${TRIALS:-20}" --out "$OUT" --no-peer-files --asha | tee "$OUT/run-tower-early-$i.txt"
    "$VENV/bin/python" Benchmarks/hpo/optuna_peer.py --data "$OUT" --trials "${TRIALS:-20}" --jobs 2 --pruner sha | tee "$OUT/run-optuna-early-$i.txt"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$OUT" "$RUNS" <<'PY'
import statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
def result(path):
    for line in open(path):
        if line.startswith("RESULT"):
            return dict(kv.split("=", 1) for kv in line.split()[1:])
def stat(values):
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"
print(f"\n## {runs}× 20-trial TPE search, 2 workers vs Optuna n_jobs=2 (LightGBM), median (min–max)")
print(f"{'row':34}{'Tower s':>22}{'Optuna s':>22}{'ratio':>8}{'test AUC Tower':>16}{'Optuna':>9}{'stopped':>10}")
for row, label in [("plain", "no early stopping"), ("early", "ASHA vs successive halving")]:
    t = [result(f"{out}/run-tower-{row}-{i}.txt") for i in range(1, runs + 1)]
    o = [result(f"{out}/run-optuna-{row}-{i}.txt") for i in range(1, runs + 1)]
    tw, ow = [float(r["wall"]) for r in t], [float(r["wall"]) for r in o]
    ratio = statistics.median(tw) / statistics.median(ow)
    ta = statistics.median(float(r["test_auc"]) for r in t)
    oa = statistics.median(float(r["test_auc"]) for r in o)
    stopped = f"{t[0]['stopped_early']}/{o[0]['stopped_early']}"
    print(f"{label:34}{stat(tw):>22}{stat(ow):>22}{ratio:>8.2f}{ta:>16.5f}{oa:>9.5f}{stopped:>10}")
PY
