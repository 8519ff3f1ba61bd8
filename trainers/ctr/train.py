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
  logloss, auc, calibration, bayes_ne, bayes_logloss, param_count,
  examples_per_s, wall_time_s, steps, train_examples, valid_examples,
  base_ctr.
* On failure stderr gets ``rea:error {"class": ..., "message": ...}`` and the
  exit code is the class's: crash 1, bad_config 2, oom 3, nan 4.

Model: one embedding table of ``hash_buckets`` rows shared by all features
(the hashing trick).  Feature ``f`` with value ``v`` uses row
``splitmix64((f << 32) | v) % hash_buckets``, so every feature can address
all ``hash_buckets`` rows and distinct values collide at random; fewer
buckets means more collisions.  The F embeddings are concatenated, optionally
passed through DCN-v2 cross layers (``x_{l+1} = x_0 * (W_l x_l + b_l) + x_l``),
then through an MLP (``mlp_depth`` x [Linear(mlp_width), ReLU, Dropout]) and
a final Linear to one logit; ``interaction == "fm"`` adds the
factorization-machine pairwise term of the feature embeddings to the logit.
Loss: BCEWithLogits.

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

import synthetic  # noqa: E402

EVAL_CHUNK = 16_384
OPTIMIZER_STATE_SLOTS: dict[str, int] = {"adam": 2, "adagrad": 1, "sgd": 0}
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

    kind: str  # "int" | "float" | "choice"
    default: Any
    lo: float | None = None
    hi: float | None = None
    lo_exclusive: bool = False
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
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

PARAM_SPECS: dict[str, Spec] = {
    "seed": Spec("int", 0, lo=0, hi=_MAX_SEED),
    "steps": Spec("int", 300, lo=1, hi=100_000),
    "batch_size": Spec("int", 256, lo=8, hi=65_536),
    "lr": Spec("float", 0.01, lo=0, hi=100, lo_exclusive=True),
    "optimizer": Spec("choice", "adam", choices=("adam", "adagrad", "sgd")),
    "weight_decay": Spec("float", 0.0, lo=0, hi=1),
    "embedding_dim": Spec("int", 8, lo=1, hi=512),
    "hash_buckets": Spec("int", 100_000, lo=16, hi=10_000_000),
    "interaction": Spec("choice", "none", choices=("none", "fm", "dcn")),
    "cross_layers": Spec("int", 2, lo=0, hi=6),
    "mlp_width": Spec("int", 64, lo=1, hi=4096),
    "mlp_depth": Spec("int", 2, lo=0, hi=8),
    "dropout": Spec("float", 0.0, lo=0, hi=0.9),
    "threads": Spec("int", 1, lo=1, hi=64),
    "memory_cap_mb": Spec("int", 2048, lo=1),
}

DATASET_SPECS: dict[str, Spec] = {
    "name": Spec("choice", "synthetic", choices=("synthetic",)),
    "difficulty": Spec("choice", "easy", choices=synthetic.DIFFICULTIES),
    "data_seed": Spec("int", 1234, lo=0, hi=_MAX_SEED),
    "n_train": Spec("int", 200_000, lo=1000, hi=5_000_000),
    "n_valid": Spec("int", 50_000, lo=1000, hi=1_000_000),
}


@dataclass(frozen=True)
class DatasetConfig:
    name: str = "synthetic"
    difficulty: str = "easy"
    data_seed: int = 1234
    n_train: int = 200_000
    n_valid: int = 50_000


@dataclass(frozen=True)
class Config:
    seed: int = 0
    steps: int = 300
    batch_size: int = 256
    lr: float = 0.01
    optimizer: str = "adam"
    weight_decay: float = 0.0
    embedding_dim: int = 8
    hash_buckets: int = 100_000
    interaction: str = "none"
    cross_layers: int = 2
    mlp_width: int = 64
    mlp_depth: int = 2
    dropout: float = 0.0
    threads: int = 1
    memory_cap_mb: int = 2048
    dataset: DatasetConfig = field(default_factory=DatasetConfig)

    @property
    def uses_cross(self) -> bool:
        return self.interaction == "dcn" and self.cross_layers > 0


