#!/usr/bin/env python3
"""rea CTR trainer: trains one click-through-rate model and reports metrics.

Invocation::

    python train.py --config CONFIG_JSON_PATH --metrics METRICS_JSON_PATH

The config is a JSON object read from CONFIG_JSON_PATH.  Every key is
optional (see ``PARAM_SPECS`` / ``DATASET_SPECS`` for types, ranges and
defaults); an unknown key, a wrong type or an out-of-range value is a bad
config.

Protocol (stdout / stderr / exit code):

* ``rea:progress {"step", "steps", "loss", "examples_per_s"}`` on stdout about
  every 10 % of the steps and always at the final step; ``loss`` is the mean
  training log loss since the previous progress line.
* Other stdout lines are free-form human log lines.
* On success the metrics JSON is written atomically to METRICS_JSON_PATH
  (``.tmp`` file + ``os.replace``), the same object is printed as the last
  stdout line ``rea:metrics {...}``, and the exit code is 0.  Keys: ne,
  logloss, auc, calibration, bayes_ne and bayes_logloss (synthetic data
  only), param_count, examples_per_s, wall_time_s, steps, train_examples,
  valid_examples (rows of the evaluated split), base_ctr.
* On failure stderr gets ``rea:error {"class": ..., "message": ...}`` and the
  exit code is the class's: crash 1, bad_config 2, oom 3, nan 4.

Data (``dataset.name``, see ``ctr_datasets.py``): "synthetic" (the generator in
``synthetic.py``; the true click probability is known, so ``bayes_ne`` and
``bayes_logloss`` are reported), "movielens" (MovieLens-100K from the recbole
package) or "obd" (the Open Bandit Dataset sample from the obp package); the
real data sets report no Bayes keys.  ``eval_split`` picks the split the
metrics are computed on: "valid" (default) or "test" (kept out for a final
confirmation).  ``features`` selects a subset of the data set's features.

Model: hashed embeddings (the hashing trick).  Feature ``f`` (its column in
the data set) with value ``v`` uses row ``splitmix64((f << 32) | v) %
hash_buckets`` of the embedding table of its width, so every feature can
address all ``hash_buckets`` rows and distinct values collide at random;
fewer buckets means more collisions.  Each feature group (user, ad, context)
has the width ``embedding_dim_<group>``, or ``embedding_dim`` when that is 0;
there is one table of ``hash_buckets`` rows per distinct width (one shared
table by default).  The F embeddings are concatenated, optionally passed
through DCN-v2 cross layers (``x_{l+1} = x_0 * (W_l x_l + b_l) + x_l``), then
through an MLP (hidden widths ``mlp_widths``, or ``mlp_depth`` x
``mlp_width`` when that is empty; each layer Linear, [BatchNorm | LayerNorm],
ReLU, [Dropout]) and a final Linear to one logit.  ``interaction == "fm"``
adds the factorization-machine pairwise term of the feature embeddings to the
logit; ``"deepfm"`` (Guo et al. 2017) adds the pairwise term and first-order
weights (a 1-wide hashed table, zero-initialised).  The FM term needs one
width: when the widths differ, each feature whose width is not
``embedding_dim`` is projected to ``embedding_dim`` by its own bias-free
Linear (DCN and the MLP work on the concatenation and need no projection).
Loss: BCEWithLogits.  The optimizers (``DenseOptimizer``) apply the update
rules of torch.optim's Adam / Adagrad / SGD to every parameter (dense
updates, L2 weight decay), at ``lr`` times ``lr_factor``: a linear warmup over
``warmup_steps``, then constant or a cosine decay (``lr_schedule``).

Memory: before any allocation the trainer estimates params + gradients +
optimizer state + one batch of activations (forward and backward) + one
evaluation chunk + the data set arrays, and fails with "oom" when that
exceeds ``memory_cap_mb``.

Determinism: same config => bit-identical metrics (except wall_time_s and
examples_per_s).  Torch is seeded with ``seed``; batches are drawn by walking
random permutations of the training split from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import time

_PROCESS_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any, NoReturn, Sequence  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as nnf  # noqa: E402
from torch import nn  # noqa: E402

import ctr_datasets as datasets  # noqa: E402
import synthetic  # noqa: E402

EVAL_CHUNK = 16_384
# Per-parameter tensors an optimizer keeps (Adam: m, v, scratch; Adagrad: sum, scratch).
OPTIMIZER_STATE_SLOTS: dict[str, int] = {"adam": 3, "adagrad": 2, "sgd": 0}
MB = 1024.0 * 1024.0


# --------------------------------------------------------------------------- errors


class TrainerError(Exception):
    """An expected failure with a protocol error class and exit code."""

    error_class = "crash"
    exit_code = 1


class BadConfig(TrainerError):
    error_class = "bad_config"
    exit_code = 2


class OutOfMemory(TrainerError):
    error_class = "oom"
    exit_code = 3


class LossDiverged(TrainerError):
    error_class = "nan"
    exit_code = 4


def emit_error(error_class: str, message: str) -> None:
    payload = json.dumps({"class": error_class, "message": message})
    print(f"rea:error {payload}", file=sys.stderr, flush=True)


def log(message: str) -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class Spec:
    """Type and range of one config value."""

    kind: str  # "int" | "float" | "choice" | "text"
    default: Any
    lo: float | None = None
    hi: float | None = None
    lo_exclusive: bool = False
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "text":
            return "a string"
        if self.kind == "choice":
            return "one of " + ", ".join(json.dumps(c) for c in self.choices)
        noun = "an integer" if self.kind == "int" else "a number"
        bounds = []
        if self.lo is not None:
            bounds.append(f"{'>' if self.lo_exclusive else '>='} {_fmt(self.lo)}")
        if self.hi is not None:
            bounds.append(f"<= {_fmt(self.hi)}")
        return noun + (" " + " and ".join(bounds) if bounds else "")

    def check(self, key: str, value: Any) -> Any:
        if not self._accepts(value):
            shown = json.dumps(value) if _json_safe(value) else repr(value)
            raise BadConfig(f"{key}: expected {self.describe()}, got {shown}")
        return float(value) if self.kind == "float" else value

    def _accepts(self, value: Any) -> bool:
        if self.kind == "text":
            return isinstance(value, str)
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices
        if isinstance(value, bool):
            return False
        if self.kind == "int" and not isinstance(value, int):
            return False
        if self.kind == "float" and not (isinstance(value, (int, float)) and math.isfinite(value)):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_exclusive else value < self.lo):
            return False
        return self.hi is None or value <= self.hi


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
        return True
    except (TypeError, ValueError):
        return False


_MAX_SEED = 2**63 - 1
MAX_MLP_LAYERS = 8
MAX_MLP_WIDTH = 4096

PARAM_SPECS: dict[str, Spec] = {
    "seed": Spec("int", 0, lo=0, hi=_MAX_SEED),
    "steps": Spec("int", 300, lo=1, hi=100_000),
    "batch_size": Spec("int", 256, lo=8, hi=65_536),
    "lr": Spec("float", 0.01, lo=0, hi=100, lo_exclusive=True),
    "optimizer": Spec("choice", "adam", choices=("adam", "adagrad", "sgd")),
    "weight_decay": Spec("float", 0.0, lo=0, hi=1),
    "warmup_steps": Spec("int", 0, lo=0, hi=100_000),
    "lr_schedule": Spec("choice", "constant", choices=("constant", "cosine")),
    "embedding_dim": Spec("int", 8, lo=1, hi=512),
    "embedding_dim_user": Spec("int", 0, lo=0, hi=512),
    "embedding_dim_ad": Spec("int", 0, lo=0, hi=512),
    "embedding_dim_context": Spec("int", 0, lo=0, hi=512),
    "hash_buckets": Spec("int", 100_000, lo=16, hi=10_000_000),
    "features": Spec("text", ""),
    "interaction": Spec("choice", "none", choices=("none", "fm", "dcn", "deepfm")),
    "cross_layers": Spec("int", 2, lo=0, hi=6),
    "mlp_width": Spec("int", 64, lo=1, hi=MAX_MLP_WIDTH),
    "mlp_depth": Spec("int", 2, lo=0, hi=MAX_MLP_LAYERS),
    "mlp_widths": Spec("text", ""),
    "normalization": Spec("choice", "none", choices=("none", "batchnorm", "layernorm")),
    "dropout": Spec("float", 0.0, lo=0, hi=0.9),
    "eval_split": Spec("choice", "valid", choices=("valid", "test")),
    "threads": Spec("int", 1, lo=1, hi=64),
    "memory_cap_mb": Spec("int", 2048, lo=1),
}

DATASET_SPECS: dict[str, Spec] = {
    "name": Spec("choice", "synthetic", choices=datasets.NAMES),
    "difficulty": Spec("choice", "easy", choices=synthetic.DIFFICULTIES),
    "data_seed": Spec("int", 1234, lo=0, hi=_MAX_SEED),
    "n_train": Spec("int", 200_000, lo=1000, hi=5_000_000),
    "n_valid": Spec("int", 50_000, lo=1000, hi=1_000_000),
    "max_train_rows": Spec("int", None, lo=100, hi=10_000_000),
}
# The dataset keys each data set accepts.
DATASET_KEYS: dict[str, tuple[str, ...]] = {
    "synthetic": ("name", "difficulty", "data_seed", "n_train", "n_valid"),
    "movielens": ("name", "data_seed", "max_train_rows"),
    "obd": ("name", "data_seed", "max_train_rows"),
}


@dataclass(frozen=True)
class DatasetConfig:
    name: str = "synthetic"
    difficulty: str = "easy"
    data_seed: int = 1234
    n_train: int = 200_000
    n_valid: int = 50_000
    max_train_rows: int | None = None


@dataclass(frozen=True)
class Config:
    seed: int = 0
    steps: int = 300
    batch_size: int = 256
    lr: float = 0.01
    optimizer: str = "adam"
    weight_decay: float = 0.0
    warmup_steps: int = 0
    lr_schedule: str = "constant"
    embedding_dim: int = 8
    embedding_dim_user: int = 0
    embedding_dim_ad: int = 0
    embedding_dim_context: int = 0
    hash_buckets: int = 100_000
    features: str = ""
    interaction: str = "none"
    cross_layers: int = 2
    mlp_width: int = 64
    mlp_depth: int = 2
    mlp_widths: str = ""
    normalization: str = "none"
    dropout: float = 0.0
    eval_split: str = "valid"
    threads: int = 1
    memory_cap_mb: int = 2048
    dataset: DatasetConfig = field(default_factory=DatasetConfig)

    @property
    def uses_cross(self) -> bool:
        return self.interaction == "dcn" and self.cross_layers > 0

    @property
    def uses_fm(self) -> bool:
        return self.interaction in ("fm", "deepfm")

    @property
    def hidden_widths(self) -> tuple[int, ...]:
        """Widths of the MLP's hidden layers: ``mlp_widths``, else ``mlp_width`` x ``mlp_depth``."""
        parsed = parse_mlp_widths(self.mlp_widths)
        return parsed if parsed is not None else (self.mlp_width,) * self.mlp_depth

    def group_dim(self, group: str) -> int:
        override = {
            "user": self.embedding_dim_user,
            "ad": self.embedding_dim_ad,
            "context": self.embedding_dim_context,
        }[group]
        return override or self.embedding_dim


