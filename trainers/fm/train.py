#!/usr/bin/env python3
"""rea's fast factorization-machine CTR trainer (numpy only).

Invocation::

    python trainers/fm/train.py --config CONFIG_JSON_PATH --metrics METRICS_JSON_PATH

A run takes about a second: it is an example model for benchmarking search
methods, with the protocol of docs/trainers.md (progress lines, atomic
metrics file + ``rea:metrics`` line, ``rea:error`` + exit codes 1 crash,
2 bad_config, 3 oom, 4 nan).  Every config key and what it does is in
``PARAM_SPECS`` below and in docs/trainers.md ("FM trainer").

Model (``model_form``)::

    linear:  z = b + sum_f w[i_f]
    fm:      z = b + sum_f w[i_f] + sum_{f<g} <v[i_f], v[i_g]>             (Rendle 2010)
    fwfm:    z = b + sum_f w[i_f] + sum_{f<g} r_{fg} <v[i_f], v[i_g]>       (Pan et al. 2018)

``i_f`` is the hashed bucket of field f's value: ``splitmix64((f << 33) | value)``
masked to ``hash_bits`` bits; with ``min_count`` > 0 a value seen fewer than
``min_count`` times in the training split is replaced by its field's
"rare" token first.  ``b`` starts at the training base rate's log-odds,
``w`` at 0, ``v`` at N(0, ``init_scale``^2) and ``r`` at 1.  ``latent_rank``,
``init_scale`` and ``latent_l2`` do nothing when ``model_form`` is "linear".

Training: minibatch updates of the mean log loss plus per-occurrence L2
(``l2_penalty`` on w, ``latent_l2`` on v) over ``kilo_examples`` thousand
training examples (the fidelity knob): the trainer walks the training split
in a random order and starts a new pass when one ends, reshuffled
(``reshuffle``) or in the same order.  ``update_rule`` is plain SGD, AdaGrad
or lazy Adam (moments of a table row updated only when the row is in the
minibatch), applied to the rows a minibatch touches; the step size is
``step_size`` times the ``step_decay`` factor.

Only the table rows the data can reach are stored (the hashed buckets of
the training and evaluated rows); a row's initial value is a function of the
bucket, ``seed`` and ``init_stream`` alone (a counter-based generator), so
the stored rows are exactly those of the full ``2**hash_bits`` table.

Two groups of keys change nothing systematic and exist for false-confirmation
checks (docs/trainers.md): ``shuffle_stream`` and ``init_stream`` pick
other random streams for the data order and the initial factors (like
another seed), ``progress_lines`` and ``eval_chunk`` are bookkeeping
(metrics bit-identical).

Determinism: same config => bit-identical metrics except ``wall_time_s`` and
``examples_per_s``.
"""

from __future__ import annotations

import time

_PROCESS_START = time.perf_counter()

import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any, Sequence  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
_COMMON = os.path.join(os.path.dirname(_HERE), "common")
if _COMMON not in sys.path:
    sys.path.insert(0, _COMMON)

import fastkit  # noqa: E402
from fastkit import MAX_SEED, BadConfig, DatasetConfig, LossDiverged, OutOfMemory, Spec  # noqa: E402

fastkit.limit_threads(1)  # before numpy is imported

import numpy as np  # noqa: E402

import fastdata  # noqa: E402

MAX_STREAM = 2**31 - 1
PARAM_SPECS: dict[str, Spec] = {
    "seed": Spec("int", 0, lo=0, hi=MAX_SEED),
    "kilo_examples": Spec("int", 300, lo=1, hi=100_000),
    "step_size": Spec("float", 0.05, lo=0, hi=100, lo_exclusive=True),
    "update_rule": Spec("choice", "adagrad", choices=("sgd", "adagrad", "adam")),
    "minibatch": Spec("int", 512, lo=8, hi=65_536),
    "step_decay": Spec("choice", "constant", choices=("constant", "linear", "inv_sqrt")),
    "model_form": Spec("choice", "linear", choices=("linear", "fm", "fwfm")),
    "latent_rank": Spec("int", 8, lo=1, hi=256),
    "init_scale": Spec("float", 0.01, lo=0, hi=10),
    "l2_penalty": Spec("float", 0.0, lo=0, hi=100),
    "latent_l2": Spec("float", 0.0, lo=0, hi=100),
    "hash_bits": Spec("int", 18, lo=4, hi=30),
    "min_count": Spec("int", 0, lo=0, hi=1_000_000),
    "reshuffle": Spec("bool", True),
    "shuffle_stream": Spec("int", 0, lo=0, hi=MAX_STREAM),
    "init_stream": Spec("int", 0, lo=0, hi=MAX_STREAM),
    "progress_lines": Spec("int", 10, lo=1, hi=1000),
    "eval_chunk": Spec("int", 8192, lo=1, hi=1_048_576),
    "eval_split": Spec("choice", "valid", choices=("valid", "test")),
    "memory_cap_mb": Spec("int", 2048, lo=1),
}

