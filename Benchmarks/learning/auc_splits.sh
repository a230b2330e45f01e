#!/usr/bin/env bash
# Test AUC of both sides over many fixed-seed 80/20 splits of a small real data set, to
# tell a systematic AUC gap from the noise of one small test set (Sacramento's is 187
# rows: one split's difference between two good learners is easily ±0.005).
#
#   Benchmarks/learning/auc_splits.sh sacramento 20     # after run.sh (binary, venv, CSVs)
#
# Prints one line per seed and the mean, SD and standard error of Tower − LightGBM.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DATASET="${1:-sacramento}"
SPLITS="${2:-20}"
OUT="$ROOT/Benchmarks/results/learning"
BIN="$(swift build -c release --package-path "$ROOT" --scratch-path "$ROOT/.build-release" --show-bin-path)/learning-bench"
[ -f "$OUT/housing/$DATASET.csv" ] || "$ROOT/Benchmarks/learning/housing.sh" "$OUT/housing"
: > "$OUT/auc-splits-$DATASET.txt"
for SEED in $(seq 1 "$SPLITS"); do
    DIR="$OUT/splits/$DATASET-$SEED"
    T="$("$BIN" --dataset "$DATASET" --csv "$OUT/housing" --seed "$SEED" --out "$DIR" --threads 1 --predict-rows 0 | grep RESULT | grep -o ' auc=[0-9.]*' | cut -d= -f2)"
    L="$("$ROOT/Benchmarks/.venv-learning/bin/python" "$ROOT/Benchmarks/learning/lightgbm_peer.py" --data "$DIR" --dataset "$DATASET" --threads 1 --predict-rows 0 | grep RESULT | grep -o ' auc=[0-9.]*' | cut -d= -f2)"
    echo "seed $SEED tower $T lightgbm $L" | tee -a "$OUT/auc-splits-$DATASET.txt"
done
python3 - "$OUT/auc-splits-$DATASET.txt" <<'PY'
import statistics, sys
d = [float(l.split()[3]) - float(l.split()[5]) for l in open(sys.argv[1])]
print(f"Tower - LightGBM over {len(d)} splits: mean {statistics.mean(d):+.5f}, SD {statistics.stdev(d):.5f}, "
      f"s.e. {statistics.stdev(d) / len(d) ** 0.5:.5f}, min {min(d):+.5f}, max {max(d):+.5f}, "
      f"within 0.002 in {sum(abs(x) <= 0.002 for x in d)}/{len(d)}")
PY