def _check_object(raw: Any, specs: dict[str, Spec], where: str, extra: Sequence[str] = ()) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BadConfig(f"{where}: expected a JSON object, got {type(raw).__name__}")
    allowed = sorted([*specs, *extra])
    for key in raw:
        if key not in specs and key not in extra:
            raise BadConfig(f"{where}: unknown key {key!r}; allowed keys: {', '.join(allowed)}")
    prefix = "" if where == "config" else f"{where}."
    return {key: spec.check(prefix + key, raw[key]) for key, spec in specs.items() if key in raw}


def parse_config(raw: Any) -> Config:
    """Validate a decoded JSON config; raises BadConfig."""
    values = _check_object(raw, PARAM_SPECS, "config", extra=("dataset",))
    dataset = DatasetConfig(**_check_object(raw.get("dataset", {}), DATASET_SPECS, "dataset"))
    return Config(**values, dataset=dataset)


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
    d_in = synthetic.NUM_FEATURES * cfg.embedding_dim
    total = cfg.hash_buckets * cfg.embedding_dim
    if cfg.uses_cross:
        total += cfg.cross_layers * (d_in * d_in + d_in)
    width_in = d_in
    for _ in range(cfg.mlp_depth):
        total += width_in * cfg.mlp_width + cfg.mlp_width
        width_in = cfg.mlp_width
    return total + width_in + 1


def _activation_floats_per_example(cfg: Config) -> int:
    d_in = synthetic.NUM_FEATURES * cfg.embedding_dim
    floats = 2 * d_in  # gathered embeddings + flattened view / gradient
    if cfg.uses_cross:
        floats += cfg.cross_layers * 3 * d_in  # W x, x0 * (.), residual
    floats += cfg.mlp_depth * cfg.mlp_width * (3 if cfg.dropout > 0 else 2)
    if cfg.interaction == "fm":
        floats += 2 * d_in
    return floats + 4


def estimate_memory_mb(cfg: Config) -> float:
    """Params + gradients + optimizer state + one batch of activations
    (forward and backward) + one evaluation chunk + the dataset arrays."""
    params = count_params(cfg)
    param_bytes = 4 * params * (2 + OPTIMIZER_STATE_SLOTS[cfg.optimizer])
    per_example = _activation_floats_per_example(cfg)
    activation_bytes = 4 * per_example * (2 * cfg.batch_size + min(EVAL_CHUNK, cfg.dataset.n_valid))
    rows = cfg.dataset.n_train + cfg.dataset.n_valid
    data_bytes = rows * (2 * 8 * synthetic.NUM_FEATURES + 4 + 8 + 8)  # raw+hashed ids, label, prob, logit
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


def hash_features(features: np.ndarray, buckets: int) -> np.ndarray:
    """Map (n, F) raw categorical ids to rows of the shared embedding table."""
    n_features = features.shape[1]
    feature_index = np.arange(n_features, dtype=np.uint64)[None, :]
    x = (feature_index << np.uint64(32)) | features.astype(np.uint64)
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return (x % np.uint64(buckets)).astype(np.int64)


# --------------------------------------------------------------------------- model


class CTRModel(nn.Module):
    def __init__(self, cfg: Config, base_ctr: float) -> None:
        super().__init__()
        n_features = synthetic.NUM_FEATURES
        d_in = n_features * cfg.embedding_dim
        self.embedding = nn.Embedding(cfg.hash_buckets, cfg.embedding_dim)
        nn.init.normal_(self.embedding.weight, std=0.01)
        n_cross = cfg.cross_layers if cfg.uses_cross else 0
        self.cross = nn.ModuleList(nn.Linear(d_in, d_in) for _ in range(n_cross))
        layers: list[nn.Module] = []
        width_in = d_in
        for _ in range(cfg.mlp_depth):
            layers += [nn.Linear(width_in, cfg.mlp_width), nn.ReLU()]
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            width_in = cfg.mlp_width
        self.mlp = nn.Sequential(*layers)
        self.head = nn.Linear(width_in, 1)
        with torch.no_grad():
            self.head.bias.fill_(math.log(base_ctr / (1.0 - base_ctr)))
        self.use_fm = cfg.interaction == "fm"

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        emb = self.embedding(rows)  # (B, F, d)
        x0 = emb.flatten(1)
        x = x0
        for layer in self.cross:
            x = x0 * layer(x) + x
        logit = self.head(self.mlp(x)).squeeze(-1)
        if self.use_fm:
            summed = emb.sum(dim=1)
            logit = logit + 0.5 * (summed * summed - (emb * emb).sum(dim=1)).sum(dim=1)
        return logit


