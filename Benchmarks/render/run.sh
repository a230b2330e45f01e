#!/usr/bin/env bash
# Marketing shorts: Tower's render step against the same ffmpeg command by hand, and four
# shorts on two workers against one worker (issue #11). Needs ffmpeg, espeak-ng and a CJK
# font (Deploy/install-deps.sh --media). RUNS=3 by default; results in Benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash Deploy/install-deps.sh --media
swift build -c release --scratch-path .build-release --product tower-bench --product worker
mkdir -p Benchmarks/results
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
.build-release/release/tower-bench render --runs "${RUNS:-3}" | tee Benchmarks/results/render.txt
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
