#!/usr/bin/env python3
"""rea's fast gradient-boosted-trees CTR trainer (LightGBM).

Invocation::

    python trainers/gbdt/train.py --config CONFIG_JSON_PATH --metrics METRICS_JSON_PATH

A run takes about a second: it is an example model for benchmarking search
methods, with the protocol of docs/trainers.md (progress lines, atomic
metrics file + ``rea:metrics`` line, ``rea:error`` + exit codes 1 crash,
2 bad_config, 3 oom, 4 nan).  Every config key is in ``PARAM_SPECS`` and in
docs/trainers.md ("GBDT trainer").

Features: every categorical field of the data set with at most
``category_limit`` distinct training values is a LightGBM categorical
feature (its value index); a field with more values (user, ad, item ids) is
an "id" and is encoded by ``id_encoding``:

* ``"categorical"``: a LightGBM categorical feature like the others;
* ``"count"``: how often the value occurs in the training split;
* ``"target"``: the value's smoothed click rate
  ``(clicks + target_prior * p) / (rows + target_prior)`` (``p`` the training
  base rate), out-of-fold on the training split (5 folds drawn from ``seed``)
  so that a row never sees its own label, from the whole training split on
  the evaluated split;
* ``"count_target"``: both.

Everything is computed on the training split only; a value the training
split never saw has count 0 and target rate ``p``.  ``target_prior`` does
nothing unless ``id_encoding`` uses the target.

Boosting: ``rounds`` trees (the fidelity knob) of at most ``leaf_count``
leaves (``depth_limit`` 0 = no depth limit), each leaf with at least
``min_leaf_rows`` rows, L2 ``l2_leaf`` on leaf values, ``shrinkage`` per tree,
features binned into at most ``bin_count`` bins, a ``feature_fraction`` of
the features per tree and a ``row_fraction`` of the rows per tree (bagging,
off at 1).  LightGBM runs deterministically on ``threads`` threads; all its
random streams derive from ``seed``.

Determinism: same config => bit-identical metrics except ``wall_time_s``
(for a given ``threads``).
"""

from __future__ import annotations

import time

_PROCESS_START = time.perf_counter()

import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any, Sequence  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
_COMMON = os.path.join(os.path.dirname(_HERE), "common")
if _COMMON not in sys.path:
    sys.path.insert(0, _COMMON)

import fastkit  # noqa: E402
from fastkit import MAX_SEED, BadConfig, DatasetConfig, LossDiverged, OutOfMemory, Spec  # noqa: E402

fastkit.limit_threads(1)  # numpy's BLAS; LightGBM gets num_threads = threads

import numpy as np  # noqa: E402

import fastdata  # noqa: E402

ID_ENCODINGS = ("categorical", "count", "target", "count_target")
PARAM_SPECS: dict[str, Spec] = {
    "seed": Spec("int", 0, lo=0, hi=MAX_SEED),
    "rounds": Spec("int", 200, lo=1, hi=10_000),
    "shrinkage": Spec("float", 0.1, lo=0, hi=1, lo_exclusive=True),
    "leaf_count": Spec("int", 31, lo=2, hi=4096),
    "depth_limit": Spec("int", 0, lo=0, hi=64),
    "min_leaf_rows": Spec("int", 20, lo=1, hi=1_000_000),
    "l2_leaf": Spec("float", 0.0, lo=0, hi=1e6),
    "bin_count": Spec("int", 255, lo=2, hi=4096),
    "feature_fraction": Spec("float", 1.0, lo=0, hi=1, lo_exclusive=True),
    "row_fraction": Spec("float", 1.0, lo=0, hi=1, lo_exclusive=True),
    "id_encoding": Spec("choice", "count", choices=ID_ENCODINGS),
    "target_prior": Spec("float", 10.0, lo=0, hi=1e6),
    "category_limit": Spec("int", 100, lo=2, hi=1_000_000),
    "threads": Spec("int", 1, lo=1, hi=64),
    "eval_split": Spec("choice", "valid", choices=("valid", "test")),
    "memory_cap_mb": Spec("int", 2048, lo=1),
}
TARGET_FOLDS = 5
# Prints a progress line; a module global so that an in-process caller can replace it.
report_progress = fastkit.report_progress
FOLD_TAG = 3


