#!/usr/bin/env python3
"""LightGBM peer for Tower's learning benchmark.

Reads the train/test CSVs written by `learning-bench`, trains LightGBM with the same
parameters (200 trees, 31 leaves, learning rate 0.1, max_bin 255, binary log-loss, the
test rows as a valid set scored with log-loss and AUC after every iteration) with 1 and
2 threads, `--repeat` times, and prints `RESULT key=value ...` lines in the same format as the Swift
bench. Installs nothing: run it from an environment that has lightgbm and numpy
(run.sh creates one).

P@10 and NDCG@10 are computed exactly as Tower computes them: per group (user), rows
sorted by descending score (ties by row order), precision over min(10, group size),
averaged over groups with at least one positive.
"""
import argparse
import math
import resource
import time

import numpy as np
import lightgbm as lgb
from sklearn.metrics import roc_auc_score, log_loss


def load(path):
    with open(path) as f:
        header = f.readline().strip().split(",")
    data = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=np.float64,
                         missing_values="", filling_values=np.nan)
    cols = {name: i for i, name in enumerate(header)}
    features = [n for n in header if n not in ("label", "group", "day")]
    X = np.ascontiguousarray(data[:, [cols[n] for n in features]].astype(np.float32))
    y = data[:, cols["label"]]
    groups = data[:, cols["group"]].astype(np.int64) if "group" in cols else None
    return X, y, groups, features


def ranking(scores, labels, groups, k=10):
    order = np.lexsort((np.arange(len(scores)), -scores, groups))
    p_sum = n_sum = 0.0
    evaluated = 0
    start = 0
    g = groups[order]
    while start < len(order):
        end = start
        while end < len(order) and g[end] == g[start]:
            end += 1
        rows = order[start:end]
        positives = int(labels[rows].sum())
        if positives > 0:
            top = min(k, len(rows))
            hits = 0
            dcg = 0.0
            for rank in range(top):
                if labels[rows[rank]] > 0.5:
                    hits += 1
                    dcg += 1 / math.log2(rank + 2)
            ideal = sum(1 / math.log2(r + 2) for r in range(min(top, positives)))
            p_sum += hits / top
            n_sum += dcg / ideal
            evaluated += 1
        start = end
    return p_sum / evaluated, n_sum / evaluated


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="Benchmarks/results")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--trees", type=int, default=200)
    ap.add_argument("--predict-rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--dataset", default="market")
    # Validation log-loss and AUC on the test rows after every iteration, as Tower does.
    ap.add_argument("--valid", type=int, default=1)
    args = ap.parse_args()

    Xtr, ytr, _, names = load(f"{args.data}/train.csv")
    Xte, yte, gte, _ = load(f"{args.data}/test.csv")
    reps = (max(1, args.predict_rows) + len(Xte) - 1) // len(Xte)
    Xbig = np.ascontiguousarray(np.tile(Xte, (reps, 1))[: max(1, args.predict_rows)])
    print(f"lightgbm {lgb.__version__}: train {Xtr.shape}, test {Xte.shape}")

    for run in range(1, args.repeat + 1):
        for threads in [int(t) for t in args.threads.split(",")]:
            params = dict(objective="binary", num_leaves=31, learning_rate=0.1, max_bin=255,
                          min_data_in_leaf=20, min_sum_hessian_in_leaf=1e-3, lambda_l2=0.0,
                          feature_fraction=1.0, bagging_fraction=1.0, bagging_freq=0,
                          num_threads=threads, seed=0, deterministic=True, verbose=-1,
                          metric=["binary_logloss", "auc"])
            start, cpu_start = time.perf_counter(), time.process_time()
            # Dataset construction (binning) is part of training, as in Tower's timing.
            train = lgb.Dataset(Xtr, label=ytr, feature_name=names, free_raw_data=False)
            extra = {}
            if args.valid:
                valid = lgb.Dataset(Xte, label=yte, reference=train, free_raw_data=False)
                extra = dict(valid_sets=[valid], valid_names=["test"])
            booster = lgb.train(params, train, num_boost_round=args.trees, **extra)
            train_s = time.perf_counter() - start
            train_cpu_s = time.process_time() - cpu_start
            p = booster.predict(Xte, num_threads=threads)
            auc = roc_auc_score(yte, p)
            ll = log_loss(yte, p)
            p10, ndcg10 = ranking(p, yte, gte) if gte is not None else (float("nan"), float("nan"))
            # Raw against raw, probabilities against probabilities; the median of three each.
            def timed(**kw):
                times = []
                for _ in range(3):
                    start = time.perf_counter()
                    big = booster.predict(Xbig, num_threads=threads, **kw)
                    times.append(time.perf_counter() - start)
                    assert len(big) == len(Xbig)
                return sorted(times)[1]
            raw_rate = prob_rate = float("nan")
            if run == 1 and args.predict_rows > 0:
                raw_rate, prob_rate = len(Xbig) / timed(raw_score=True), len(Xbig) / timed()
            print(f"RESULT impl=lightgbm dataset={args.dataset} run={run} threads={threads} train_s={train_s:.3f} "
                  f"train_cpu_s={train_cpu_s:.3f} "
                  f"auc={auc:.5f} logloss={ll:.5f} p10={p10:.5f} ndcg10={ndcg10:.5f} "
                  f"predict_raw_rows_per_s={raw_rate:.0f} predict_prob_rows_per_s={prob_rate:.0f} "
                  f"peak_rss_mb={peak_rss_mb():.1f}", flush=True)

if __name__ == "__main__":
    main()