@dataclass(frozen=True)
class FeatureLayout:
    """The features a model uses, in data set column order."""

    names: tuple[str, ...]
    columns: tuple[int, ...]  # column of each feature in the data set's feature matrix
    dims: tuple[int, ...]  # embedding width of each feature
    n_dataset_features: int

    @property
    def widths(self) -> tuple[int, ...]:
        """Distinct embedding widths, in order of first use: one embedding table each."""
        return tuple(dict.fromkeys(self.dims))


def parse_mlp_widths(text: str) -> tuple[int, ...] | None:
    """``"256,128,64"`` -> (256, 128, 64); ``""`` -> None (use mlp_width x mlp_depth)."""
    if text.strip() == "":
        return None
    parts = [p.strip() for p in text.split(",")]
    allowed = (
        f'comma-separated layer widths, each an integer 1..{MAX_MLP_WIDTH}, at most {MAX_MLP_LAYERS} '
        f'layers (e.g. "256,128,64"), or "" for mlp_width x mlp_depth'
    )
    if len(parts) > MAX_MLP_LAYERS or not all(p.isdigit() and 1 <= int(p) <= MAX_MLP_WIDTH for p in parts):
        raise BadConfig(f"mlp_widths: expected {allowed}, got {json.dumps(text)}")
    return tuple(int(p) for p in parts)