# Prints a progress line; a module global so that an in-process caller can replace it.
report_progress = fastkit.report_progress
ADAGRAD_EPS = 1e-8
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
# Streams of one seed: SeedSequence([seed, tag, offset]).
ORDER_TAG = 1
INIT_TAG = 2


@dataclass(frozen=True)
class Config:
    seed: int
    kilo_examples: int
    step_size: float
    update_rule: str
    minibatch: int
    step_decay: str
    model_form: str
    latent_rank: int
    init_scale: float
    l2_penalty: float
    latent_l2: float
    hash_bits: int
    min_count: int
    reshuffle: bool
    shuffle_stream: int
    init_stream: int
    progress_lines: int
    eval_chunk: int
    eval_split: str
    memory_cap_mb: int
    dataset: DatasetConfig = field(default_factory=lambda: fastkit.parse_dataset({}))

    @property
    def rank(self) -> int:
        """Width of the latent factors actually used (0 for the linear model)."""
        return 0 if self.model_form == "linear" else self.latent_rank


def parse_config(raw: Any) -> Config:
    values = fastkit.check_object(raw, PARAM_SPECS, "config", extra=("dataset",))
    return Config(**values, dataset=fastkit.parse_dataset(raw.get("dataset", {})))


# --------------------------------------------------------------------------- memory


OPTIMIZER_SLOTS = {"sgd": 0, "adagrad": 1, "adam": 2}


def param_count(cfg: Config, n_fields: int) -> int:
    """Parameters of the full hashed model: bias, 2**hash_bits rows of (1 + rank), field-pair weights."""
    count = 1 + (2**cfg.hash_bits) * (1 + cfg.rank)
    if cfg.model_form == "fwfm":
        count += n_fields * (n_fields - 1) // 2
    return count


def estimate_memory_mb(cfg: Config) -> float:
    """Stored table rows (at most every distinct bucket of the data) x (1 + rank) x
    (1 + optimizer slots) + the data and its encodings + one minibatch's and one
    evaluation chunk's intermediate arrays, in float64."""
    n_fields = fastkit.N_FEATURES[cfg.dataset.name]
    n_train, n_eval = cfg.dataset.rows()
    rows = min(2**cfg.hash_bits, (n_train + n_eval) * n_fields + n_fields)
    width = 1 + cfg.rank
    tables = rows * width * (1 + OPTIMIZER_SLOTS[cfg.update_rule]) * 8
    data = (n_train + n_eval) * n_fields * 8 * 4 + (n_train + n_eval) * 8 * 4
    per_row = n_fields * width * 8 * 6 + 64
    batch = (min(cfg.minibatch, n_train) + min(cfg.eval_chunk, n_eval)) * per_row
    return (tables + data + batch) / fastkit.MB


def check_memory(cfg: Config) -> float:
    estimate = estimate_memory_mb(cfg)
    if estimate > cfg.memory_cap_mb:
        raise OutOfMemory(
            f"estimated memory {estimate:.1f} MB exceeds memory_cap_mb {cfg.memory_cap_mb} MB "
            f"(model_form {cfg.model_form}, latent_rank {cfg.latent_rank}, hash_bits {cfg.hash_bits}, "
            f"update_rule {cfg.update_rule}, minibatch {cfg.minibatch}, eval_chunk {cfg.eval_chunk})"
        )
    return estimate


# --------------------------------------------------------------------------- encoding


