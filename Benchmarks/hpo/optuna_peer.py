#!/usr/bin/env python3
"""Optuna peer for Tower's hyperparameter-search benchmark.

Reads train/valid/test CSVs written by `tower-bench hpo` (Tower's own pair features, so
both sides learn from identical columns), runs Optuna's TPE sampler with n_jobs=2 over
LightGBM (one thread per trial) with the same search space and trial budget, picks the
trial with the best validation AUC, and reports its test (holdout) AUC and the wall time
as `RESULT key=value ...`. Installs nothing (Benchmarks/hpo/run.sh makes a venv).

Same per-iteration work as Tower's trials: validation log-loss and AUC every iteration.
Same sampler behaviour: TPE with a constant liar for running trials (Tower's sampler
treats running trials the same way). `--pruner sha` stops weak trials with Optuna's
successive-halving pruner at the rungs Tower's ASHA uses (first rung 20 iterations,
reduction factor 3), from the validation AUC reported every 10 iterations as Tower's
workers report it.
"""
import argparse
import time

import numpy as np
import lightgbm as lgb
import optuna
from sklearn.metrics import roc_auc_score


def load(path):
    with open(path) as f:
        header = f.readline().strip().split(",")
    data = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=np.float64,
                         missing_values="", filling_values=np.nan)
    cols = {n: i for i, n in enumerate(header)}
    features = [n for n in header if n not in ("label", "group", "day")]
    return np.ascontiguousarray(data[:, [cols[n] for n in features]].astype(np.float32)), data[:, cols["label"]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--pruner", choices=["none", "sha"], default="none")
    args = ap.parse_args()
    # Tower's wall time includes shipping and featurizing the data on each worker, so
    # report the peer both with and without loading its (already featurized) CSVs.
    loading = time.perf_counter()
    Xtr, ytr = load(f"{args.data}/train.csv")
    Xva, yva = load(f"{args.data}/valid.csv")
    Xte, yte = load(f"{args.data}/test.csv")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    models = {}

    def objective(trial):
        params = {
            "objective": "binary", "verbose": -1, "num_threads": 1, "max_bin": 255,
            "num_leaves": trial.suggest_int("num_leaves", 8, 128, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 5, 100),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
            "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
            "bagging_freq": 1,
            "lambda_l2": trial.suggest_float("lambda_l2", 0.001, 10, log=True),
        }
        params["metric"] = ["binary_logloss", "auc"]
        train_set = lgb.Dataset(Xtr, ytr)
        valid_set = lgb.Dataset(Xva, yva, reference=train_set)

        def report(env):
            iteration = env.iteration + 1
            if args.pruner == "sha" and iteration % 10 == 0:
                auc = next(v for _, name, v, _ in env.evaluation_result_list if name == "auc")
                trial.report(auc, iteration)
                if trial.should_prune():
                    raise optuna.TrialPruned()

        booster = lgb.train(params, train_set, num_boost_round=200, valid_sets=[valid_set], callbacks=[report])
        auc = roc_auc_score(yva, booster.predict(Xva))
        models[trial.number] = booster
        return auc

    start = time.perf_counter()
    pruner = (optuna.pruners.SuccessiveHalvingPruner(min_resource=20, reduction_factor=3)
              if args.pruner == "sha" else optuna.pruners.NopPruner())
    study = optuna.create_study(direction="maximize", pruner=pruner,
                                sampler=optuna.samplers.TPESampler(seed=args.seed, constant_liar=True))
    study.optimize(objective, n_trials=args.trials, n_jobs=args.jobs)
    wall = time.perf_counter() - start
    wall_with_load = time.perf_counter() - loading
    best = models[study.best_trial.number]
    test_auc = roc_auc_score(yte, best.predict(Xte))
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    print(f"RESULT side=optuna trials={args.trials} jobs={args.jobs} wall={wall:.3f} wall_with_load={wall_with_load:.3f} "
          f"best_valid_auc={study.best_value:.5f} test_auc={test_auc:.5f} stopped_early={pruned}")


if __name__ == "__main__":
    main()
