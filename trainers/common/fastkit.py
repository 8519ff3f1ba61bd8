"""Shared protocol code of rea's fast example trainers (``trainers/fm``, ``trainers/gbdt``).

Standard library only, so that a trainer can validate its config, fail fast
on a bad one and set the thread limits of numpy's BLAS (environment
variables, read when numpy is first imported) before it imports numpy.  The
numpy side (data loading with an on-disk cache, the metrics) is
``fastdata.py``.

The protocol is docs/trainers.md's:

* ``rea:progress {"step", "steps", "loss", "examples_per_s", "metrics": {"ne"}}``
  lines on stdout;
* the metrics JSON written atomically (``.tmp`` file, fsync, rename) plus a
  last stdout line ``rea:metrics {...}``, exit 0;
* on failure one ``rea:error {"class", "message"}`` line on stderr and the
  class's exit code: crash 1, bad_config 2, oom 3, nan 4.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Callable, NoReturn, Sequence

MAX_SEED = 2**63 - 1
MB = 1024.0 * 1024.0

# The data sets of trainers/ctr/ctr_datasets.py (checked against its NAMES when it is loaded).
DATASET_NAMES: tuple[str, ...] = ("synthetic", "movielens", "obd")
DIFFICULTIES: tuple[str, ...] = ("easy", "hard")


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


# --------------------------------------------------------------------------- config values


@dataclass(frozen=True)
class Spec:
    """Type, range and default of one config value."""

    kind: str  # "int" | "float" | "choice" | "bool"
    default: Any
    lo: float | None = None
    hi: float | None = None
    lo_exclusive: bool = False
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "bool":
            return "true or false"
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
            raise BadConfig(f"{key}: expected {self.describe()}, got {_show(value)}")
        return float(value) if self.kind == "float" else value

    def _accepts(self, value: Any) -> bool:
        if self.kind == "bool":
            return isinstance(value, bool)
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
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def _show(value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)


def check_object(
    raw: Any, specs: dict[str, Spec], where: str, extra: Sequence[str] = (), note: str = ""
) -> dict[str, Any]:
    """Every key of ``raw`` checked against ``specs`` (``extra`` keys are allowed and
    left to the caller); defaults filled in.  Raises BadConfig naming the key."""
    if not isinstance(raw, dict):
        raise BadConfig(f"{where}: expected a JSON object, got {_show(raw)}")
    allowed = sorted([*specs, *extra])
    for key in raw:
        if key not in specs and key not in extra:
            raise BadConfig(f"{where}: unknown key {key!r}; allowed keys{note}: {', '.join(allowed)}")
    prefix = "" if where == "config" else f"{where}."
    out = {key: spec.default for key, spec in specs.items()}
    for key, spec in specs.items():
        if key in raw:
            out[key] = spec.check(prefix + key, raw[key])
    return out


# --------------------------------------------------------------------------- dataset object


DATASET_SPECS: dict[str, Spec] = {
    "name": Spec("choice", "synthetic", choices=DATASET_NAMES),
    "difficulty": Spec("choice", "easy", choices=DIFFICULTIES),
    "data_seed": Spec("int", 1234, lo=0, hi=MAX_SEED),
    "n_train": Spec("int", 50_000, lo=1000, hi=5_000_000),
    "n_valid": Spec("int", 20_000, lo=1000, hi=1_000_000),
    "max_train_rows": Spec("int", None, lo=100, hi=10_000_000),
}
DATASET_KEYS: dict[str, tuple[str, ...]] = {
    "synthetic": ("name", "difficulty", "data_seed", "n_train", "n_valid"),
    "movielens": ("name", "data_seed", "max_train_rows"),
    "obd": ("name", "data_seed", "max_train_rows"),
}
# Rows of the shipped real data sets and their (train, valid) fractions, for memory estimates.
REAL_ROWS: dict[str, int] = {"movielens": 100_000, "obd": 10_000}
REAL_FRACTIONS: dict[str, tuple[float, float]] = {"movielens": (0.8, 0.1), "obd": (0.7, 0.15)}
N_FEATURES: dict[str, int] = {"synthetic": 7, "movielens": 10, "obd": 12}


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    data_seed: int
    difficulty: str
    n_train: int
    n_valid: int
    max_train_rows: int | None

    def as_key(self) -> dict[str, Any]:
        """The values that determine the rows (the cache key)."""
        keys = DATASET_KEYS[self.name]
        return {k: getattr(self, k) for k in keys}

    def rows(self) -> tuple[int, int]:
        """(training rows, rows of the validation or test split), before loading."""
        if self.name == "synthetic":
            return self.n_train, self.n_valid
        total = REAL_ROWS[self.name]
        f_train, f_valid = REAL_FRACTIONS[self.name]
        n_train = int(total * f_train) + 1
        if self.max_train_rows is not None:
            n_train = min(n_train, self.max_train_rows)
        return n_train, int(total * f_valid) + 1


def parse_dataset(raw: Any) -> DatasetConfig:
    if not isinstance(raw, dict):
        raise BadConfig(f"dataset: expected a JSON object, got {_show(raw)}")
    name = DATASET_SPECS["name"].check("dataset.name", raw.get("name", "synthetic"))
    specs = {key: DATASET_SPECS[key] for key in DATASET_KEYS[name]}
    values = check_object(raw, specs, "dataset", note=f' for dataset "{name}"')
    full = {key: spec.default for key, spec in DATASET_SPECS.items()}
    full.update(values)
    full["name"] = name
    return DatasetConfig(**full)


# --------------------------------------------------------------------------- files and lines


def read_config_file(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise BadConfig(f"cannot read config file {path!r}: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadConfig(f"config file {path!r} is not valid JSON: {exc}") from exc


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise BadConfig(f"command line: {message}")


def parse_args(argv: Sequence[str] | None, description: str) -> argparse.Namespace:
    parser = _ArgumentParser(description=description)
    parser.add_argument("--config", required=True, help="path of the JSON config")
    parser.add_argument("--metrics", required=True, help="path to write the metrics JSON")
    return parser.parse_args(argv)


def limit_threads(threads: int) -> None:
    """Thread limits of numpy's BLAS and OpenMP; effective only before numpy is imported."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(threads)


