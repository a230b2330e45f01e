#!/usr/bin/env python3
"""Summarises Benchmarks/loop/run.sh's RESULT and CHECK lines: median, min and max of each
(bench, side, variant) over the runs, the Tower/peer ratios the targets are stated in, and
whether both sides computed the same thing. Standard library only."""
import statistics
import sys
from collections import defaultdict


def fields(line):
    return dict(f.split("=", 1) for f in line.split()[1:])


results = defaultdict(list)
checks = {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT "):
        kv = fields(line)
        results[(kv["bench"], kv["side"], kv["variant"])].append(kv)
    elif line.startswith("CHECK "):
        kv = fields(line)
        checks[(kv["bench"], kv["side"], kv.get("variant", ""))] = kv


def stat(key, field):
    values = [float(r[field]) for r in results.get(key, [])]
    if not values:
        return None
    return statistics.median(values), min(values), max(values), len(values)


def cell(s, fmt):
    if s is None:
        return "—"
    med, lo, hi, n = s
    return f"{fmt.format(med)} ({fmt.format(lo)}–{fmt.format(hi)}, n={n})"


print("\n## Learning loop vs Python peers (median, min–max)")
rows = [
    # name, bench, Tower variant, peer variant, field, format, higher is better, target
    ("drift PSI+KS, 20 features, 1M vs 1M, 2 threads: wall", "drift", "binned_2t", "exact_2t", "seconds", "{:.3f} s", False, "Tower ≤ 0.5× peer time"),
    ("  same, CPU time (both threads)", "drift", "binned_2t", "exact_2t", "cpu_s", "{:.3f} s", False, ""),
    ("  peer with binned KS (1000 quantile bins): wall", "drift", "binned_2t", "binned_2t", "seconds", "{:.3f} s", False, "Tower ≤ 0.5× peer time"),
    ("  same, CPU time (both threads)", "drift", "binned_2t", "binned_2t", "cpu_s", "{:.3f} s", False, ""),
    ("scoring, top-10 per user, 1 thread: wall", "score", "1t", "1t", "pairs_per_s", "{:,.0f}/s", True, "Tower ≥ 2× peer pairs/s"),
    ("  same, pairs per CPU second", "score", "1t", "1t", "pairs_per_cpu_s", "{:,.0f}/s", True, ""),
    ("scoring, top-10 per user, 2 threads: wall", "score", "2t", "2t", "pairs_per_s", "{:,.0f}/s", True, "Tower ≥ 2× peer pairs/s"),
    ("point-in-time set, 1M events: wall", "pit", "1t", "1t", "seconds", "{:.3f} s", False, "Tower ≥ 3× faster"),
    ("  same, CPU time", "pit", "1t", "1t", "cpu_s", "{:.3f} s", False, ""),
]
print(f"| benchmark | Tower | peer | Tower vs peer | target |")
print("|---|---|---|---|---|")
for name, bench, tv, pv, field, fmt, higher, target in rows:
    t, p = stat((bench, "tower", tv), field), stat((bench, "peer", pv), field)
    if t is None and p is None:
        continue
    ratio = "—"
    if t and p:
        # Speed-up of Tower over the peer, whatever the unit: > 1 means Tower is faster.
        speedup = t[0] / p[0] if higher else p[0] / t[0]
        ratio = f"{speedup:.2f}× faster" if speedup >= 1 else f"{1 / speedup:.2f}× slower"
        if not higher:
            ratio += f" (time {t[0] / p[0]:.2f}×)"
    print(f"| {name} | {cell(t, fmt)} | {cell(p, fmt)} | {ratio} | {target} |")

# Tower's drift phases, to see where its time goes.
phases = [stat(("drift", "tower", "binned_2t"), f) for f in ("binning_s", "count_s", "merge_report_s")]
if all(phases):
    print("\nTower drift phases (median s): bins from the reference %.3f, sharded counting %.3f, merge + report %.3f"
          % tuple(p[0] for p in phases))

print("\n## Same work on both sides")
tower = checks.get(("drift", "tower", ""))
for variant in ("exact", "binned"):
    peer = checks.get(("drift", "peer", variant))
    if tower and peer:
        dp = max(abs(float(a) - float(b)) for a, b in zip(tower["psi"].split(","), peer["psi"].split(",")))
        dk = max(abs(float(a) - float(b)) for a, b in zip(tower["ks"].split(","), peer["ks"].split(",")))
        print(f"drift vs peer {variant}: max |PSI diff| {dp:.2e}, max |KS diff| {dk:.2e} over 20 features")
peer = checks.get(("score", "peer", ""))
if peer:
    print(f"score: LightGBM {peer['lightgbm']} on the exported model, max |raw score − Tower's| {peer['max_raw_diff']} "
          f"(first 100k pairs); users with the identical ordered top 10: {float(peer['top10_identical_users']):.2%}")
tower, peer = checks.get(("pit", "tower", "")), checks.get(("pit", "peer", ""))
if tower and peer:
    keys = [k for k in tower if k not in ("bench", "side")]
    exact = [k for k in keys if tower[k] == peer.get(k)]
    near = [k for k in keys if k not in exact and ":" in tower[k]
            and tower[k].split(":")[0] == peer.get(k, ":").split(":")[0]]
    differ = [k for k in keys if k not in exact and k not in near]
    print(f"pit: rows {tower['rows']} vs {peer['rows']}, positives {tower['positives']} vs {peer['positives']}, "
          f"dropped {tower['dropped']} vs {peer['dropped']}; {len(exact)} of {len(keys)} checksums identical, "
          f"{len(near)} with identical bits but float64 sums differing in rounding, differing: {differ or 'none'}")
    for k in differ:
        print(f"  {k}: tower {tower[k]} peer {peer.get(k)}")