@dataclass(frozen=True)
class Config:
    seed: int
    rounds: int
    shrinkage: float
    leaf_count: int
    depth_limit: int
    min_leaf_rows: int
    l2_leaf: float
    bin_count: int
    feature_fraction: float
    row_fraction: float
    id_encoding: str
    target_prior: float
    category_limit: int
    threads: int
    eval_split: str
    memory_cap_mb: int
    dataset: DatasetConfig


def parse_config(raw: Any) -> Config:
    values = fastkit.check_object(raw, PARAM_SPECS, "config", extra=("dataset",))
    return Config(**values, dataset=fastkit.parse_dataset(raw.get("dataset", {})))


# --------------------------------------------------------------------------- memory


def estimate_memory_mb(cfg: Config) -> float:
    """The data and its float64 feature matrices (at most two columns per field), LightGBM's
    binned copy, one gradient histogram of every feature per leaf, and the trees."""
    n_fields = fastkit.N_FEATURES[cfg.dataset.name]
    n_train, n_eval = cfg.dataset.rows()
    columns = 2 * n_fields
    data = (n_train + n_eval) * (n_fields * 4 + 8 * 3) + (n_train + n_eval) * columns * 8 * 2
    binned = (n_train + n_eval) * columns * 4
    histograms = cfg.leaf_count * columns * min(cfg.bin_count + 1, n_train) * 24
    trees = cfg.rounds * cfg.leaf_count * 64
    return (data + binned + histograms + trees) / fastkit.MB


def check_memory(cfg: Config) -> float:
    estimate = estimate_memory_mb(cfg)
    if estimate > cfg.memory_cap_mb:
        raise OutOfMemory(
            f"estimated memory {estimate:.1f} MB exceeds memory_cap_mb {cfg.memory_cap_mb} MB "
            f"(leaf_count {cfg.leaf_count}, bin_count {cfg.bin_count}, rounds {cfg.rounds})"
        )
    return estimate


# --------------------------------------------------------------------------- features


@dataclass(frozen=True)
class Features:
    train: np.ndarray  # (n_train, C) float64
    evaluated: np.ndarray  # (n_eval, C)
    names: list[str]
    categorical: list[int]  # columns that are LightGBM categorical features