def report_progress(step: int, steps: int, loss: float, examples_per_s: float, ne: float) -> None:
    """One progress line; ``metrics.ne`` is the primary metric on the evaluated split at this point."""
    payload = {
        "step": step,
        "steps": steps,
        "loss": round(loss, 6),
        "examples_per_s": round(max(examples_per_s, 0.0), 1),
        "metrics": {"ne": ne},
    }
    log(f"rea:progress {json.dumps(payload)}")


def progress_points(total: int, lines: int) -> list[int]:
    """The steps (1-based) after which a progress line is printed: ``lines`` about evenly
    spaced points ending at ``total`` (fewer when ``total < lines``)."""
    points = sorted({max(1, math.ceil(total * i / lines)) for i in range(1, lines + 1)})
    return [p for p in points if p <= total]


def check_explosion(window_mean: float, initial_loss: float, step: int, what: str) -> None:
    if not math.isfinite(window_mean):
        raise LossDiverged(f"training loss became {window_mean} by step {step} ({what})")
    limit = max(10.0, 20.0 * initial_loss)
    if window_mean > limit:
        raise LossDiverged(
            f"loss exploded: mean training loss {window_mean:.4g} over the window ending at step {step} "
            f"exceeds max(10, 20 * initial loss {initial_loss:.4g}) = {limit:.4g} ({what})"
        )


def write_metrics(path: str, metrics: dict[str, Any]) -> None:
    text = json.dumps(metrics)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    log(f"rea:metrics {text}")


def is_oom_exception(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "unable to allocate" in text or "bad_alloc" in text


def main_wrapper(run: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None) -> int:
    """Runs ``run(argv)`` and maps every failure to its protocol class; returns the exit code."""
    try:
        run(argv)
        return 0
    except TrainerError as exc:
        emit_error(exc.error_class, str(exc))
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the protocol maps every failure to a class
        traceback.print_exc(file=sys.stderr)
        if is_oom_exception(exc):
            emit_error(OutOfMemory.error_class, f"out of memory: {type(exc).__name__}: {exc}")
            return OutOfMemory.exit_code
        emit_error(TrainerError.error_class, f"{type(exc).__name__}: {exc}")
        return TrainerError.exit_code


def exit_now(code: int) -> NoReturn:
    """Flush and leave without interpreter teardown (everything has been written)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
