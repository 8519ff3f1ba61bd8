"""Data sets of the CTR trainer: their feature names and groups, and loaders.

Three data sets share one shape: every row is a vector of non-negative
integer categorical ids (one per feature, below 2**32), a 0/1 click label
and, for the synthetic generator only, the true click probability.

* ``synthetic``: the generator in ``synthetic.py`` (true probability known).
* ``movielens``: MovieLens-100K as shipped inside the ``recbole`` PyPI
  package (``recbole/dataset_example/ml-100k/``).  A row is one rating; a
  click is ``rating >= 4`` (55 % of the rows).
* ``obd``: the Open Bandit Dataset sample shipped inside the ``obp`` PyPI
  package (``obp/dataset/obd/random/all/``: 10,000 impressions of the
  uniformly random policy, 38 clicks).

The real data files are never committed: ``npm run setup`` installs the two
packages with ``pip install --no-deps -r trainers/requirements-data.txt``.
Neither package is imported (their imports pull in heavy dependencies): the
package folder is found with ``importlib.util.find_spec`` and the files are
read with the standard library and numpy.

String tokens (occupations, zip prefixes, genre sets, OBD's hashed user and
item features) become ids through a stable 32-bit BLAKE2b hash of the token,
so no vocabulary has to be built or stored; the trainer hashes (feature,
id) pairs into its embedding tables anyway.

Splits of the real data are fixed and deterministic for a ``data_seed``:
every row gets the key ``splitmix64(data_seed, row number in the file)``;
within each label class (clicks and non-clicks separately, so that every
split gets its share of the rare clicks) rows are ordered by key and the
first ``train`` fraction goes to train, the next ``valid`` fraction to
validation and the rest to test.  MovieLens uses 80/10/10, OBD 70/15/15 (it
has only 38 clicks).  ``max_train_rows`` keeps the first rows of the
training split in key order and leaves validation and test unchanged, so
metrics stay comparable across caps.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import os
from dataclasses import dataclass

import numpy as np

import synthetic

SETUP_HINT = "run `npm run setup` (it installs trainers/requirements-data.txt)"

GROUPS: tuple[str, ...] = ("user", "ad", "context")

# Feature names in column order, and the group of each feature.
FEATURE_GROUPS: dict[str, dict[str, str]] = {
    "synthetic": {
        "user_id": "user",
        "ad_id": "ad",
        "ad_category": "ad",
        "site_id": "context",
        "device": "context",
        "hour": "context",
        "position": "context",
    },
    "movielens": {
        "user_id": "user",
        "age_bucket": "user",
        "gender": "user",
        "occupation": "user",
        "zip_prefix": "user",
        "item_id": "ad",
        "item_genres": "ad",
        "release_decade": "ad",
        "hour": "context",
        "weekday": "context",
    },
    "obd": {
        "user_feature_0": "user",
        "user_feature_1": "user",
        "user_feature_2": "user",
        "user_feature_3": "user",
        "affinity_item": "user",
        "affinity_total": "user",
        "item_id": "ad",
        "item_feature_0": "ad",
        "item_feature_1": "ad",
        "item_feature_2": "ad",
        "item_feature_3": "ad",
        "position": "context",
    },
}
NAMES: tuple[str, ...] = tuple(FEATURE_GROUPS)
REAL: tuple[str, ...] = ("movielens", "obd")
assert tuple(FEATURE_GROUPS["synthetic"]) == synthetic.FEATURE_NAMES

# Rows in the shipped files (used by the memory estimate before loading).
TOTAL_ROWS: dict[str, int] = {"movielens": 100_000, "obd": 10_000}
# (train, valid) fractions of each label class; test gets the rest.
SPLIT_FRACTIONS: dict[str, tuple[float, float]] = {"movielens": (0.8, 0.1), "obd": (0.7, 0.15)}

# MovieLens age buckets (lower bounds), as in MovieLens-1M: <18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+.
_AGE_EDGES = np.array([18, 25, 35, 45, 50, 56])
# OBD bucket edges: affinity with the shown item {0, 1, 2, 3+}; total affinity {0, 1, 2, 3-4, 5-8, 9+}.
_AFFINITY_ITEM_EDGES = np.array([1, 2, 3])
_AFFINITY_TOTAL_EDGES = np.array([1, 2, 3, 5, 9])
_ITEM_FEATURE_0_BINS = 8


class DataError(Exception):
    """The data set cannot be read: its files are not as expected."""


class DataMissing(DataError):
    """The package that ships the data set (or a file in it) is not installed."""


@dataclass(frozen=True)
class Split:
    """One split: features (n, F) int64, labels (n,) float32 0/1, true_prob (n,) float64 or None."""

    features: np.ndarray
    labels: np.ndarray
    true_prob: np.ndarray | None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class Data:
    name: str
    feature_names: tuple[str, ...]
    train: Split
    valid: Split
    test: Split | None
    source: str


def feature_names(name: str) -> tuple[str, ...]:
    return tuple(FEATURE_GROUPS[name])


# --------------------------------------------------------------------------- helpers


def token_id(token: str) -> int:
    """Stable 32-bit id of a string token."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=4).digest(), "little")


