"""Data and metrics of rea's fast example trainers (numpy side of ``fastkit``).

Data: the data sets of the CTR trainer, loaded through
``trainers/ctr/ctr_datasets.py`` (imported by its path, never copied), with
an on-disk cache so that a run does not regenerate or re-parse them:

* folder: ``$REA_DATA_CACHE`` when set, else ``<system temp dir>/rea-data-cache-<uid>``;
* one ``.npz`` file per data set request, named by a SHA-256 of the dataset
  parameters, whether the test split is included, the source text of
  ``ctr_datasets.py`` and ``synthetic.py`` and, for real data, the installed
  data files' sizes and modification times: a change to any of them is a
  new file;
* written to a unique temporary name in the same folder, fsynced, then
  renamed into place: readers see a whole file or none, and concurrent
  writers of the same key write the same bytes;
* a file that cannot be read is rebuilt (and replaced).

Metrics: normalized entropy (log loss / entropy of the training base rate),
log loss, AUC with tied scores sharing ranks, calibration, and on synthetic
data the Bayes-optimal NE and log loss of the true click probability.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from types import ModuleType

import numpy as np

import fastkit
from fastkit import BadConfig, DatasetConfig, LossDiverged, TrainerError

CTR_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ctr")
CACHE_VERSION = 2
# Where each data package keeps its data files (their sizes and times are part of the cache key).
DATA_FOLDERS: dict[str, str] = {"recbole": "dataset_example", "obp": os.path.join("dataset", "obd")}


def _load_module(name: str, path: str) -> ModuleType:
    """Imports the file at ``path`` as module ``name`` (kept in sys.modules)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TrainerError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def ctr_datasets() -> ModuleType:
    """``trainers/ctr/ctr_datasets.py`` (and the ``synthetic`` module it imports), by path."""
    _load_module("synthetic", os.path.join(CTR_DIR, "synthetic.py"))
    module = _load_module("ctr_datasets", os.path.join(CTR_DIR, "ctr_datasets.py"))
    if tuple(module.NAMES) != fastkit.DATASET_NAMES:
        raise TrainerError(f"ctr_datasets.NAMES is {module.NAMES}, expected {fastkit.DATASET_NAMES}")
    return module


@dataclass(frozen=True)
class Split:
    """features (n, F) int32 per-field value indices (column f indexes ``Data.vocab[f]``),
    labels (n,) float64 0/1, true_prob (n,) float64 or None."""

    features: np.ndarray
    labels: np.ndarray
    true_prob: np.ndarray | None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class Data:
    name: str
    feature_names: tuple[str, ...]
    groups: tuple[str, ...]  # user / ad / context of each feature
    vocab: tuple[np.ndarray, ...]  # per field: the sorted distinct raw ids (int64) of the loaded splits
    train: Split
    valid: Split
    test: Split | None
    source: str
    cache: str  # "hit" | "miss" | "off"

    @property
    def cardinalities(self) -> tuple[int, ...]:
        return tuple(int(v.shape[0]) for v in self.vocab)


# --------------------------------------------------------------------------- cache


def cache_dir() -> str:
    configured = os.environ.get("REA_DATA_CACHE", "").strip()
    if configured:
        return configured
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return os.path.join(tempfile.gettempdir(), f"rea-data-cache-{uid}")


def _source_fingerprint(ds: DatasetConfig) -> dict[str, object]:
    parts: dict[str, object] = {}
    for name in ("ctr_datasets.py", "synthetic.py"):
        with open(os.path.join(CTR_DIR, name), "rb") as fh:
            parts[name] = hashlib.sha256(fh.read()).hexdigest()
    if ds.name != "synthetic":
        package = {"movielens": "recbole", "obd": "obp"}[ds.name]
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            folder = list(spec.submodule_search_locations)[0]
            data_folder = os.path.join(folder, DATA_FOLDERS[package])
            stats = []
            for root, _dirs, files in os.walk(data_folder):
                for f in files:
                    path = os.path.join(root, f)
                    st = os.stat(path)
                    stats.append((os.path.relpath(path, folder), st.st_size, st.st_mtime_ns))
            parts["package"] = [folder, sorted(stats)]
    return parts


