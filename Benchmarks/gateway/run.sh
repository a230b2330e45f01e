#!/usr/bin/env bash
# Tower's inference gateway against a Python peer doing the same work, wrk on loopback:
#
#   precomputed  GET /v1/recommendations?user_id=…&k=10, every user in turn: the gateway's
#                answer from the finished score job, the peer's from its own precomputed top 10
#   live         POST /v1/recommendations with an ad-hoc profile (one per user, in turn):
#                hard filters over 10,000 active listings, 28 pair features, the GBDT,
#                top 10, TreeSHAP reasons for the 10 shown
#
# Same work on both sides: the peer (FastAPI + uvicorn, 2 workers, LightGBM, numpy) reads
# the snapshot the gateway serves, the champion exported as a LightGBM text model (the same
# trees) and the listings' commutes; both return the same JSON fields; `gateway_peer.py
# check` compares their answers before the load runs.
#
#   Benchmarks/gateway/run.sh     # RUNS=3 DURATION=10s GET_CONNECTIONS=16 POST_CONNECTIONS=8
#
# Creates Benchmarks/.venv-gateway (fastapi, uvicorn[standard], orjson, numpy, lightgbm from
# PyPI; nothing is installed globally), builds tower-bench, gateway and worker in release
# mode with their own scratch path (SCRATCH, default .build-release; BIN_DIR=a directory
# holding all three to skip the build), then runs each side RUNS times per path,
# alternating which goes first, and prints median, min and max.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
HERE="$ROOT/Benchmarks/gateway"
VENV="$ROOT/Benchmarks/.venv-gateway"
OUT="$ROOT/Benchmarks/results/gateway"
SCRATCH="${SCRATCH:-$ROOT/.build-release}"
RUNS="${RUNS:-3}"
DURATION="${DURATION:-10s}"
GET_CONNECTIONS="${GET_CONNECTIONS:-16}"
POST_CONNECTIONS="${POST_CONNECTIONS:-8}"
mkdir -p "$OUT"
rm -f "$OUT"/wrk-*.txt "$OUT"/rss.txt

bash Deploy/install-deps.sh --bench
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check fastapi 'uvicorn[standard]' orjson numpy lightgbm
PY="$VENV/bin/python"

if [ -z "${BIN_DIR:-}" ]; then
    for product in tower-bench gateway worker; do
        swift build -c release --scratch-path "$SCRATCH" --product "$product"
    done
    BIN_DIR="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)"
fi

children=()
cleanup() {
    for pid in "${children[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${children[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_for WHAT SECONDS PID COMMAND...: until COMMAND succeeds; fails if PID dies or time runs out.
wait_for() {
    local what="$1" seconds="$2" pid="$3"; shift 3
    for _ in $(seq 1 $((seconds * 5))); do
        "$@" >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || { echo "run.sh: $what: the process exited" >&2; return 1; }
        sleep 0.2
    done
    echo "run.sh: timed out waiting for $what" >&2
    return 1
}

echo "== cluster: market, champion, score job (log: $OUT/cluster.log)"
rm -f "$OUT/cluster.json"
"$BIN_DIR/tower-bench" gateway-cluster --dir "$OUT" > "$OUT/cluster.log" 2>&1 &
children+=($!)
wait_for "the cluster" 1800 "${children[-1]}" grep -q READY "$OUT/cluster.log"
grep READY "$OUT/cluster.log"
field() { python3 -c "import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$OUT/cluster.json" "$1"; }

GW_PORT=$(free_port)
rm -rf "$OUT/gateway-queue"
"$BIN_DIR/gateway" --coordinator "$(field coordinator)" --cert "$(field cert)" --key "$(field key)" --ca "$(field ca)" \
    --listen "127.0.0.1:$GW_PORT" --queue-dir "$OUT/gateway-queue" --log-level warning > "$OUT/gateway.log" 2>&1 &
GW=$!
children+=($GW)
wait_for "the gateway" 120 "$GW" curl -sf "http://127.0.0.1:$GW_PORT/readyz"

echo "== peer: precomputing every user's top 10"
"$PY" "$HERE/gateway_peer.py" precompute --dir "$OUT"
PEER_PORT=$(free_port)
PEER_DIR="$OUT" "$VENV/bin/uvicorn" --app-dir "$HERE" gateway_peer:app --workers 2 --host 127.0.0.1 --port "$PEER_PORT" \
    --no-access-log --log-level warning > "$OUT/peer.log" 2>&1 &
PEER=$!
children+=($PEER)
wait_for "the peer" 300 "$PEER" curl -sf "http://127.0.0.1:$PEER_PORT/v1/recommendations?user_id=1"

"$PY" "$HERE/gateway_peer.py" check --dir "$OUT" --tower "http://127.0.0.1:$GW_PORT" --peer "http://127.0.0.1:$PEER_PORT" | tee "$OUT/check.txt"

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
peer_rss_kib() { ps -o rss= --ppid "$PEER" --pid "$PEER" | awk '{ s += $1 } END { print s }'; }

load() { # SIDE PATH RUN
    local port=$GW_PORT connections=$GET_CONNECTIONS script="$HERE/$2.lua"
    [ "$1" = peer ] && port=$PEER_PORT
    [ "$2" = live ] && connections=$POST_CONNECTIONS
    USERS=$(python3 -c "import json; print(len(json.load(open('$OUT/snapshot.json'))['users']))") PROFILES="$OUT/profiles.jsonl" \
        wrk -t 2 -c "$connections" -d "$4" --latency -s "$script" "http://127.0.0.1:$port" > "$5"
}

echo "== warm-up (fills the gateway's cache of stored recommendations; not counted)"
for side in tower peer; do for path in precomputed live; do load "$side" "$path" 0 3s /dev/null; done; done

echo "before: $(uptime)" | tee "$OUT/uptime.txt"
for i in $(seq 1 "$RUNS"); do
    if [ $((i % 2)) -eq 1 ]; then order="tower peer"; else order="peer tower"; fi
    for path in precomputed live; do
        for side in $order; do
            echo "== run $i: $path ($side)"
            load "$side" "$path" "$i" "$DURATION" "$OUT/wrk-$side-$path-$i.txt"
            grep -E "Requests/sec|^ +(50|99)%" "$OUT/wrk-$side-$path-$i.txt" | tr -s ' ' | paste -sd' '
            echo "run $i $path $side tower_rss_kib=$(rss_kib "$GW") peer_rss_kib=$(peer_rss_kib)" >> "$OUT/rss.txt"
        done
    done
done
echo "after: $(uptime)" | tee -a "$OUT/uptime.txt"
echo "gateway peak RSS: $(awk '/^VmHWM/ { print $2, $3 }' "/proc/$GW/status")" | tee -a "$OUT/rss.txt"

python3 "$HERE/summary.py" "$OUT"
cat "$OUT/check.txt" "$OUT/uptime.txt"
tail -n 4 "$OUT/rss.txt"
