#!/usr/bin/env bash
# Side-by-side benchmark of Tower's learning library against LightGBM on the same data.
#
#   Benchmarks/learning/run.sh            # from the repository root (or anywhere)
#
# Creates Benchmarks/.venv-learning and installs lightgbm, scikit-learn and numpy into
# it (nothing is installed globally), builds learning-bench in release mode with its own
# scratch path, and for each data set writes train/test CSVs that both sides read. Both
# train 200 trees × 31 leaves with validation log-loss and AUC on the test rows after
# every iteration, with the same thread counts, REPEAT times, alternating which side
# goes first; the table gives the median training time with min–max and the ratio of
# medians, and the test AUC of both.
# Environment: DATASETS (default market,few,wide: the project's market generator with
# INTERACTIONS interactions, 171k × 5 and 145k × 32 synthetic tables; ames and sacramento
# are real housing sales, written by housing.sh from Debian's r-cran-modeldata on first
# use into Benchmarks/results/learning/housing, split 80/20 by learning-bench after a
# fixed-seed shuffle), THREADS (default
# 1,2), REPEAT (default 3), INTERACTIONS (default 200000), PREDICT_ROWS (default 1000000,
# measured on the market only; 0 skips), PACKAGE_PATH (Swift package to build, default
# the repository root).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
VENV="$ROOT/Benchmarks/.venv-learning"
OUT="$ROOT/Benchmarks/results/learning"
INTERACTIONS="${INTERACTIONS:-200000}"
THREADS="${THREADS:-1,2}"
REPEAT="${REPEAT:-3}"
DATASETS="${DATASETS:-market,few,wide}"
PREDICT_ROWS="${PREDICT_ROWS:-1000000}"
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

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); swift $(swift --version 2>&1 | grep -o 'version [0-9.]*' | head -1); lightgbm $("$VENV/bin/python" -c 'import lightgbm; print(lightgbm.__version__)')"
: > "$OUT/results.txt"
for DATASET in ${DATASETS//,/ }; do
    DIR="$OUT/$DATASET"
    mkdir -p "$DIR"
    PREDICT=0
    [ "$DATASET" = market ] && PREDICT="$PREDICT_ROWS"
    SOURCE=()
    case "$DATASET" in
        ames|sacramento)
            [ -f "$OUT/housing/$DATASET.csv" ] || "$ROOT/Benchmarks/learning/housing.sh" "$OUT/housing"
            SOURCE=(--csv "$OUT/housing") ;;
    esac
    # The first call writes the CSVs and times nothing (1 tree, no validation).
    "$BIN" --dataset "$DATASET" "${SOURCE[@]}" --interactions "$INTERACTIONS" --out "$DIR" --threads 1 --trees 1 --predict-rows 0 --valid 0 > /dev/null
    for RUN in $(seq 1 "$REPEAT"); do
        echo "== $DATASET run $RUN: load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/results.txt"
        P="$([ "$RUN" = 1 ] && echo "$PREDICT" || echo 0)"
        tower() { "$BIN" --dataset "$DATASET" "${SOURCE[@]}" --interactions "$INTERACTIONS" --out "$DIR" --threads "$THREADS" --predict-rows "$P" | grep RESULT | sed "s/run=1/run=$RUN/"; }
        peer() { "$VENV/bin/python" "$ROOT/Benchmarks/learning/lightgbm_peer.py" --data "$DIR" --dataset "$DATASET" --threads "$THREADS" --predict-rows "$P" | grep RESULT | sed "s/run=1/run=$RUN/"; }
        # Alternate which side goes first, so neither always meets a warmer or cooler machine.
        if [ $((RUN % 2)) = 1 ]; then tower; peer; else peer; tower; fi | tee -a "$OUT/results.txt"
    done
done

python3 "$ROOT/Benchmarks/learning/summarize.py" "$OUT/results.txt"
