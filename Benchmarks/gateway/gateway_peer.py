#!/usr/bin/env python3
"""Python peer of Tower's inference gateway (see Benchmarks/gateway/run.sh).

A FastAPI app (served by uvicorn) doing the gateway's work on the same inputs, which
`tower-bench gateway-cluster` writes: the snapshot of users and active listings the
gateway serves, the champion as a LightGBM text model (the same trees), each listing's
commute to every region (what the gateway precomputes per swap), the feature schema and
the reason phrases.

  GET  /v1/recommendations?user_id=ID&k=10   precomputed top 10 (`precompute` writes them
                                             once, as Tower's score job does), else live
  POST /v1/recommendations                   an ad-hoc profile scored live: hard filters,
                                             28 pair features, LightGBM, top K, TreeSHAP
                                             reasons (pred_contrib) for the K shown

Subcommands: `precompute --dir D` (writes D/peer_precomputed.json), `check --dir D
--tower URL --peer URL` (compares both servers' answers). Served with PEER_DIR=D uvicorn
gateway_peer:app.
"""
import argparse
import json
import os
import sys

import numpy as np


class Market:
    """Listings as column arrays in the order the gateway sorts them (by id)."""

    def __init__(self, d):
        snap = json.load(open(f"{d}/snapshot.json"))
        self.meta = json.load(open(f"{d}/meta.json"))
        self.regions = self.meta["regions"]
        self.features = self.meta["features"]
        self.phrases = self.meta["phrases"]
        self.user_feature = np.array([f in set(self.meta["user_features"]) for f in self.features])
        self.users = {u["id"]: u for u in snap["users"]}
        ls = sorted(snap["listings"], key=lambda l: l["id"])
        self.listings = ls
        col = lambda key, default=np.nan: np.array([l.get(key, default) for l in ls], dtype=np.float64)
        self.ids = np.array([l["id"] for l in ls], dtype=np.int64)
        self.price, self.area, self.rooms = col("price"), col("areaM2"), col("rooms")
        self.floor, self.age = col("floor"), col("buildingAge")
        self.subway, self.school = col("subwayDistanceM"), col("schoolScore")
        self.yld, self.new_build = col("expectedYield"), np.array([1.0 if l["newBuild"] else 0.0 for l in ls])
        self.region_name = np.array([l["region"] for l in ls])
        self.region_code = np.array([self.regions.index(r) if r in self.regions else np.nan for r in self.region_name], dtype=np.float64)
        self.commute = np.array(json.load(open(f"{d}/commute.json")), dtype=np.float64)  # listings × regions
        self.view = [{"id": l["id"], "price": l["price"], "areaM2": l["areaM2"], "rooms": l["rooms"], "region": l["region"],
                      "newBuild": l["newBuild"]} for l in ls]
        import lightgbm as lgb
        self.booster = lgb.Booster(model_file=f"{d}/model.lgb.txt")
        self.model_version = self.meta["model_version"]

    def recommend(self, u, k, ceiling=1.2, region_only=False):
        """Top k listings of user `u` (a dict shaped like Tower's MarketUser) with reasons."""
        mask = np.ones(len(self.ids), dtype=bool)
        if ceiling is not None:
            mask &= ~(self.price > u["budget"] * ceiling)
        if region_only:
            mask &= self.region_name == u["preferredRegion"]
        idx = np.nonzero(mask)[0]
        if len(idx) == 0:
            return []
        region = self.regions.index(u["preferredRegion"]) if u["preferredRegion"] in self.regions else None
        commute = self.commute[idx, region] if region is not None else np.full(len(idx), np.nan)
        price, area, school = self.price[idx], self.area[idx], self.school[idx]
        children = 1.0 if u["hasChildren"] else 0.0
        new_pref = 1.0 if u["prefersNewBuild"] else 0.0
        X = np.empty((len(idx), len(self.features)), dtype=np.float32)
        for j, v in enumerate([u["age"], u["income"], u["householdSize"], children, u["maxCommuteMin"], u["riskAppetite"],
                               u["investmentHorizonYears"], new_pref, u["budget"]]):
            X[:, j] = v
        X[:, 9], X[:, 10], X[:, 11] = price, area, self.rooms[idx]
        X[:, 12], X[:, 13], X[:, 14] = self.floor[idx], self.age[idx], self.subway[idx]
        X[:, 15], X[:, 16], X[:, 17] = school, self.yld[idx], self.new_build[idx]
        X[:, 18] = self.region_code[idx]
        X[:, 19] = price / u["budget"]
        X[:, 20] = (self.region_name[idx] == u["preferredRegion"]).astype(np.float64)
        X[:, 21] = commute
        X[:, 22] = u["maxCommuteMin"] - commute
        X[:, 23] = school if u["hasChildren"] else 0.0
        X[:, 24] = u["riskAppetite"] * self.yld[idx]
        X[:, 25] = (self.new_build[idx] == new_pref).astype(np.float64)
        X[:, 26] = area / u["householdSize"]
        X[:, 27] = price / area
        raw = self.booster.predict(X, raw_score=True, num_threads=1)
        score = 1.0 / (1.0 + np.exp(-raw))
        m = min(k, len(idx))
        pick = np.argpartition(-score, m - 1)[:m] if m < len(idx) else np.arange(len(idx))
        # Best first, ties to the lower listing id, as Tower orders them.
        order = pick[np.lexsort((idx[pick], -score[pick]))]
        phi = self.booster.predict(X[order], pred_contrib=True, num_threads=1)[:, :-1]
        phi[:, self.user_feature] = 0
        items = []
        for rank, (row, contrib) in enumerate(zip(order, phi), start=1):
            positive = [j for j in np.lexsort((np.arange(len(contrib)), -contrib)) if contrib[j] > 0][:3]
            i = int(idx[row])
            items.append({"listing_id": int(self.ids[i]), "score": float(score[row]), "rank": rank,
                          "reasons": [self.phrases.get(self.features[j], self.features[j]) for j in positive],
                          "listing": self.view[i]})
        return items


