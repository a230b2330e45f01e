#!/usr/bin/env python3
"""Python peers of `tower-bench loop drift|score|pit` (see Benchmarks/loop/run.sh).

Each subcommand reads the files the matching `tower-bench loop *-data` command wrote,
times only the computation (reading and converting the files is excluded, as on the
Tower side) and prints `RESULT bench=... side=peer variant=... seconds=...` lines, plus
`CHECK` lines that run.sh compares with Tower's, so both sides are shown to do the same
work. Installs nothing: run it from a venv with numpy, scipy, pandas and lightgbm.
"""
import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

PSI_EPSILON = 1e-4  # as Tower (and Evidently): proportions are raised to this before the log


def psi(r, c):
    p = np.maximum(r / r.sum(), PSI_EPSILON)
    q = np.maximum(c / c.sum(), PSI_EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


# ---------------------------------------------------------------- drift

def drift_exact(r, c):
    """PSI on 10 reference-quantile bins and scipy's exact two-sample KS."""
    from scipy.stats import ks_2samp
    edges = np.unique(np.quantile(r, np.arange(1, 10) / 10, method="inverted_cdf"))
    # A decile at the reference maximum would leave the last bin holding only values above
    # the reference range; Tower folds it into the bin below, so this does too.
    if len(edges) and edges[-1] == r.max():
        edges = edges[:-1]
    rc = np.bincount(np.searchsorted(edges, r, side="left"), minlength=len(edges) + 1)
    cc = np.bincount(np.searchsorted(edges, c, side="left"), minlength=len(edges) + 1)
    return psi(rc, cc), float(ks_2samp(r, c).statistic)


def drift_binned(r, c, fine=1000):
    """Tower's method in numpy: 1000 reference-quantile cut points, counts of both sides
    in them, KS at the cut points and PSI on the deciles grouped from the fine counts."""
    s = np.sort(r)
    n = len(s)
    idx = np.maximum(0, (np.arange(fine + 1) * n + fine - 1) // fine - 1)
    cuts = np.unique(s[idx])
    v = len(cuts)
    rc = np.bincount(np.searchsorted(cuts, r, side="left"), minlength=v + 1)
    cc = np.bincount(np.searchsorted(cuts, c, side="left"), minlength=v + 1)
    ks = float(np.max(np.abs(np.cumsum(rc[:v]) / rc.sum() - np.cumsum(cc[:v]) / cc.sum())))
    cum = np.cumsum(rc[:v])
    ends = np.unique(np.searchsorted(cum * 10, np.arange(1, 10) * rc.sum(), side="left"))
    ends = [int(e) for e in ends if e < v]
    if ends and ends[-1] == v - 1:
        ends.pop()
    ends.append(v)
    starts = [0] + [e + 1 for e in ends[:-1]]
    return psi(np.add.reduceat(rc, starts), np.add.reduceat(cc, starts)), ks


def drift(args):
    meta = json.load(open(f"{args.dir}/meta.json"))
    rows, features = meta["rows"], meta["features"]
    ref = np.fromfile(f"{args.dir}/ref.f32", dtype="<f4").reshape(features, rows)
    cur = np.fromfile(f"{args.dir}/cur.f32", dtype="<f4").reshape(features, rows)
    for name, fn in [("exact", drift_exact), ("binned", drift_binned)]:
        start, cpu_start = time.perf_counter(), time.process_time()
        # numpy's sort, searchsorted and bincount release the GIL, so threads over
        # features use both cores like Tower's two workers.
        with ThreadPoolExecutor(max_workers=args.threads) as pool:
            out = list(pool.map(lambda f: fn(ref[f], cur[f]), range(features)))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        print(f"RESULT bench=drift side=peer variant={name}_{args.threads}t seconds={elapsed:.4f} cpu_s={cpu:.4f}")
        print(f"CHECK bench=drift side=peer variant={name} psi={','.join(f'{p:.6f}' for p, _ in out)} "
              f"ks={','.join(f'{k:.6f}' for _, k in out)}", flush=True)


# ---------------------------------------------------------------- score

def score(args):
    import lightgbm as lgb
    meta = json.load(open(f"{args.dir}/meta.json"))
    X = np.fromfile(f"{args.dir}/pairs.f32", dtype="<f4").reshape(meta["pairs"], meta["features"])
    offsets = np.fromfile(f"{args.dir}/offsets.i64", dtype="<i8")
    ids = np.fromfile(f"{args.dir}/listing_ids.i64", dtype="<i8")
    booster = lgb.Booster(model_file=f"{args.dir}/model.lgb.txt")
    tower_raw = np.fromfile(f"{args.dir}/tower_raw.f64", dtype="<f8")
    raw = booster.predict(X[: len(tower_raw)], raw_score=True)
    diff = float(np.max(np.abs(raw - tower_raw)))
    k = 10
    for threads in [int(t) for t in args.threads.split(",")]:
        start, cpu_start = time.perf_counter(), time.process_time()
        p = booster.predict(X, num_threads=threads)
        top = np.full((len(offsets) - 1, k), -1, dtype=np.int64)
        for u in range(len(offsets) - 1):
            a, b = offsets[u], offsets[u + 1]
            seg = p[a:b]
            m = min(k, b - a)
            if m == 0:
                continue
            pick = np.argpartition(-seg, m - 1)[:m] if m < b - a else np.arange(b - a)
            # Best first, ties to the lower listing id, as Tower orders them.
            order = pick[np.lexsort((ids[a + pick], -seg[pick]))]
            top[u, :m] = ids[a + order]
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        print(f"RESULT bench=score side=peer variant={threads}t seconds={elapsed:.4f} cpu_s={cpu:.4f} pairs={len(X)} "
              f"pairs_per_s={len(X) / elapsed:.0f} pairs_per_cpu_s={len(X) / cpu:.0f}", flush=True)
    agree = float("nan")
    try:
        tower_top = np.fromfile(f"{args.dir}/tower_top10.i64", dtype="<i8").reshape(-1, k)
        agree = float(np.mean(np.all(tower_top == top, axis=1)))
    except (FileNotFoundError, ValueError):
        pass
    print(f"CHECK bench=score side=peer max_raw_diff={diff:.3e} top10_identical_users={agree:.4f} lightgbm={lgb.__version__}")


# ---------------------------------------------------------------- point in time

LISTING_COLUMNS = ["id", "event_time", "written_at", "price", "area_m2", "rooms", "floor", "building_age", "region",
                   "subway_distance_m", "school_score", "expected_yield", "new_build", "lat", "lon"]
USER_COLUMNS = ["id", "event_time", "written_at", "age", "income", "household_size", "has_children", "max_commute_min",
                "risk_appetite", "investment_horizon_years", "prefers_new_build", "preferred_region", "budget"]
FEATURES = ["age", "income", "household_size", "has_children", "max_commute_min", "risk_appetite",
            "investment_horizon_years", "prefers_new_build", "budget", "price", "area_m2", "rooms", "floor",
            "building_age", "subway_distance_m", "school_score", "expected_yield", "new_build", "region",
            "price_to_budget", "region_match", "commute_min_est", "commute_slack_min", "school_x_children",
            "yield_x_risk", "new_build_match", "area_per_person", "price_per_m2"]
# Centres of DemoMarket's regions, in its order (a region's code is its index).
REGION_LAT = np.array([37.4979, 37.5145, 37.5634, 37.5663, 37.5735, 37.5264, 37.5509, 37.6542])
REGION_LON = np.array([127.0276, 127.1059, 127.0369, 126.9019, 126.9790, 126.8962, 126.8495, 127.0568])


def pit_visible(pd, ex_time, ex_id, known, versions):
    """Per example, the position in `versions` (sorted by event time) of the latest version
    with event_time <= t that was written by `known`, or -1. merge_asof finds the latest by
    event time; rows whose match was written too late ask again for the version before
    that one, until every match is visible or there is none."""
    right = pd.DataFrame({"event_time": versions["event_time"].to_numpy(), "id": versions["id"].to_numpy(),
                          "vidx": np.arange(len(versions))})
    left = pd.DataFrame({"t": ex_time, "id": ex_id, "row": np.arange(len(ex_time))})
    m = pd.merge_asof(left, right, left_on="t", right_on="event_time", by="id", direction="backward")
    vidx = m["vidx"].to_numpy()
    vidx = np.where(np.isnan(vidx), -1, vidx).astype(np.int64)
    written = versions["written_at"].to_numpy()
    event = versions["event_time"].to_numpy()
    late = (vidx >= 0) & (written[np.maximum(vidx, 0)] > known)
    while late.any():
        rows = np.nonzero(late)[0]
        sub = pd.DataFrame({"t": event[vidx[rows]], "id": ex_id[rows], "row": rows}).sort_values("t", kind="mergesort")
        m2 = pd.merge_asof(sub, right, left_on="t", right_on="event_time", by="id", direction="backward",
                           allow_exact_matches=False)
        nv = m2["vidx"].to_numpy()
        nv = np.where(np.isnan(nv), -1, nv).astype(np.int64)
        r2 = m2["row"].to_numpy()
        vidx[r2] = nv
        late = np.zeros(len(vidx), dtype=bool)
        late[r2] = (nv >= 0) & (written[np.maximum(nv, 0)] > known[r2])
    return vidx


def pit(args):
    import pandas as pd
    d = args.dir

    def table(name, cols):
        return pd.DataFrame({c: np.fromfile(f"{d}/{name}.{c}.f64", dtype="<f8") for c in cols})

    definition = json.load(open(f"{d}/definition.json"))
    listings = table("listings", LISTING_COLUMNS)
    users = table("users", USER_COLUMNS)
    imp = table("impressions", ["event_num", "user_id", "listing_id", "time", "written_at"])
    acts = table("actions", ["user_id", "listing_id", "time", "written_at"])
    # As they would come out of read_csv: integer ids, string event ids.
    for t in (listings, users):
        t["id"] = t["id"].astype(np.int64)
    for t in (imp, acts):
        t["user_id"] = t["user_id"].astype(np.int64)
        t["listing_id"] = t["listing_id"].astype(np.int64)
    imp["event_id"] = [f"e{int(x):08d}" for x in imp["event_num"].to_numpy()]
    imp = imp.drop(columns=["event_num"])
    lo, hi, as_of, window = definition["from"], definition["to"], definition["asOf"], definition["labelWindowSeconds"]

    start, cpu_start = time.perf_counter(), time.process_time()
    ex = imp[(imp["time"] >= lo) & (imp["time"] < hi) & (imp["written_at"] <= as_of)]
    ex = ex.sort_values(["time", "event_id"], kind="mergesort").reset_index(drop=True)
    # Labels: each action credits the latest impression of its pair at or before it, within the window.
    a = acts[acts["written_at"] <= as_of].sort_values("time", kind="mergesort")
    shown = pd.DataFrame({"imp_time": ex["time"].to_numpy(), "user_id": ex["user_id"].to_numpy(),
                          "listing_id": ex["listing_id"].to_numpy(), "pos": np.arange(len(ex))})
    m = pd.merge_asof(a, shown, left_on="time", right_on="imp_time", by=["user_id", "listing_id"], direction="backward")
    ok = m["imp_time"].notna() & (m["time"] - m["imp_time"] <= window)
    label = np.zeros(len(ex), dtype=np.float32)
    label[m.loc[ok, "pos"].to_numpy().astype(np.int64)] = 1

    t = ex["time"].to_numpy()
    known = np.minimum(t, as_of)
    u_sorted = users.sort_values(["event_time", "written_at"], kind="mergesort").reset_index(drop=True)
    l_sorted = listings.sort_values(["event_time", "written_at"], kind="mergesort").reset_index(drop=True)
    ui = pit_visible(pd, t, ex["user_id"].to_numpy(), known, u_sorted)
    li = pit_visible(pd, t, ex["listing_id"].to_numpy(), known, l_sorted)
    keep = (ui >= 0) & (li >= 0)
    u = u_sorted.take(ui[keep])
    lv = l_sorted.take(li[keep])

    def U(c):
        return u[c].to_numpy()

    def L(c):
        return lv[c].to_numpy()

    pref = U("preferred_region").astype(np.int64)
    rlat, rlon = REGION_LAT[pref], REGION_LON[pref]
    lat, lon = L("lat"), L("lon")
    x = (rlon - lon) * np.cos((lat + rlat) * 0.5 * np.pi / 180) * 111.32
    y = (rlat - lat) * 110.57
    subway = L("subway_distance_m")
    commute = 8 + 2.4 * np.sqrt(x * x + y * y) + np.where(np.isnan(subway), 600.0, subway) / 80
    school = L("school_score")
    values = [U("age"), U("income"), U("household_size"), U("has_children"), U("max_commute_min"), U("risk_appetite"),
              U("investment_horizon_years"), U("prefers_new_build"), U("budget"), L("price"), L("area_m2"), L("rooms"),
              L("floor"), L("building_age"), subway, school, L("expected_yield"), L("new_build"), L("region"),
              L("price") / U("budget"), (L("region") == U("preferred_region")).astype(np.float64), commute,
              U("max_commute_min") - commute, np.where(U("has_children") != 0, school, 0.0),
              U("risk_appetite") * L("expected_yield"), (U("prefers_new_build") == L("new_build")).astype(np.float64),
              L("area_m2") / U("household_size"), L("price") / L("area_m2")]
    out = pd.DataFrame({name: v.astype(np.float32) for name, v in zip(FEATURES, values)})
    out["label"] = label[keep]
    out["group"] = ex["user_id"].to_numpy()[keep]
    out["day"] = np.floor(t[keep] / 86_400).astype(np.int64)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start

    print(f"RESULT bench=pit side=peer variant=1t seconds={elapsed:.4f} cpu_s={cpu:.4f} rows={len(out)}")
    parts = [f"rows={len(out)}", f"positives={int(out['label'].sum())}", f"dropped={int((~keep).sum())}",
             f"groups={int(out['group'].sum())}", f"days={int(out['day'].sum())}"]
    for name in FEATURES:
        col = out[name].to_numpy()
        bits = int(col.view(np.uint32).astype(np.uint64).sum())
        total = float(col[np.isfinite(col)].astype(np.float64).sum())
        parts.append(f"{name}={bits}:{total:.6e}")
    print("CHECK bench=pit side=peer " + " ".join(parts), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bench", choices=["drift", "score", "pit"])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--threads", default=None)
    args = ap.parse_args()
    if args.bench == "drift":
        args.threads = int(args.threads or 2)
        drift(args)
    elif args.bench == "score":
        args.threads = args.threads or "1,2"
        score(args)
    else:
        pit(args)


if __name__ == "__main__":
    main()
