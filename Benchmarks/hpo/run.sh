#!/usr/bin/env bash
# Tower's distributed TPE search (2 worker processes) against Optuna's TPE with n_jobs=2
# over LightGBM, same space, same 20-trial budget, same data, same machine, same run.
# Creates Benchmarks/.venv-hpo (optuna, lightgbm, scikit-learn, numpy); installs nothing
# globally. Environment: INTERACTIONS (default 200000), TRIALS (default 20).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
VENV="$ROOT/Benchmarks/.venv-hpo"
OUT="$ROOT/Benchmarks/results/hpo"
mkdir -p "$OUT"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check optuna lightgbm scikit-learn numpy
swift build -c release --scratch-path .build-release --product tower-bench
swift build -c release --scratch-path .build-release --product worker
BIN=.build-release/release
"$BIN/tower-bench" hpo --interactions "${INTERACTIONS:-200000}" --trials "${TRIALS:-20}" --out "$OUT" | tee "$OUT/tower.txt"
"$VENV/bin/python" Benchmarks/hpo/optuna_peer.py --data "$OUT" --trials "${TRIALS:-20}" --jobs 2 | tee "$OUT/optuna.txt"
python3 - "$OUT/tower.txt" "$OUT/optuna.txt" <<'PY'
import sys
def result(path):
    for line in open(path):
        if line.startswith("RESULT"):
            return dict(kv.split("=", 1) for kv in line.split()[1:])
t, o = result(sys.argv[1]), result(sys.argv[2])
print("\n## 20-trial TPE search, 2 workers vs Optuna n_jobs=2 (LightGBM)")
print(f"{'':28}{'Tower':>12}{'Optuna+LGBM':>14}{'ratio':>10}")
print(f"{'wall time (s)':28}{float(t['wall']):>12.2f}{float(o['wall']):>14.2f}{float(t['wall'])/float(o['wall']):>10.2f}")
print(f"{'  peer incl. loading CSVs':28}{'':>12}{float(o['wall_with_load']):>14.2f}{float(t['wall'])/float(o['wall_with_load']):>10.2f}")
print(f"{'best valid AUC':28}{float(t['best_valid_auc']):>12.5f}{float(o['best_valid_auc']):>14.5f}")
print(f"{'holdout (test) AUC of best':28}{float(t['test_auc']):>12.5f}{float(o['test_auc']):>14.5f}{float(t['test_auc'])-float(o['test_auc']):>+10.5f}")
PY