def fold_of_rows(n: int, seed: int) -> np.ndarray:
    """Target-encoding fold (0..TARGET_FOLDS-1) of each training row, drawn from ``seed``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, FOLD_TAG]))
    return rng.integers(0, TARGET_FOLDS, size=n)


def encode(cfg: Config, data: fastdata.Data, evaluated: fastdata.Split, base_ctr: float) -> Features:
    train_x, eval_x = data.train.features, evaluated.features
    y = data.train.labels
    cols_train: list[np.ndarray] = []
    cols_eval: list[np.ndarray] = []
    names: list[str] = []
    categorical: list[int] = []
    folds = None
    for f, name in enumerate(data.feature_names):
        card = data.cardinalities[f]
        counts = np.bincount(train_x[:, f], minlength=card)
        is_id = int(np.count_nonzero(counts)) > cfg.category_limit
        if not is_id or cfg.id_encoding == "categorical":
            categorical.append(len(names))
            names.append(name)
            cols_train.append(train_x[:, f].astype(np.float64))
            cols_eval.append(eval_x[:, f].astype(np.float64))
            continue
        if cfg.id_encoding in ("count", "count_target"):
            names.append(f"{name}_count")
            cols_train.append(counts[train_x[:, f]].astype(np.float64))
            cols_eval.append(counts[eval_x[:, f]].astype(np.float64))
        if cfg.id_encoding in ("target", "count_target"):
            if folds is None:
                folds = fold_of_rows(train_x.shape[0], cfg.seed)
            clicks = np.bincount(train_x[:, f], weights=y, minlength=card)
            prior = cfg.target_prior

            def rate(c: np.ndarray, n: np.ndarray) -> np.ndarray:
                with np.errstate(invalid="ignore", divide="ignore"):
                    out = (c + prior * base_ctr) / (n + prior)
                return np.where(n + prior > 0, out, base_ctr)

            oof = np.empty(train_x.shape[0])
            for k in range(TARGET_FOLDS):
                inside = folds == k
                c_out = clicks - np.bincount(train_x[inside, f], weights=y[inside], minlength=card)
                n_out = counts - np.bincount(train_x[inside, f], minlength=card)
                oof[inside] = rate(c_out, n_out)[train_x[inside, f]]
            names.append(f"{name}_ctr")
            cols_train.append(oof)
            cols_eval.append(rate(clicks, counts.astype(np.float64))[eval_x[:, f]])
    return Features(
        train=np.column_stack(cols_train),
        evaluated=np.column_stack(cols_eval),
        names=names,
        categorical=categorical,
    )


# --------------------------------------------------------------------------- boosting


def lightgbm_params(cfg: Config) -> dict[str, Any]:
    seeds = np.random.SeedSequence([cfg.seed, 1]).generate_state(4)
    params: dict[str, Any] = {
        "objective": "binary",
        "learning_rate": cfg.shrinkage,
        "num_leaves": cfg.leaf_count,
        "max_depth": cfg.depth_limit if cfg.depth_limit > 0 else -1,
        "min_data_in_leaf": cfg.min_leaf_rows,
        "min_sum_hessian_in_leaf": 1e-3,
        "lambda_l2": cfg.l2_leaf,
        "max_bin": cfg.bin_count,
        "feature_fraction": cfg.feature_fraction,
        "bagging_fraction": cfg.row_fraction,
        "bagging_freq": 1 if cfg.row_fraction < 1.0 else 0,
        "num_threads": cfg.threads,
        "deterministic": True,
        "force_col_wise": True,
        "seed": int(seeds[0]) & 0x7FFFFFFF,
        "bagging_seed": int(seeds[1]) & 0x7FFFFFFF,
        "feature_fraction_seed": int(seeds[2]) & 0x7FFFFFFF,
        "data_random_seed": int(seeds[3]) & 0x7FFFFFFF,
        "metric": "binary_logloss",
        "verbosity": -1,
    }
    return params


@dataclass(frozen=True)
class TrainResult:
    logits: np.ndarray
    seconds: float
    leaves: int


def train(
    cfg: Config, feats: Features, labels: np.ndarray, eval_labels: np.ndarray, base_ctr: float
) -> TrainResult:
    import lightgbm as lgb

    params = lightgbm_params(cfg)
    start = time.perf_counter()
    train_set = lgb.Dataset(
        feats.train,
        label=labels,
        feature_name=feats.names,
        categorical_feature=feats.categorical,
        params={"max_bin": cfg.bin_count, "verbosity": -1},
        free_raw_data=False,
    )
    booster = lgb.Booster(params=params, train_set=train_set)
    points = fastkit.progress_points(cfg.rounds, 10)
    # raw scores on the evaluated split, one block of trees at a time (each tree is applied once)
    logits = np.zeros(feats.evaluated.shape[0])
    done = 0
    window_start = time.perf_counter()
    for point in points:
        for _ in range(point - done):
            booster.update()
        block = booster.predict(
            feats.evaluated, raw_score=True, start_iteration=done, num_iteration=point - done
        )
        logits += block
        window_rows = (point - done) * feats.train.shape[0]
        done = point
        train_loss = _logloss_of(booster.eval_train())
        if not (math.isfinite(train_loss) and np.all(np.isfinite(logits))):
            raise LossDiverged(f"log loss became non-finite by round {point} (shrinkage {cfg.shrinkage})")
        ne = fastdata.ne_of(logits, eval_labels, base_ctr, f"at round {point}")
        now = time.perf_counter()
        report_progress(point, cfg.rounds, train_loss, window_rows / max(now - window_start, 1e-9), ne)
        window_start = time.perf_counter()
    model_text = booster.model_to_string()
    prefix = "num_leaves="
    leaves = sum(int(line[len(prefix) :]) for line in model_text.splitlines() if line.startswith(prefix))
    return TrainResult(logits=logits, seconds=time.perf_counter() - start, leaves=leaves)


def _logloss_of(results: list[tuple[str, str, float, bool]]) -> float:
    for _data, metric, value, _higher_better in results:
        if metric == "binary_logloss":
            return float(value)
    raise fastkit.TrainerError(f"LightGBM reported no binary_logloss: {results}")


# --------------------------------------------------------------------------- main


def run(argv: Sequence[str] | None) -> None:
    args = fastkit.parse_args(argv, "rea fast GBDT trainer")
    cfg = parse_config(fastkit.read_config_file(args.config))
    estimate = check_memory(cfg)
    data_start = time.perf_counter()
    data = fastdata.load(cfg.dataset, need_test=cfg.eval_split == "test")
    evaluated = data.test if cfg.eval_split == "test" else data.valid
    assert evaluated is not None
    base_ctr = fastdata.base_rate(data.train.labels)
    fastkit.log(
        f"dataset {data.source}: {len(data.train)} train, {len(evaluated)} {cfg.eval_split} rows, "
        f"base ctr {base_ctr:.4f} (cache {data.cache}, {time.perf_counter() - data_start:.3f}s)"
    )
    feats = encode(cfg, data, evaluated, base_ctr)
    fastkit.log(
        f"features: {', '.join(feats.names)} (categorical: "
        f"{', '.join(feats.names[i] for i in feats.categorical) or 'none'}); "
        f"estimated memory {estimate:.1f} MB (cap {cfg.memory_cap_mb} MB), threads {cfg.threads}"
    )
    result = train(cfg, feats, data.train.labels, evaluated.labels, base_ctr)
    scores = fastdata.evaluate(result.logits, evaluated, base_ctr)
    metrics: dict[str, Any] = {
        **scores,
        "param_count": result.leaves,  # leaf values of all trees
        "examples_per_s": cfg.rounds * len(data.train) / max(result.seconds, 1e-9),
        "wall_time_s": time.perf_counter() - _PROCESS_START,
        "rounds": cfg.rounds,
        "train_examples": len(data.train),
        "valid_examples": len(evaluated),
        "base_ctr": base_ctr,
    }
    bayes = f" (bayes {scores['bayes_ne']:.5f})" if "bayes_ne" in scores else ""
    fastkit.log(f"eval on {cfg.eval_split}: ne {scores['ne']:.5f}{bayes}, auc {scores['auc']:.5f}")
    fastkit.write_metrics(args.metrics, metrics)


def main(argv: Sequence[str] | None = None) -> int:
    return fastkit.main_wrapper(run, argv)


def block_optional_imports() -> None:
    """LightGBM imports its optional integrations (scikit-learn, pandas, ...) when they are
    installed; the trainer uses none of them, and importing scikit-learn alone takes 1.5-2.5 s
    on a small machine.  Run as a program, the trainer makes those imports fail fast (an
    ImportError, which LightGBM expects when they are absent); imported as a module it
    leaves the host process alone."""
    for name in ("sklearn", "pandas", "dask", "pyarrow", "matplotlib", "graphviz", "polars", "cffi"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


if __name__ == "__main__":
    block_optional_imports()
    fastkit.exit_now(main())