def precompute(args):
    market = Market(args.dir)
    out = {u: market.recommend(user, 10) for u, user in market.users.items()}
    json.dump(out, open(f"{args.dir}/peer_precomputed.json", "w"))
    print(f"precomputed {len(out)} users", file=sys.stderr)


def check(args):
    """Both servers' answers for the first users and profiles: same listings in the same
    order, same reasons, scores equal to 1e-9."""
    import urllib.request

    def get(url, body=None):
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        return json.load(urllib.request.urlopen(req))

    same = reasons = total = 0
    worst = 0.0
    profiles = open(f"{args.dir}/profiles.jsonl").read().splitlines()[: args.n]
    users = sorted(int(u["id"]) for u in json.load(open(f"{args.dir}/snapshot.json"))["users"])[: args.n]
    sources = set()
    for path, body in [(f"/v1/recommendations?user_id={u}&k=10", None) for u in users] + \
                      [("/v1/recommendations", p.encode()) for p in profiles]:
        t, p = get(args.tower + path, body), get(args.peer + path, body)
        sources.add((t["source"], p["source"]))
        total += 1
        if [i["listing_id"] for i in t["items"]] == [i["listing_id"] for i in p["items"]]:
            same += 1
            worst = max([worst] + [abs(a["score"] - b["score"]) for a, b in zip(t["items"], p["items"])])
            reasons += all(a["reasons"] == b["reasons"] for a, b in zip(t["items"], p["items"]))
    print(f"CHECK requests={total} identical_top10={same} identical_reasons={reasons} max_score_diff={worst:.2e} "
          f"sources={sorted(sources)}")


def make_app():
    from fastapi import FastAPI, HTTPException, Query
    from fastapi.responses import ORJSONResponse
    from pydantic import BaseModel, Field

    d = os.environ["PEER_DIR"]
    market = Market(d)
    stored = {int(u): items for u, items in json.load(open(f"{d}/peer_precomputed.json")).items()}
    app = FastAPI(default_response_class=ORJSONResponse)

    class Profile(BaseModel):
        budget: float = Field(gt=0)
        region: str
        household_size: int = Field(2, ge=1, le=20)
        risk_appetite: float = Field(0.5, ge=0, le=1)
        age: int = 40
        income: float | None = None
        has_children: bool | None = None
        max_commute_min: float = 45
        investment_horizon_years: int = 10
        prefers_new_build: bool = False
        k: int = Field(10, ge=1, le=100)
        region_only: bool = False
        budget_ceiling: float = Field(1.2, gt=0)

    def answer(user_id, source, items):
        return {"user_id": user_id, "model": "match", "model_version": market.model_version, "source": source, "items": items}

    @app.get("/v1/recommendations")
    def for_user(user_id: int = Query(gt=0), k: int = Query(10, ge=1, le=100)):
        user = market.users.get(user_id)
        if user is None:
            raise HTTPException(404, f"unknown user {user_id}")
        items = stored.get(user_id)
        if items is not None and k <= len(items):
            return answer(user_id, "precomputed", items[:k])
        return answer(user_id, "live", market.recommend(user, k))

    @app.post("/v1/recommendations")
    def for_profile(p: Profile):
        if p.region not in market.regions:
            raise HTTPException(400, f"unknown region {p.region!r}")
        user = {"id": 0, "age": p.age, "income": p.income if p.income is not None else p.budget / 10,
                "householdSize": p.household_size,
                "hasChildren": p.has_children if p.has_children is not None else p.household_size >= 3,
                "maxCommuteMin": p.max_commute_min, "riskAppetite": p.risk_appetite,
                "investmentHorizonYears": p.investment_horizon_years, "prefersNewBuild": p.prefers_new_build,
                "preferredRegion": p.region, "budget": p.budget}
        return answer(None, "live", market.recommend(user, p.k, p.budget_ceiling, p.region_only))

    return app


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["precompute", "check"])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--tower")
    ap.add_argument("--peer")
    ap.add_argument("--n", type=int, default=50)
    a = ap.parse_args()
    {"precompute": precompute, "check": check}[a.command](a)
elif "PEER_DIR" in os.environ:
    app = make_app()