def build_optimizer(cfg: Config, model: nn.Module) -> torch.optim.Optimizer:
    """Standard dense torch optimizers; the fused (single-kernel) CPU variants
    are several times faster on the large embedding table and deterministic."""
    params = model.parameters()
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    if cfg.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)


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
        loss = nnf.binary_cross_entropy_with_logits(model(rows[index]), labels[index])
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise LossDiverged(f"training loss became {loss_value} at step {step} (lr {cfg.lr}, {cfg.optimizer})")
        if initial_loss is None:
            initial_loss = loss_value
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        window_loss += loss_value
        window_steps += 1
        if step % interval == 0 or step == cfg.steps:
            now = time.perf_counter()
            mean_loss = window_loss / window_steps
            report_progress(step, cfg.steps, mean_loss, window_steps * cfg.batch_size / max(now - window_start, 1e-9))
            check_explosion(mean_loss, initial_loss, step)
            window_loss, window_steps, window_start = 0.0, 0, now
    return TrainResult(examples=cfg.steps * cfg.batch_size, seconds=time.perf_counter() - start)


def report_progress(step: int, steps: int, loss: float, examples_per_s: float) -> None:
    payload = {"step": step, "steps": steps, "loss": round(loss, 5), "examples_per_s": round(examples_per_s, 1)}
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


def evaluate(logits: np.ndarray, valid: synthetic.Split, base_ctr: float) -> dict[str, float]:
    if not np.all(np.isfinite(logits)):
        raise LossDiverged("model produced non-finite validation logits")
    labels = valid.labels.astype(np.float64)
    entropy = binary_entropy(base_ctr)
    logloss = logloss_from_logits(labels, logits)
    bayes_logloss = logloss_from_probs(labels, valid.true_prob)
    probs = 1.0 / (1.0 + np.exp(-logits))
    return {
        "ne": logloss / entropy,
        "logloss": logloss,
        "auc": auc(labels, logits),
        "calibration": float(probs.mean() / labels.mean()),
        "bayes_ne": bayes_logloss / entropy,
        "bayes_logloss": bayes_logloss,
    }


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


def configure_torch(cfg: Config) -> None:
    torch.set_num_threads(cfg.threads)
    torch.set_num_interop_threads(1)
    torch.use_deterministic_algorithms(True)
    # Deterministic mode also NaN-fills every fresh tensor (a debugging aid that
    # costs ~30% of a step here); results do not depend on it.
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    torch.manual_seed(cfg.seed)


def run(argv: Sequence[str] | None) -> None:
    args = parse_args(argv)
    cfg = load_config(args.config)
    configure_torch(cfg)
    estimate = check_memory(cfg)

    data_start = time.perf_counter()
    ds = cfg.dataset
    data = synthetic.generate(ds.difficulty, ds.data_seed, ds.n_train, ds.n_valid)
    base_ctr = float(data.train.labels.mean(dtype=np.float64))
    log(
        f"dataset {ds.name}/{ds.difficulty}: {len(data.train)} train, {len(data.valid)} valid, "
        f"base ctr {base_ctr:.4f} ({time.perf_counter() - data_start:.2f}s)"
    )
    train_rows = torch.from_numpy(hash_features(data.train.features, cfg.hash_buckets))
    valid_rows = torch.from_numpy(hash_features(data.valid.features, cfg.hash_buckets))
    train_labels = torch.from_numpy(data.train.labels)

    model = CTRModel(cfg, base_ctr)
    param_count = sum(p.numel() for p in model.parameters())
    log(
        f"model: {param_count} params, interaction {cfg.interaction}, optimizer {cfg.optimizer}, "
        f"estimated memory {estimate:.1f} MB (cap {cfg.memory_cap_mb} MB), threads {cfg.threads}"
    )

    result = train(cfg, model, train_rows, train_labels)
    scores = evaluate(predict_logits(model, valid_rows), data.valid, base_ctr)
    metrics: dict[str, Any] = {
        **scores,
        "param_count": param_count,
        "examples_per_s": result.examples / max(result.seconds, 1e-9),
        "wall_time_s": time.perf_counter() - _PROCESS_START,
        "steps": cfg.steps,
        "train_examples": len(data.train),
        "valid_examples": len(data.valid),
        "base_ctr": base_ctr,
    }
    log(f"eval: ne {scores['ne']:.5f} (bayes {scores['bayes_ne']:.5f}), auc {scores['auc']:.5f}")
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