def _token_ids(tokens: list[str]) -> np.ndarray:
    cache: dict[str, int] = {}
    out = np.empty(len(tokens), dtype=np.int64)
    for i, tok in enumerate(tokens):
        v = cache.get(tok)
        if v is None:
            v = cache[tok] = token_id(tok)
        out[i] = v
    return out


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def split_indices(
    labels: np.ndarray, data_seed: int, fractions: tuple[float, float]
) -> tuple[np.ndarray, ...]:
    """(train, valid, test) row indices: a label-stratified split ordered by a seeded row hash."""
    n = labels.shape[0]
    seed_mix = _splitmix64(np.array([data_seed % (1 << 64)], dtype=np.uint64))[0]
    keys = _splitmix64(np.arange(n, dtype=np.uint64) ^ seed_mix)
    parts: list[list[np.ndarray]] = [[], [], []]
    for cls in (0.0, 1.0):
        rows = np.flatnonzero(labels == cls)
        rows = rows[np.argsort(keys[rows], kind="stable")]
        n_train = int(round(fractions[0] * rows.shape[0]))
        n_valid = int(round(fractions[1] * rows.shape[0]))
        parts[0].append(rows[:n_train])
        parts[1].append(rows[n_train : n_train + n_valid])
        parts[2].append(rows[n_train + n_valid :])
    out = []
    for chunks in parts:
        idx = np.concatenate(chunks)
        out.append(idx[np.argsort(keys[idx], kind="stable")])  # interleave the classes by key
    return tuple(out)