RARE_VALUE = 1 << 32  # above every data set id (< 2**32): a field's "rare" token


@dataclass(frozen=True)
class Encoded:
    train: np.ndarray  # (F, n_train) int64 rows of the stored tables, field-major
    evaluated: np.ndarray  # (F, n_eval)
    buckets: np.ndarray  # (U,) uint64 hashed bucket of each stored row


def encode(cfg: Config, data: fastdata.Data, evaluated: fastdata.Split) -> Encoded:
    """Hashed buckets of every field value, renumbered to rows of the stored tables (the
    distinct buckets of the loaded values, in increasing order), and both splits' rows.
    With ``min_count`` a value seen fewer than ``min_count`` times in the training split
    hashes as its field's rare token."""
    per_field: list[np.ndarray] = []
    for f, values in enumerate(data.vocab):
        keys = values.astype(np.uint64)
        if cfg.min_count > 0:
            counts = np.bincount(data.train.features[:, f], minlength=values.shape[0])
            keys = np.where(counts >= cfg.min_count, keys, np.uint64(RARE_VALUE))
        hashed = fastdata.splitmix64((np.uint64(f) << np.uint64(33)) | keys)
        per_field.append(hashed & np.uint64((1 << cfg.hash_bits) - 1))
    buckets, rows = np.unique(np.concatenate(per_field), return_inverse=True)
    starts = np.cumsum([0] + [v.shape[0] for v in per_field])
    row_of = [rows[starts[f] : starts[f + 1]].astype(np.int64) for f in range(len(per_field))]

    def table_rows(split: fastdata.Split) -> np.ndarray:
        out = np.empty(split.features.shape[::-1], dtype=np.int64)
        for f, lookup in enumerate(row_of):
            out[f] = lookup[split.features[:, f]]
        return out

    return Encoded(train=table_rows(data.train), evaluated=table_rows(evaluated), buckets=buckets)


def counter_normal(buckets: np.ndarray, width: int, seed: int, stream: int) -> np.ndarray:
    """N(0, 1) values, one per (bucket, column), that depend only on the bucket, the
    column, ``seed`` and ``stream`` (splitmix64 counters + Box-Muller)."""
    mix = fastdata.splitmix64(np.array([seed, (INIT_TAG << 32) | stream], dtype=np.uint64))
    key = fastdata.splitmix64(mix[:1] ^ fastdata.splitmix64(mix[1:]))[0]
    cols = np.arange(width, dtype=np.uint64)[None, :]
    counter = (buckets.astype(np.uint64)[:, None] << np.uint64(9)) | (cols << np.uint64(1))
    a = fastdata.splitmix64(counter ^ key)
    b = fastdata.splitmix64((counter | np.uint64(1)) ^ key)
    scale = 2.0**-53
    u1 = ((a >> np.uint64(11)).astype(np.float64) + 0.5) * scale  # (0, 1)
    u2 = (b >> np.uint64(11)).astype(np.float64) * scale
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)


# --------------------------------------------------------------------------- model


