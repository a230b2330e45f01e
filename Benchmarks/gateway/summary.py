#!/usr/bin/env python3
"""Reads the wrk outputs run.sh saved (wrk-SIDE-PATH-RUN.txt) and prints, per path and
side, requests/s and p50/p99 latency as median (min–max) over the runs, and Tower's ratio
to the peer. Errors (non-2xx, socket errors) are shown, since a fast error is no result."""
import glob
import os
import re
import statistics
import sys

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse(path):
    text = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    lat = {p: float(v) * UNITS[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)}
    errors = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", text))
    errors += sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    return rps, lat["50"], lat["99"], errors


def fmt(values, digits=0):
    m = statistics.median(values)
    return f"{m:,.{digits}f} ({min(values):,.{digits}f}–{max(values):,.{digits}f})"


def main(out):
    rows = {}
    for f in sorted(glob.glob(os.path.join(out, "wrk-*-*-*.txt"))):
        side, path, _ = os.path.basename(f)[4:-4].split("-")
        rows.setdefault((path, side), []).append(parse(f))
    print("| path | side | requests/s | p50 ms | p99 ms | errors | Tower ÷ peer (req/s) |")
    print("|---|---|---|---|---|---|---|")
    for path in ["precomputed", "live"]:
        for side in ["tower", "peer"]:
            runs = rows.get((path, side))
            if not runs:
                continue
            ratio = ""
            if side == "tower" and rows.get((path, "peer")):
                ratio = f"{statistics.median(r[0] for r in runs) / statistics.median(r[0] for r in rows[(path, 'peer')]):.1f}×"
            print(f"| {path} | {side} | {fmt([r[0] for r in runs])} | {fmt([r[1] for r in runs], 2)} | "
                  f"{fmt([r[2] for r in runs], 2)} | {sum(r[3] for r in runs)} | {ratio} |")


main(sys.argv[1])