def parse_features(text: str, dataset: str) -> tuple[str, ...]:
    """Selected feature names in the data set's column order; ``""`` -> all."""
    names = datasets.feature_names(dataset)
    if text.strip() == "":
        return names
    wanted = [p.strip() for p in text.split(",")]
    allowed = f"a comma-separated subset of {', '.join(names)} (dataset {dataset!r}), or \"\" for all"
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise BadConfig(
            f"features: unknown feature {unknown[0]!r}; expected {allowed}, got {json.dumps(text)}"
        )
    if len(set(wanted)) != len(wanted):
        raise BadConfig(f"features: a feature is listed twice; expected {allowed}, got {json.dumps(text)}")
    return tuple(n for n in names if n in wanted)


def feature_layout(cfg: Config) -> FeatureLayout:
    name = cfg.dataset.name
    groups = datasets.FEATURE_GROUPS[name]
    all_names = datasets.feature_names(name)
    selected = parse_features(cfg.features, name)
    return FeatureLayout(
        names=selected,
        columns=tuple(all_names.index(n) for n in selected),
        dims=tuple(cfg.group_dim(groups[n]) for n in selected),
        n_dataset_features=len(all_names),
    )


def _check_object(
    raw: Any, specs: dict[str, Spec], where: str, extra: Sequence[str] = (), note: str = ""
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BadConfig(f"{where}: expected a JSON object, got {type(raw).__name__}")
    allowed = sorted([*specs, *extra])
    for key in raw:
        if key not in specs and key not in extra:
            raise BadConfig(f"{where}: unknown key {key!r}; allowed keys{note}: {', '.join(allowed)}")
    prefix = "" if where == "config" else f"{where}."
    return {key: spec.check(prefix + key, raw[key]) for key, spec in specs.items() if key in raw}


def parse_dataset(raw: Any) -> DatasetConfig:
    if not isinstance(raw, dict):
        raise BadConfig(f"dataset: expected a JSON object, got {type(raw).__name__}")
    name = DATASET_SPECS["name"].check("dataset.name", raw.get("name", "synthetic"))
    specs = {key: DATASET_SPECS[key] for key in DATASET_KEYS[name]}
    return DatasetConfig(**_check_object(raw, specs, "dataset", note=f' for dataset "{name}"'))


def parse_config(raw: Any) -> Config:
    """Validate a decoded JSON config; raises BadConfig."""
    values = _check_object(raw, PARAM_SPECS, "config", extra=("dataset",))
    dataset = parse_dataset(raw.get("dataset", {}))
    cfg = Config(**values, dataset=dataset)
    parse_mlp_widths(cfg.mlp_widths)
    parse_features(cfg.features, dataset.name)
    return cfg


def load_config(path: str) -> Config:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise BadConfig(f"cannot read config file {path!r}: {exc.strerror}") from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadConfig(f"config file {path!r} is not valid JSON: {exc}") from exc
    return parse_config(raw)


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise BadConfig(f"command line: {message}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _ArgumentParser(description="rea CTR trainer")
    parser.add_argument("--config", required=True, help="path of the JSON config")
    parser.add_argument("--metrics", required=True, help="path to write the metrics JSON")
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- memory estimate


def count_params(cfg: Config) -> int:
    """Parameter count of the model ``build_model`` creates for ``cfg``."""
    layout = feature_layout(cfg)
    d_in = sum(layout.dims)
    total = cfg.hash_buckets * sum(layout.widths)
    if cfg.uses_cross:
        total += cfg.cross_layers * (d_in * d_in + d_in)
    width_in = d_in
    for width in cfg.hidden_widths:
        total += width_in * width + width
        if cfg.normalization != "none":
            total += 2 * width  # scale and shift
        width_in = width
    total += width_in + 1
    if cfg.uses_fm:
        total += sum(d * cfg.embedding_dim for d in _projected_dims(cfg, layout))
    if cfg.interaction == "deepfm":
        total += cfg.hash_buckets  # first-order weights
    return total


def _projected_dims(cfg: Config, layout: FeatureLayout) -> list[int]:
    """Widths of the features the FM term projects to ``embedding_dim`` (only when widths differ)."""
    if len(layout.widths) == 1:
        return []
    return [d for d in layout.dims if d != cfg.embedding_dim]


def _activation_floats_per_example(cfg: Config) -> int:
    layout = feature_layout(cfg)
    d_in = sum(layout.dims)
    floats = 2 * d_in  # gathered embeddings + flattened view / gradient
    if len(layout.widths) > 1:
        floats += 2 * d_in  # per-table gathers before the concatenation
    if cfg.uses_cross:
        floats += cfg.cross_layers * 3 * d_in  # W x, x0 * (.), residual
    per_unit = 2 + (1 if cfg.dropout > 0 else 0) + (2 if cfg.normalization != "none" else 0)
    floats += sum(cfg.hidden_widths) * per_unit
    if cfg.uses_fm:
        n_features = len(layout.dims)
        n_projected = len(_projected_dims(cfg, layout))
        floats += 2 * (n_features + n_projected) * cfg.embedding_dim
    if cfg.interaction == "deepfm":
        floats += 2 * len(layout.dims)
    return floats + 4


@dataclass(frozen=True)
class DataShape:
    """Rows held in memory and rows evaluated at once, for the memory estimate."""

    rows: int
    eval_rows: int


def data_shape(cfg: Config) -> DataShape:
    ds = cfg.dataset
    if ds.name == "synthetic":
        n_eval = ds.n_valid
        rows = ds.n_train + ds.n_valid + (n_eval if cfg.eval_split == "test" else 0)
        return DataShape(rows=rows, eval_rows=n_eval)
    total = datasets.TOTAL_ROWS[ds.name]
    return DataShape(rows=total, eval_rows=int(total * datasets.SPLIT_FRACTIONS[ds.name][1]) + 1)


def estimate_memory_mb(cfg: Config) -> float:
    """Params + gradients + optimizer state + one batch of activations
    (forward and backward) + one evaluation chunk + the dataset arrays."""
    params = count_params(cfg)
    param_bytes = 4 * params * (2 + OPTIMIZER_STATE_SLOTS[cfg.optimizer])
    per_example = _activation_floats_per_example(cfg)
    shape = data_shape(cfg)
    activation_bytes = 4 * per_example * (2 * cfg.batch_size + min(EVAL_CHUNK, shape.eval_rows))
    layout = feature_layout(cfg)
    # raw ids of every data set column + hashed ids of the used ones, label, prob, logit
    data_bytes = shape.rows * (8 * layout.n_dataset_features + 8 * len(layout.dims) + 4 + 8 + 8)
    return (param_bytes + activation_bytes + data_bytes) / MB


def check_memory(cfg: Config) -> float:
    estimate = estimate_memory_mb(cfg)
    if estimate > cfg.memory_cap_mb:
        raise OutOfMemory(
            f"estimated memory {estimate:.1f} MB exceeds memory_cap_mb {cfg.memory_cap_mb} MB "
            f"({count_params(cfg)} params, optimizer {cfg.optimizer}, batch_size {cfg.batch_size})"
        )
    return estimate


def is_oom_exception(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


# --------------------------------------------------------------------------- features


def hash_features(features: np.ndarray, buckets: int, feature_ids: Sequence[int] | None = None) -> np.ndarray:
    """Map (n, F) raw categorical ids to rows of the embedding tables.  Column
    ``j`` hashes as feature ``feature_ids[j]`` (default ``j``): its column in
    the full data set, so that a feature keeps its rows when others are dropped."""
    n_features = features.shape[1]
    ids = range(n_features) if feature_ids is None else feature_ids
    feature_index = np.asarray(ids, dtype=np.uint64)[None, :]
    x = (feature_index << np.uint64(32)) | features.astype(np.uint64)
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return (x % np.uint64(buckets)).astype(np.int64)


# --------------------------------------------------------------------------- model


class CTRModel(nn.Module):
    """Hashed embeddings -> [DCN cross layers] -> MLP -> logit [+ FM terms].

    One embedding table (``hash_buckets`` rows) per distinct embedding width:
    with the default single ``embedding_dim`` that is one table shared by all
    features, exactly as before the per-group widths existed.
    """

    def __init__(self, cfg: Config, base_ctr: float) -> None:
        super().__init__()
        layout = feature_layout(cfg)
        self.n_features = len(layout.dims)
        d_in = sum(layout.dims)
        tables = []
        for width in layout.widths:
            table = nn.Embedding(cfg.hash_buckets, width)
            nn.init.normal_(table.weight, std=0.01)
            tables.append(table)
        self.tables = nn.ModuleList(tables)
        # For each table: the positions of the features it embeds.
        self._table_features = [
            [j for j, d in enumerate(layout.dims) if d == width] for width in layout.widths
        ]
        self._table_index = [torch.tensor(cols, dtype=torch.long) for cols in self._table_features]
        n_cross = cfg.cross_layers if cfg.uses_cross else 0
        self.cross = nn.ModuleList(nn.Linear(d_in, d_in) for _ in range(n_cross))
        layers: list[nn.Module] = []
        width_in = d_in
        for width in cfg.hidden_widths:
            layers.append(nn.Linear(width_in, width))
            if cfg.normalization == "batchnorm":
                layers.append(nn.BatchNorm1d(width))
            elif cfg.normalization == "layernorm":
                layers.append(nn.LayerNorm(width))
            layers.append(nn.ReLU())
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            width_in = width
        self.mlp = nn.Sequential(*layers)
        self.head = nn.Linear(width_in, 1)
        with torch.no_grad():
            self.head.bias.fill_(math.log(base_ctr / (1.0 - base_ctr)))
        self.use_fm = cfg.uses_fm
        # FM needs one width: features whose width differs from embedding_dim
        # get their own linear projection (no bias) to embedding_dim.
        mixed = self.use_fm and len(layout.widths) > 1
        projected = [j for j, d in enumerate(layout.dims) if mixed and d != cfg.embedding_dim]
        self.fm_projections = nn.ModuleDict(
            {str(j): nn.Linear(layout.dims[j], cfg.embedding_dim, bias=False) for j in projected}
        )
        self.first_order: nn.Embedding | None = None
        if cfg.interaction == "deepfm":
            self.first_order = nn.Embedding(cfg.hash_buckets, 1)
            nn.init.zeros_(self.first_order.weight)

    def embed(self, rows: torch.Tensor) -> tuple[list[torch.Tensor] | torch.Tensor, torch.Tensor]:
        """Per-feature embeddings (a (B, F, d) tensor when all widths are equal,
        else a list of F (B, d_f) tensors) and their concatenation (B, sum d_f)."""
        if len(self.tables) == 1:
            emb = self.tables[0](rows)  # (B, F, d)
            return emb, emb.flatten(1)
        per_feature: list[torch.Tensor] = [rows] * self.n_features  # placeholders
        for table, index, cols in zip(self.tables, self._table_index, self._table_features):
            gathered = table(rows.index_select(1, index))  # (B, n_t, w)
            for k, j in enumerate(cols):
                per_feature[j] = gathered[:, k]
        return per_feature, torch.cat(per_feature, dim=1)

    def fm_vectors(self, emb: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        if isinstance(emb, torch.Tensor):
            return emb
        vectors = [
            self.fm_projections[str(j)](e) if str(j) in self.fm_projections else e for j, e in enumerate(emb)
        ]
        return torch.stack(vectors, dim=1)  # (B, F, embedding_dim)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        emb, x0 = self.embed(rows)
        x = x0
        for layer in self.cross:
            x = x0 * layer(x) + x
        logit = self.head(self.mlp(x)).squeeze(-1)
        if self.use_fm:
            v = self.fm_vectors(emb)
            summed = v.sum(dim=1)
            logit = logit + 0.5 * (summed * summed - (v * v).sum(dim=1)).sum(dim=1)
        if self.first_order is not None:
            logit = logit + self.first_order(rows).sum(dim=(1, 2))
        return logit


class DenseOptimizer:
    """Dense Adam / Adagrad / plain SGD with L2 weight decay.

    The update rules are those of ``torch.optim.Adam`` (betas 0.9/0.999, eps
    1e-8), ``torch.optim.Adagrad`` (eps 1e-10) and ``torch.optim.SGD`` (no
    momentum), each with ``weight_decay`` added to the gradient.  torch.optim
    itself is not used because constructing any of its optimizers imports
    torch._dynamo, which adds ~2 s to every run on a small CPU machine.

    Square roots are taken of ``max(state, 1e-37)`` in a preallocated scratch
    buffer: torch's CPU sqrt is ~8x slower on exact zeros (most rows of the
    state of a large embedding table), and sqrt(1e-37) ~ 3e-19 is far below
    the optimizers' eps.
    """

    ADAM_BETAS = (0.9, 0.999)
    ADAM_EPS = 1e-8
    ADAGRAD_EPS = 1e-10
    SQRT_FLOOR = 1e-37
    
    def __init__(self, params: Sequence[nn.Parameter], kind: str, lr: float, weight_decay: float) -> None:
        if kind not in OPTIMIZER_STATE_SLOTS:
            raise ValueError(f"unknown optimizer {kind!r}")
        self.params = list(params)
        self.kind = kind
        self.lr = lr
        self.weight_decay = weight_decay
        self.step_count = 0
        slots = OPTIMIZER_STATE_SLOTS[kind]
        self.state = [[torch.zeros_like(p) for _ in range(slots)] for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        for param, state in zip(self.params, self.state):
            grad = param.grad
            if grad is None:
                continue
            if self.weight_decay:
                grad.add_(param, alpha=self.weight_decay)
            if self.kind == "adam":
                self._adam(param, grad, *state)
            elif self.kind == "adagrad":
                self._adagrad(param, grad, *state)
            else:
                param.add_(grad, alpha=-self.lr)

    def _sqrt_into(self, scratch: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp_min(x, self.SQRT_FLOOR, out=scratch).sqrt_()

    def _adam(
        self,
        param: torch.Tensor,
        grad: torch.Tensor,
        exp_avg: torch.Tensor,
        exp_avg_sq: torch.Tensor,
        scratch: torch.Tensor,
    ) -> None:
        beta1, beta2 = self.ADAM_BETAS
        exp_avg.lerp_(grad, 1.0 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        bias_correction1 = 1.0 - beta1**self.step_count
        bias_correction2_sqrt = math.sqrt(1.0 - beta2**self.step_count)
        denom = self._sqrt_into(scratch, exp_avg_sq).div_(bias_correction2_sqrt).add_(self.ADAM_EPS)
        param.addcdiv_(exp_avg, denom, value=-self.lr / bias_correction1)

    def _adagrad(
        self, param: torch.Tensor, grad: torch.Tensor, sum_sq: torch.Tensor, scratch: torch.Tensor
    ) -> None:
        sum_sq.addcmul_(grad, grad, value=1.0)
        denom = self._sqrt_into(scratch, sum_sq).add_(self.ADAGRAD_EPS)
        param.addcdiv_(grad, denom, value=-self.lr)


def build_optimizer(cfg: Config, model: nn.Module) -> DenseOptimizer:
    return DenseOptimizer(list(model.parameters()), cfg.optimizer, cfg.lr, cfg.weight_decay)


# --------------------------------------------------------------------------- training


class EpochSampler:
    """Yields batches of row indices by walking successive random permutations."""

    def __init__(self, rng: np.random.Generator, n_rows: int, batch_size: int) -> None:
        self._rng = rng
        self._n = n_rows
        self._batch = batch_size
        self._perm = rng.permutation(n_rows)
        self._pos = 0

    def next_batch(self) -> np.ndarray:
        parts: list[np.ndarray] = []
        need = self._batch
        while need > 0:
            if self._pos == self._n:
                self._perm = self._rng.permutation(self._n)
                self._pos = 0
            take = min(need, self._n - self._pos)
            parts.append(self._perm[self._pos : self._pos + take])
            self._pos += take
            need -= take
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


@dataclass(frozen=True)
class TrainResult:
    examples: int
    seconds: float


def progress_interval(steps: int) -> int:
    return max(1, math.ceil(steps / 10))


def lr_factor(step: int, steps: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of ``lr`` at 1-based ``step``: linear warmup ``step / warmup_steps``
    over the first ``warmup_steps`` steps, then 1 ("constant") or a cosine decay
    from 1 towards 0 over the remaining steps ("cosine"; the last step gets
    ``0.5 * (1 + cos(pi * (n - 1) / n))`` for ``n`` post-warmup steps, not 0)."""
    if step <= warmup_steps:
        return step / warmup_steps
    if schedule == "cosine":
        span = steps - warmup_steps
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup_steps - 1) / span))
    return 1.0


def train(cfg: Config, model: CTRModel, rows: torch.Tensor, labels: torch.Tensor) -> TrainResult:
    optimizer = build_optimizer(cfg, model)
    sampler = EpochSampler(np.random.default_rng(cfg.seed), rows.shape[0], cfg.batch_size)
    interval = progress_interval(cfg.steps)
    initial_loss: float | None = None
    window_loss, window_steps = 0.0, 0
    start = window_start = time.perf_counter()
    model.train()
    for step in range(1, cfg.steps + 1):
        index = torch.from_numpy(sampler.next_batch())
        optimizer.lr = cfg.lr * lr_factor(step, cfg.steps, cfg.warmup_steps, cfg.lr_schedule)
        loss = nnf.binary_cross_entropy_with_logits(model(rows[index]), labels[index])
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise LossDiverged(
                f"training loss became {loss_value} at step {step} (lr {cfg.lr}, {cfg.optimizer})"
            )
        if initial_loss is None:
            initial_loss = loss_value
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        window_loss += loss_value
        window_steps += 1
        if step % interval == 0 or step == cfg.steps:
            now = time.perf_counter()
            mean_loss = window_loss / window_steps
            throughput = window_steps * cfg.batch_size / max(now - window_start, 1e-9)
            report_progress(step, cfg.steps, mean_loss, throughput)
            check_explosion(mean_loss, initial_loss, step)
            window_loss, window_steps, window_start = 0.0, 0, now
    return TrainResult(examples=cfg.steps * cfg.batch_size, seconds=time.perf_counter() - start)


def report_progress(step: int, steps: int, loss: float, examples_per_s: float) -> None:
    payload = {
        "step": step,
        "steps": steps,
        "loss": round(loss, 5),
        "examples_per_s": round(examples_per_s, 1),
    }
    log(f"rea:progress {json.dumps(payload)}")


def check_explosion(window_mean: float, initial_loss: float, step: int) -> None:
    limit = max(10.0, 20.0 * initial_loss)
    if window_mean > limit:
        raise LossDiverged(
            f"loss exploded: mean training loss {window_mean:.4g} over the window ending at step {step} "
            f"exceeds max(10, 20 * initial loss {initial_loss:.4g}) = {limit:.4g}"
        )


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def predict_logits(model: CTRModel, rows: torch.Tensor) -> np.ndarray:
    model.eval()
    chunks = [model(rows[i : i + EVAL_CHUNK]) for i in range(0, rows.shape[0], EVAL_CHUNK)]
    return torch.cat(chunks).to(torch.float64).numpy()


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
    group_rank = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
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


def evaluate(logits: np.ndarray, split: datasets.Split, base_ctr: float) -> dict[str, float]:
    """NE, log loss, AUC and calibration on ``split``; the Bayes-optimal NE and
    log loss only where the true click probability is known (synthetic data)."""
    if not np.all(np.isfinite(logits)):
        raise LossDiverged("model produced non-finite validation logits")
    labels = split.labels.astype(np.float64)
    if labels.sum() == 0:
        raise TrainerError("the evaluation split has no clicks; calibration is undefined")
    entropy = binary_entropy(base_ctr)
    logloss = logloss_from_logits(labels, logits)
    probs = 0.5 * (1.0 + np.tanh(0.5 * logits))  # overflow-free sigmoid
    scores = {
        "ne": logloss / entropy,
        "logloss": logloss,
        "auc": auc(labels, logits),
        "calibration": float(probs.mean() / labels.mean()),
    }
    if split.true_prob is not None:
        bayes_logloss = logloss_from_probs(labels, split.true_prob)
        scores["bayes_ne"] = bayes_logloss / entropy
        scores["bayes_logloss"] = bayes_logloss
    return scores


# --------------------------------------------------------------------------- output


def write_metrics(path: str, metrics: dict[str, Any]) -> None:
    text = json.dumps(metrics)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    log(f"rea:metrics {text}")


# --------------------------------------------------------------------------- main


def enable_deterministic_algorithms() -> None:
    """Same as ``torch.use_deterministic_algorithms(True)`` minus its side import
    of ``torch._inductor`` (only needed to flag torch.compile, which we never
    use), which costs 1.5-3.5 s per process on a small CPU machine."""
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:
        torch.use_deterministic_algorithms(True)
    else:
        setter(True, warn_only=False)
    if not torch.are_deterministic_algorithms_enabled():
        raise TrainerError("could not enable torch deterministic algorithms")


def configure_torch(cfg: Config) -> None:
    torch.set_num_threads(cfg.threads)
    if torch.get_num_interop_threads() != 1:
        torch.set_num_interop_threads(1)  # allowed once per process, before parallel work
    enable_deterministic_algorithms()
    # Deterministic mode also NaN-fills every fresh tensor (a debugging aid that
    # costs ~30% of a step here); results do not depend on it.
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    torch.manual_seed(cfg.seed)


def load_data(cfg: Config) -> datasets.Data:
    ds = cfg.dataset
    need_test = cfg.eval_split == "test"
    try:
        if ds.name == "synthetic":
            return datasets.load_synthetic(ds.difficulty, ds.data_seed, ds.n_train, ds.n_valid, need_test)
        if ds.name == "movielens":
            return datasets.load_movielens(ds.data_seed, ds.max_train_rows, need_test)
        return datasets.load_obd(ds.data_seed, ds.max_train_rows, need_test)
    except datasets.DataMissing as exc:
        raise BadConfig(f"dataset {ds.name!r}: {exc}") from exc
    except datasets.DataError as exc:
        raise TrainerError(f"dataset {ds.name!r}: {exc}") from exc


def run(argv: Sequence[str] | None) -> None:
    args = parse_args(argv)
    cfg = load_config(args.config)
    configure_torch(cfg)
    estimate = check_memory(cfg)

    data_start = time.perf_counter()
    ds = cfg.dataset
    data = load_data(cfg)
    evaluated = data.test if cfg.eval_split == "test" else data.valid
    assert evaluated is not None
    base_ctr = float(data.train.labels.mean(dtype=np.float64))
    log(
        f"dataset {data.source}: {len(data.train)} train, {len(data.valid)} valid"
        + (f", {len(data.test)} test" if data.test is not None else "")
        + f", base ctr {base_ctr:.4f}, evaluating on {cfg.eval_split}"
        + f" ({time.perf_counter() - data_start:.2f}s)"
    )
    layout = feature_layout(cfg)
    columns = list(layout.columns)

    def hashed(split: datasets.Split) -> torch.Tensor:
        raw = split.features if len(columns) == split.features.shape[1] else split.features[:, columns]
        return torch.from_numpy(hash_features(raw, cfg.hash_buckets, layout.columns))

    train_rows = hashed(data.train)
    eval_rows = hashed(evaluated)
    train_labels = torch.from_numpy(data.train.labels)

    model = CTRModel(cfg, base_ctr)
    param_count = sum(p.numel() for p in model.parameters())
    log(
        f"model: {param_count} params, features {','.join(layout.names)} (widths {list(layout.dims)}), "
        f"mlp {list(cfg.hidden_widths)}, interaction {cfg.interaction}, optimizer {cfg.optimizer}, "
        f"estimated memory {estimate:.1f} MB (cap {cfg.memory_cap_mb} MB), threads {cfg.threads}"
    )

    result = train(cfg, model, train_rows, train_labels)
    scores = evaluate(predict_logits(model, eval_rows), evaluated, base_ctr)
    metrics: dict[str, Any] = {
        **scores,
        "param_count": param_count,
        "examples_per_s": result.examples / max(result.seconds, 1e-9),
        "wall_time_s": time.perf_counter() - _PROCESS_START,
        "steps": cfg.steps,
        "train_examples": len(data.train),
        "valid_examples": len(evaluated),
        "base_ctr": base_ctr,
    }
    bayes = f" (bayes {scores['bayes_ne']:.5f})" if "bayes_ne" in scores else ""
    log(f"eval on {cfg.eval_split} ({ds.name}): ne {scores['ne']:.5f}{bayes}, auc {scores['auc']:.5f}")
    write_metrics(args.metrics, metrics)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        run(argv)
        return 0
    except TrainerError as exc:
        emit_error(exc.error_class, str(exc))
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the protocol maps every failure to a class
        traceback.print_exc(file=sys.stderr)
        if is_oom_exception(exc):
            emit_error(OutOfMemory.error_class, f"out of memory: {exc}")
            return OutOfMemory.exit_code
        emit_error(TrainerError.error_class, f"{type(exc).__name__}: {exc}")
        return TrainerError.exit_code


if __name__ == "__main__":
    exit_code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: after importing torch it takes ~1 s here, and
    # everything (metrics file, stdout, stderr) has been written and flushed.
    os._exit(exit_code)