class FM:
    """Parameters and their optimizer state.

    ``w`` (U,) and ``v`` (U, rank) hold one row per stored bucket; ``r`` (fwfm only)
    the field-pair weights, symmetric with a zero diagonal.  Minibatches arrive
    field-major: ``cols`` is (F, n), the table rows of n examples' F fields.
    """

    def __init__(self, cfg: Config, enc: Encoded, n_fields: int, base_ctr: float) -> None:
        self.cfg = cfg
        self.form = cfg.model_form
        self.n_fields = n_fields
        self.k = cfg.rank
        n_rows = enc.buckets.shape[0]
        self.bias = math.log(base_ctr / (1.0 - base_ctr))
        self.w = np.zeros(n_rows)
        self.v = np.zeros((n_rows, self.k))
        if self.k:
            self.v[:] = cfg.init_scale * counter_normal(enc.buckets, self.k, cfg.seed, cfg.init_stream)
        self.r = np.ones((n_fields, n_fields)) - np.eye(n_fields) if self.form == "fwfm" else None
        slots = OPTIMIZER_SLOTS[cfg.update_rule]
        self.state_w = [np.zeros_like(self.w) for _ in range(slots)]
        self.state_v = [np.zeros_like(self.v) for _ in range(slots)]
        self.state_r = [np.zeros_like(self.r) for _ in range(slots)] if self.r is not None else []
        self.state_b = [0.0] * slots
        self.updates = 0
        self._columns = np.arange(self.k)
        self._slot = np.zeros(n_rows, dtype=np.int64)  # scratch of _distinct

    def _distinct(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The distinct table rows of ``flat`` and each entry's index among them, in O(len)
        without sorting: each row's slot keeps the position of its last occurrence."""
        positions = np.arange(flat.shape[0])
        self._slot[flat] = positions
        touched = flat[self._slot[flat] == positions]
        self._slot[touched] = np.arange(touched.shape[0])
        return touched, self._slot[flat]

    # ---- forward

    def forward(self, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Logits of the n examples of (F, n) ``cols``, the gathered factors (F, n, rank) and
        d pairwise / d v_f per occurrence (F, n, rank).  Elementwise operations, sums over
        fields and the (F, F) x (F, n * rank) product with r only: a logit does not depend
        on the other examples of the chunk."""
        n_fields, n = cols.shape
        z = self.w.take(cols).sum(axis=0)
        z += self.bias
        if not self.k:
            return z, None, None
        v = self.v.take(cols.reshape(-1), axis=0).reshape(n_fields, n, self.k)
        if self.form == "fm":
            s = v.sum(axis=0)
            z += 0.5 * (np.einsum("bk,bk->b", s, s) - np.einsum("fbk,fbk->b", v, v))
            return z, v, s[None, :, :] - v  # d/dv_f sum_{f<g} <v_f, v_g> = s - v_f
        assert self.r is not None
        m = (self.r @ v.reshape(n_fields, -1)).reshape(n_fields, n, self.k)  # m_f = sum_g r_fg v_g
        z += 0.5 * np.einsum("fbk,fbk->b", v, m)
        return z, v, m

    def logits(self, cols: np.ndarray, chunk: int) -> np.ndarray:
        n = cols.shape[1]
        parts = [self.forward(np.ascontiguousarray(cols[:, i : i + chunk]))[0] for i in range(0, n, chunk)]
        return np.concatenate(parts) if parts else np.zeros(0)

    # ---- update

    def step(self, cols: np.ndarray, labels: np.ndarray, lr: float) -> float:
        """One minibatch update; returns the minibatch's mean log loss before the update."""
        cfg = self.cfg
        n_fields, n = cols.shape
        z, v, dpair = self.forward(cols)
        loss = float(np.mean(np.logaddexp(0.0, z) - labels * z))
        g = (fastdata.sigmoid(z) - labels) / n  # d mean loss / d logit
        flat = cols.reshape(-1)
        touched, inv = self._distinct(flat)
        n_touched = touched.shape[0]
        # per occurrence: d logit / d w = 1, d logit / d v_f = dpair_f; plus the L2 terms
        occ_w = np.broadcast_to(g, (n_fields, n))
        if cfg.l2_penalty:
            occ_w = occ_w + (cfg.l2_penalty / n) * self.w.take(cols)
        grad_w = np.bincount(inv, weights=occ_w.reshape(-1), minlength=n_touched)
        grad_v = grad_r = None
        if self.k:
            assert v is not None and dpair is not None
            occ_v = dpair * g[None, :, None]
            if cfg.latent_l2:
                occ_v += (cfg.latent_l2 / n) * v
            index = (inv[:, None] * self.k + self._columns).reshape(-1)
            grad_v = np.bincount(index, weights=occ_v.reshape(-1), minlength=n_touched * self.k)
            grad_v = grad_v.reshape(n_touched, self.k)
            if self.r is not None:
                gv = (v * g[None, :, None]).reshape(n_fields, -1)
                grad_r = gv @ v.reshape(n_fields, -1).T  # sum_b g_b <v_f, v_g>
                np.fill_diagonal(grad_r, 0.0)
        self.updates += 1
        self._apply(lr, touched, float(g.sum()), grad_w, grad_v, grad_r)
        return loss

    def _apply(
        self,
        lr: float,
        touched: np.ndarray,
        grad_b: float,
        grad_w: np.ndarray,
        grad_v: np.ndarray | None,
        grad_r: np.ndarray | None,
    ) -> None:
        rule = self.cfg.update_rule
        if rule == "sgd":
            self.bias -= lr * grad_b
            self.w[touched] -= lr * grad_w
            if grad_v is not None:
                self.v[touched] -= lr * grad_v
            if grad_r is not None and self.r is not None:
                self.r -= lr * grad_r
            return
        if rule == "adagrad":
            self.state_b[0] += grad_b * grad_b
            self.bias -= lr * grad_b / (math.sqrt(self.state_b[0]) + ADAGRAD_EPS)
            self._adagrad_rows(self.w, self.state_w[0], touched, grad_w, lr)
            if grad_v is not None:
                self._adagrad_rows(self.v, self.state_v[0], touched, grad_v, lr)
            if grad_r is not None and self.r is not None:
                self.state_r[0] += grad_r * grad_r
                self.r -= lr * grad_r / (np.sqrt(self.state_r[0]) + ADAGRAD_EPS)
            return
        # lazy Adam: moments of the touched rows only; bias correction by the global update count
        b1, b2 = ADAM_BETAS
        t = self.updates
        lr_t = lr * math.sqrt(1.0 - b2**t) / (1.0 - b1**t)
        self.state_b[0] = b1 * self.state_b[0] + (1 - b1) * grad_b
        self.state_b[1] = b2 * self.state_b[1] + (1 - b2) * grad_b * grad_b
        self.bias -= lr_t * self.state_b[0] / (math.sqrt(self.state_b[1]) + ADAM_EPS)
        self._adam_rows(self.w, self.state_w, touched, grad_w, lr_t)
        if grad_v is not None:
            self._adam_rows(self.v, self.state_v, touched, grad_v, lr_t)
        if grad_r is not None and self.r is not None:
            mr, sr = self.state_r
            mr *= b1
            mr += (1 - b1) * grad_r
            sr *= b2
            sr += (1 - b2) * grad_r * grad_r
            self.r -= lr_t * mr / (np.sqrt(sr) + ADAM_EPS)

    @staticmethod
    def _adagrad_rows(
        param: np.ndarray, acc: np.ndarray, rows: np.ndarray, grad: np.ndarray, lr: float
    ) -> None:
        total = acc[rows] + grad * grad
        acc[rows] = total
        param[rows] -= lr * grad / (np.sqrt(total) + ADAGRAD_EPS)

    @staticmethod
    def _adam_rows(
        param: np.ndarray, state: list[np.ndarray], rows: np.ndarray, grad: np.ndarray, lr_t: float
    ) -> None:
        b1, b2 = ADAM_BETAS
        m = b1 * state[0][rows] + (1 - b1) * grad
        s = b2 * state[1][rows] + (1 - b2) * grad * grad
        state[0][rows] = m
        state[1][rows] = s
        param[rows] -= lr_t * m / (np.sqrt(s) + ADAM_EPS)


# --------------------------------------------------------------------------- training


def decay_factor(kind: str, update: int, total: int, per_pass: int) -> float:
    """Multiplier of ``step_size`` at 1-based ``update`` of ``total``: 1 ("constant"), a
    linear decay towards 0 at the last update ("linear"), or 1 / sqrt(1 + passes done)
    ("inv_sqrt", ``per_pass`` updates a pass)."""
    if kind == "linear":
        return 1.0 - (update - 1) / total
    if kind == "inv_sqrt":
        return 1.0 / math.sqrt(1.0 + (update - 1) / per_pass)
    return 1.0


@dataclass(frozen=True)
class TrainResult:
    logits: np.ndarray  # on the evaluated split, after the last update
    updates: int
    examples: int
    seconds: float


def train(
    cfg: Config, model: FM, enc: Encoded, labels: np.ndarray, eval_labels: np.ndarray, base_ctr: float
) -> TrainResult:
    """``kilo_examples * 1000`` examples in minibatches, walking the training split in a
    random order and starting a new pass (reshuffled with ``reshuffle``) when one ends; a
    minibatch never spans two passes, so the last one of a pass may be smaller."""
    n = enc.train.shape[1]
    batch = min(cfg.minibatch, n)
    budget = cfg.kilo_examples * 1000
    sizes = _minibatch_sizes(n, batch, budget)
    total = len(sizes)
    per_pass = math.ceil(n / batch)
    points = set(fastkit.progress_points(total, cfg.progress_lines))
    order_rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, ORDER_TAG, cfg.shuffle_stream]))
    order = order_rng.permutation(n)
    what = f"step_size {cfg.step_size}, {cfg.update_rule}, {cfg.model_form}"
    initial_loss: float | None = None
    window_loss, window_updates, window_examples = 0.0, 0, 0
    start = window_start = time.perf_counter()
    logits = np.zeros(0)
    pos = 0
    for update, size in enumerate(sizes, start=1):
        if pos == n:
            pos = 0
            if cfg.reshuffle:
                order = order_rng.permutation(n)
        idx = order[pos : pos + size]
        pos += size
        lr = cfg.step_size * decay_factor(cfg.step_decay, update, total, per_pass)
        loss = model.step(enc.train.take(idx, axis=1), labels[idx], lr)
        if not math.isfinite(loss):
            raise LossDiverged(f"training loss became {loss} at update {update} ({what})")
        if initial_loss is None:
            initial_loss = loss
        window_loss += loss
        window_updates += 1
        window_examples += size
        if update in points:
            mean_loss = window_loss / window_updates
            fastkit.check_explosion(mean_loss, initial_loss, update, what)
            logits = model.logits(enc.evaluated, cfg.eval_chunk)
            ne = fastdata.ne_of(logits, eval_labels, base_ctr, f"at update {update} ({what})")
            now = time.perf_counter()
            report_progress(update, total, mean_loss, window_examples / max(now - window_start, 1e-9), ne)
            window_loss, window_updates, window_examples = 0.0, 0, 0
            window_start = time.perf_counter()
    return TrainResult(logits=logits, updates=total, examples=sum(sizes), seconds=time.perf_counter() - start)