def package_dir(package: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataMissing(f"the {package!r} package is not installed; {SETUP_HINT}")
    return list(spec.submodule_search_locations)[0]


def _data_file(package: str, *parts: str) -> str:
    path = os.path.join(package_dir(package), *parts)
    if not os.path.isfile(path):
        raise DataMissing(f"{path} is missing from the installed {package!r} package; {SETUP_HINT}")
    return path


def _read_atomic(path: str) -> tuple[dict[str, int], list[list[str]]]:
    """A RecBole atomic file: tab-separated, header ``name:type`` per column."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        rows = [line.rstrip("\n").split("\t") for line in fh if line.strip()]
    columns = {col.split(":", 1)[0]: i for i, col in enumerate(header)}
    return columns, rows


def _column(columns: dict[str, int], name: str, path: str) -> int:
    if name not in columns:
        raise DataError(f"{path}: expected a column {name!r}, found {', '.join(columns)}")
    return columns[name]


def _finish(
    name: str,
    features: np.ndarray,
    labels: np.ndarray,
    data_seed: int,
    max_train_rows: int | None,
    need_test: bool,
    source: str,
) -> Data:
    train_idx, valid_idx, test_idx = split_indices(labels, data_seed, SPLIT_FRACTIONS[name])
    if max_train_rows is not None:
        train_idx = train_idx[:max_train_rows]

    def take(idx: np.ndarray) -> Split:
        return Split(features=features[idx], labels=labels[idx].astype(np.float32), true_prob=None)

    return Data(
        name=name,
        feature_names=feature_names(name),
        train=take(train_idx),
        valid=take(valid_idx),
        test=take(test_idx) if need_test else None,
        source=source,
    )


# --------------------------------------------------------------------------- MovieLens-100K


def load_movielens(data_seed: int, max_train_rows: int | None, need_test: bool) -> Data:
    inter_path = _data_file("recbole", "dataset_example", "ml-100k", "ml-100k.inter")
    user_path = _data_file("recbole", "dataset_example", "ml-100k", "ml-100k.user")
    item_path = _data_file("recbole", "dataset_example", "ml-100k", "ml-100k.item")

    cols, rows = _read_atomic(inter_path)
    c_user, c_item, c_rating, c_time = (
        _column(cols, c, inter_path) for c in ("user_id", "item_id", "rating", "timestamp")
    )
    user_tok = [r[c_user] for r in rows]
    item_tok = [r[c_item] for r in rows]
    rating = np.array([float(r[c_rating]) for r in rows])
    timestamp = np.array([int(float(r[c_time])) for r in rows], dtype=np.int64)

    ucols, urows = _read_atomic(user_path)
    u_id, u_age, u_gender, u_occ, u_zip = (
        _column(ucols, c, user_path) for c in ("user_id", "age", "gender", "occupation", "zip_code")
    )
    users: dict[str, tuple[int, int, int, int]] = {}
    for r in urows:
        age = int(np.searchsorted(_AGE_EDGES, int(r[u_age]), side="right"))
        users[r[u_id]] = (age, token_id(r[u_gender]), token_id(r[u_occ]), token_id(r[u_zip][:2].upper()))

    icols, irows = _read_atomic(item_path)
    i_id, i_year, i_class = (_column(icols, c, item_path) for c in ("item_id", "release_year", "class"))
    items: dict[str, tuple[int, int]] = {}
    for r in irows:
        year = r[i_year].strip()
        decade = int(year) // 10 * 10 if year.isdigit() else 0
        items[r[i_id]] = (token_id(" ".join(r[i_class].split())), decade)

    missing_user = next((u for u in user_tok if u not in users), None)
    missing_item = next((i for i in item_tok if i not in items), None)
    if missing_user is not None or missing_item is not None:
        raise DataError(f"{inter_path}: user {missing_user!r} / item {missing_item!r} not in the side files")
    user_side = np.array([users[u] for u in user_tok], dtype=np.int64)
    item_side = np.array([items[i] for i in item_tok], dtype=np.int64)
    hour = (timestamp // 3600) % 24  # UTC
    weekday = (timestamp // 86400 + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    features = np.column_stack(
        [
            _token_ids(user_tok),
            user_side[:, 0],
            user_side[:, 1],
            user_side[:, 2],
            user_side[:, 3],
            _token_ids(item_tok),
            item_side[:, 0],
            item_side[:, 1],
            hour,
            weekday,
        ]
    ).astype(np.int64)
    labels = (rating >= 4.0).astype(np.float64)
    source = "movielens (recbole ml-100k)"
    return _finish("movielens", features, labels, data_seed, max_train_rows, need_test, source)


# --------------------------------------------------------------------------- Open Bandit Dataset


def _read_csv(path: str) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = [r for r in reader if r]
    return header, rows


def load_obd(data_seed: int, max_train_rows: int | None, need_test: bool) -> Data:
    log_path = _data_file("obp", "dataset", "obd", "random", "all", "all.csv")
    ctx_path = _data_file("obp", "dataset", "obd", "random", "all", "item_context.csv")

    header, rows = _read_csv(log_path)
    cols = {name: i for i, name in enumerate(header)}
    c_item, c_pos, c_click = (_column(cols, c, log_path) for c in ("item_id", "position", "click"))
    c_user = [_column(cols, f"user_feature_{k}", log_path) for k in range(4)]
    c_aff = sorted(
        (int(name.rsplit("_", 1)[1]), i) for name, i in cols.items() if name.startswith("user-item_affinity_")
    )
    if not c_aff:
        raise DataError(f"{log_path}: no user-item_affinity_* columns")
    item = np.array([int(r[c_item]) for r in rows], dtype=np.int64)
    aff_column = dict(c_aff)  # item id -> column of the user's affinity with that item
    zero = {"0", "0.0", ""}
    total = np.array([sum(float(r[i]) for _, i in c_aff if r[i] not in zero) for r in rows])
    shown = np.array(
        [float(r[aff_column[it]]) if it in aff_column else 0.0 for r, it in zip(rows, item.tolist())]
    )

    cheader, crows = _read_csv(ctx_path)
    ccols = {name: i for i, name in enumerate(cheader)}
    k_item = _column(ccols, "item_id", ctx_path)
    k_feat = [_column(ccols, f"item_feature_{k}", ctx_path) for k in range(4)]
    f0 = np.array([float(r[k_feat[0]]) for r in crows])
    # item_feature_0 is numeric: quantile bins over the catalogue's items (rank-based, ties share a bin).
    order = np.argsort(np.argsort(f0, kind="stable"), kind="stable")
    f0_bin = order * _ITEM_FEATURE_0_BINS // len(crows)
    for j in range(len(crows)):  # equal values -> the lowest bin among them
        f0_bin[j] = f0_bin[f0 == f0[j]].min()
    context: dict[int, tuple[int, int, int, int]] = {}
    for j, r in enumerate(crows):
        context[int(r[k_item])] = (
            int(f0_bin[j]),
            token_id(r[k_feat[1]]),
            token_id(r[k_feat[2]]),
            token_id(r[k_feat[3]]),
        )
    missing = next((int(i) for i in item if int(i) not in context), None)
    if missing is not None:
        raise DataError(f"{log_path}: item {missing} not in {ctx_path}")
    item_side = np.array([context[int(i)] for i in item], dtype=np.int64)

    features = np.column_stack(
        [
            *(_token_ids([r[c] for r in rows]) for c in c_user),
            np.searchsorted(_AFFINITY_ITEM_EDGES, shown, side="right"),
            np.searchsorted(_AFFINITY_TOTAL_EDGES, total, side="right"),
            item,
            item_side[:, 0],
            item_side[:, 1],
            item_side[:, 2],
            item_side[:, 3],
            np.array([int(r[c_pos]) for r in rows], dtype=np.int64),
        ]
    ).astype(np.int64)
    labels = np.array([float(r[c_click]) for r in rows])
    return _finish("obd", features, labels, data_seed, max_train_rows, need_test, "obd (obp random/all)")


# --------------------------------------------------------------------------- synthetic


def load_synthetic(difficulty: str, data_seed: int, n_train: int, n_valid: int, need_test: bool) -> Data:
    data = synthetic.generate(difficulty, data_seed, n_train, n_valid, n_test=n_valid if need_test else 0)

    def convert(s: synthetic.Split) -> Split:
        return Split(features=s.features, labels=s.labels, true_prob=s.true_prob)

    return Data(
        name="synthetic",
        feature_names=synthetic.FEATURE_NAMES,
        train=convert(data.train),
        valid=convert(data.valid),
        test=convert(data.test) if data.test is not None else None,
        source=f"synthetic/{difficulty}",
    )
