#!/usr/bin/env bash
# Side-by-side benchmark of Tower's learning library against LightGBM on the same data.
#
#   Benchmarks/learning/run.sh            # from the repository root (or anywhere)
#
# Creates Benchmarks/.venv-learning and installs lightgbm, scikit-learn and numpy into
# it (nothing is installed globally), builds learning-bench in release mode with its own
# scratch path, runs both with 1 and 2 threads and prints one table.
# Environment: INTERACTIONS (default 200000), THREADS (default 1,2),
# PACKAGE_PATH (Swift package to build, default the repository root).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
VENV="$ROOT/Benchmarks/.venv-learning"
OUT="$ROOT/Benchmarks/results/learning"
INTERACTIONS="${INTERACTIONS:-200000}"
THREADS="${THREADS:-1,2}"
PACKAGE_PATH="${PACKAGE_PATH:-$ROOT}"
mkdir -p "$OUT"

if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating $VENV"
    python3 -m venv "$VENV"
fi
echo "== installing lightgbm scikit-learn numpy into the venv"
"$VENV/bin/pip" install --quiet --disable-pip-version-check lightgbm scikit-learn numpy

echo "== building learning-bench (release)"
swift build -c release --package-path "$PACKAGE_PATH" --scratch-path "$PACKAGE_PATH/.build-release" --product learning-bench
BIN="$(swift build -c release --package-path "$PACKAGE_PATH" --scratch-path "$PACKAGE_PATH/.build-release" --show-bin-path)/learning-bench"

echo "== Tower"
"$BIN" --interactions "$INTERACTIONS" --out "$OUT" --threads "$THREADS" | tee "$OUT/tower.txt"
echo "== LightGBM"
"$VENV/bin/python" "$ROOT/Benchmarks/learning/lightgbm_peer.py" --data "$OUT" --threads "$THREADS" | tee "$OUT/lightgbm.txt"

python3 - "$OUT/tower.txt" "$OUT/lightgbm.txt" <<'PY'
import sys

def results(path):
    out = {}
    for line in open(path):
        if line.startswith("RESULT "):
            kv = dict(f.split("=", 1) for f in line.split()[1:])
            out[int(kv["threads"])] = kv
    return out

tower, lgbm = results(sys.argv[1]), results(sys.argv[2])
rows = [
    ("train wall time (s)", "train_s", "{:.3f}", "ratio"),
    ("test AUC", "auc", "{:.5f}", "diff"),
    ("test log-loss", "logloss", "{:.5f}", "diff"),
    ("P@10", "p10", "{:.5f}", "diff"),
    ("NDCG@10", "ndcg10", "{:.5f}", "diff"),
    ("predict raw rows/s (1M rows)", "predict_raw_rows_per_s", "{:,.0f}", "ratio"),
    ("predict probability rows/s", "predict_prob_rows_per_s", "{:,.0f}", "ratio"),
    ("peak RSS (MB)", "peak_rss_mb", "{:.0f}", "ratio"),
]
print()
header = f"{'metric':<26}"
for t in sorted(tower):
    header += f"| {'Tower ' + str(t) + 't':>12} {'LightGBM ' + str(t) + 't':>13} {'Tower/LGBM':>11} "
print(header)
print("-" * len(header))
for name, key, fmt, kind in rows:
    line = f"{name:<26}"
    for t in sorted(tower):
        a, b = float(tower[t][key]), float(lgbm.get(t, {}).get(key, "nan"))
        rel = a / b if kind == "ratio" else a - b
        rel_s = f"{rel:.2f}x" if kind == "ratio" else f"{rel:+.5f}"
        line += f"| {fmt.format(a):>12} {fmt.format(b):>13} {rel_s:>11} "
    print(line)
print()
print("Targets: AUC within 0.002 of LightGBM; training time <= 1.5x LightGBM; prediction rows/s >= LightGBM.")
PY