def cache_key(ds: DatasetConfig, need_test: bool) -> str:
    payload = {
        "version": CACHE_VERSION,
        "dataset": ds.as_key(),
        "test": need_test,
        "source": _source_fingerprint(ds),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


_SPLITS = ("train", "valid", "test")


def _save(path: str, data: Data) -> None:
    arrays: dict[str, np.ndarray] = {
        "meta": np.frombuffer(
            json.dumps(
                {
                    "name": data.name,
                    "feature_names": data.feature_names,
                    "groups": data.groups,
                    "source": data.source,
                }
            ).encode(),
            dtype=np.uint8,
        )
    }
    for f, values in enumerate(data.vocab):
        arrays[f"vocab_{f}"] = values
    for split_name in _SPLITS:
        split = getattr(data, split_name)
        if split is None:
            continue
        arrays[f"{split_name}_features"] = split.features
        arrays[f"{split_name}_labels"] = split.labels
        if split.true_prob is not None:
            arrays[f"{split_name}_true_prob"] = split.true_prob
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _load(path: str, need_test: bool) -> Data:
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(bytes(npz["meta"]).decode())

        def split(name: str) -> Split | None:
            if f"{name}_features" not in npz.files:
                return None
            prob = npz[f"{name}_true_prob"] if f"{name}_true_prob" in npz.files else None
            return Split(features=npz[f"{name}_features"], labels=npz[f"{name}_labels"], true_prob=prob)

        train, valid, test = split("train"), split("valid"), split("test")
        vocab = tuple(npz[f"vocab_{f}"] for f in range(len(meta["feature_names"])))
    if train is None or valid is None or (need_test and test is None):
        raise ValueError(f"{path}: a split is missing")
    return Data(
        name=meta["name"],
        feature_names=tuple(meta["feature_names"]),
        groups=tuple(meta["groups"]),
        vocab=vocab,
        train=train,
        valid=valid,
        test=test,
        source=meta["source"],
        cache="hit",
    )


# --------------------------------------------------------------------------- loading


def _generate(ds: DatasetConfig, need_test: bool) -> Data:
    mod = ctr_datasets()
    try:
        if ds.name == "synthetic":
            raw = mod.load_synthetic(ds.difficulty, ds.data_seed, ds.n_train, ds.n_valid, need_test)
        elif ds.name == "movielens":
            raw = mod.load_movielens(ds.data_seed, ds.max_train_rows, need_test)
        else:
            raw = mod.load_obd(ds.data_seed, ds.max_train_rows, need_test)
    except mod.DataMissing as exc:
        raise BadConfig(f"dataset {ds.name!r}: {exc}") from exc
    except mod.DataError as exc:
        raise TrainerError(f"dataset {ds.name!r}: {exc}") from exc

    splits = [s for s in (raw.train, raw.valid, raw.test) if s is not None]
    features = np.concatenate([np.asarray(s.features, dtype=np.int64) for s in splits])
    vocab: list[np.ndarray] = []
    index = np.empty(features.shape, dtype=np.int32)
    for f in range(features.shape[1]):
        values, inverse = np.unique(features[:, f], return_inverse=True)
        vocab.append(values)
        index[:, f] = inverse.reshape(-1)
    converted: list[Split] = []
    start = 0
    for s in splits:
        n = int(np.asarray(s.labels).shape[0])
        prob = s.true_prob
        converted.append(
            Split(
                features=np.ascontiguousarray(index[start : start + n]),
                labels=np.asarray(s.labels, dtype=np.float64),
                true_prob=None if prob is None else np.asarray(prob, dtype=np.float64),
            )
        )
        start += n
    groups = tuple(mod.FEATURE_GROUPS[ds.name][f] for f in raw.feature_names)
    return Data(
        name=ds.name,
        feature_names=tuple(raw.feature_names),
        groups=groups,
        vocab=tuple(vocab),
        train=converted[0],
        valid=converted[1],
        test=converted[2] if len(converted) > 2 else None,
        source=raw.source,
        cache="miss",
    )


def load(ds: DatasetConfig, need_test: bool, use_cache: bool = True) -> Data:
    """The data set, from the cache when it holds it (else loaded and cached)."""
    if not use_cache:
        return _with_cache_state(_generate(ds, need_test), "off")
    folder = cache_dir()
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return _with_cache_state(_generate(ds, need_test), "off")
    path = os.path.join(folder, f"{ds.name}-{cache_key(ds, need_test)}.npz")
    if os.path.exists(path):
        try:
            return _load(path, need_test)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
            pass  # unreadable: rebuild it below
    data = _generate(ds, need_test)
    try:
        _save(path, data)
    except OSError:
        return _with_cache_state(data, "off")
    return data


def _with_cache_state(data: Data, state: str) -> Data:
    return Data(**{**data.__dict__, "cache": state})


def base_rate(labels: np.ndarray) -> float:
    return float(labels.mean(dtype=np.float64))


# --------------------------------------------------------------------------- hashing


def splitmix64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


# --------------------------------------------------------------------------- metrics


def binary_entropy(p: float) -> float:
    if not 0.0 < p < 1.0:
        raise TrainerError(f"training split has base CTR {p}; normalized entropy is undefined")
    return -(p * math.log(p) + (1.0 - p) * math.log(1.0 - p))


def logloss_from_logits(labels: np.ndarray, logits: np.ndarray) -> float:
    return float(np.mean(np.logaddexp(0.0, logits) - labels * logits))


def logloss_from_probs(labels: np.ndarray, probs: np.ndarray) -> float:
    p = np.clip(probs, 1e-15, 1.0 - 1e-15)
    return float(-np.mean(labels * np.log(p) + (1.0 - labels) * np.log1p(-p)))


def average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks of ``scores``; tied values get the mean of their ranks."""
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [scores.shape[0]]))
    group_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(scores.shape[0], dtype=np.float64)
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    positives = labels > 0.5
    n_pos = int(positives.sum())
    n_neg = labels.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.5
    rank_sum = float(average_ranks(scores)[positives].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def evaluate(logits: np.ndarray, split: Split, base_ctr: float) -> dict[str, float]:
    """NE, log loss, AUC and calibration on ``split``; Bayes NE and log loss where the
    true click probability is known (synthetic data)."""
    if not np.all(np.isfinite(logits)):
        raise LossDiverged("the model produced non-finite logits on the evaluated split")
    labels = split.labels
    if labels.sum() == 0:
        raise TrainerError("the evaluated split has no clicks; calibration is undefined")
    entropy = binary_entropy(base_ctr)
    logloss = logloss_from_logits(labels, logits)
    scores = {
        "ne": logloss / entropy,
        "logloss": logloss,
        "auc": auc(labels, logits),
        "calibration": float(sigmoid(logits).mean() / labels.mean()),
    }
    if split.true_prob is not None:
        bayes_logloss = logloss_from_probs(labels, split.true_prob)
        scores["bayes_ne"] = bayes_logloss / entropy
        scores["bayes_logloss"] = bayes_logloss
    return scores


def ne_of(logits: np.ndarray, labels: np.ndarray, base_ctr: float, when: str) -> float:
    """Normalized entropy only (progress lines); non-finite logits are a ``nan`` failure."""
    if not np.all(np.isfinite(logits)):
        raise LossDiverged(f"the model produced non-finite logits on the evaluated split {when}")
    return logloss_from_logits(labels, logits) / binary_entropy(base_ctr)