def _minibatch_sizes(n: int, batch: int, budget: int) -> list[int]:
    """Sizes of the minibatches that process ``budget`` examples in passes of ``n`` rows."""
    sizes: list[int] = []
    pos = done = 0
    while done < budget:
        if pos == n:
            pos = 0
        size = min(batch, n - pos, budget - done)
        sizes.append(size)
        pos += size
        done += size
    return sizes


# --------------------------------------------------------------------------- main


def run(argv: Sequence[str] | None) -> None:
    args = fastkit.parse_args(argv, "rea fast FM trainer")
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
    enc = encode(cfg, data, evaluated)
    n_fields = data.train.features.shape[1]
    model = FM(cfg, enc, n_fields, base_ctr)
    fastkit.log(
        f"model {cfg.model_form}: rank {cfg.rank}, {enc.buckets.shape[0]} stored rows of 2^{cfg.hash_bits}, "
        f"{cfg.update_rule} step_size {cfg.step_size} ({cfg.step_decay}), minibatch {cfg.minibatch}, "
        f"estimated memory {estimate:.1f} MB (cap {cfg.memory_cap_mb} MB)"
    )
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        result = train(cfg, model, enc, data.train.labels, evaluated.labels, base_ctr)
    scores = fastdata.evaluate(result.logits, evaluated, base_ctr)
    metrics: dict[str, Any] = {
        **scores,
        "param_count": param_count(cfg, n_fields),
        "examples_per_s": result.examples / max(result.seconds, 1e-9),
        "wall_time_s": time.perf_counter() - _PROCESS_START,
        "kilo_examples": cfg.kilo_examples,
        "passes": result.examples / len(data.train),
        "updates": result.updates,
        "train_examples": len(data.train),
        "valid_examples": len(evaluated),
        "base_ctr": base_ctr,
    }
    bayes = f" (bayes {scores['bayes_ne']:.5f})" if "bayes_ne" in scores else ""
    fastkit.log(f"eval on {cfg.eval_split}: ne {scores['ne']:.5f}{bayes}, auc {scores['auc']:.5f}")
    fastkit.write_metrics(args.metrics, metrics)


def main(argv: Sequence[str] | None = None) -> int:
    return fastkit.main_wrapper(run, argv)


if __name__ == "__main__":
    fastkit.exit_now(main())
