"""The search baselines rea is compared with: random search, Optuna's TPE sampler, and TPE with
Optuna's Hyperband pruner, all running the very same trainer (trainers/ctr/train.py, same config
JSON, same metrics file) until a budget of training steps is spent.

    .venv/bin/python bench/baselines.py --method tpe --spec models/synthetic-ctr.json \
        --fidelity 600 --budget-steps 10000 --seed 3 --out /tmp/tpe-3.jsonl

Every trial appends one JSON line to --out: the config delta, the steps it trained, its NE (or why it
has none) and the steps spent so far. `--method baseline` runs the spec's baseline config once and
writes one line (the reference NE, and the Bayes-optimal NE on synthetic data).

The trainer runs in this process (train.main with --config/--metrics files, exactly the command-line
protocol) so that torch is imported once per study rather than once per trial: wall time is not the
compute measure here (training steps are), and the metrics are bit-identical to a subprocess run.
Hyperband: the trainer's `rea:progress` lines (mean training log loss every ~10 % of the steps) are
the intermediate values reported to Optuna; a pruned trial stops at that step and is charged only
the steps it trained.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "trainers", "ctr"))

import optuna  # noqa: E402
import train  # noqa: E402  (the trainer itself, trainers/ctr/train.py)

optuna.logging.set_verbosity(optuna.logging.WARNING)


class StopTraining(BaseException):
    """Raised from the progress hook to end a run early; BaseException so the trainer's own
    `except Exception` (which maps failures to the protocol's classes) does not swallow it."""

    def __init__(self, step: int, why: str) -> None:
        super().__init__(why)
        self.step = step
        self.why = why


def suggest(trial: optuna.Trial, spec: dict[str, Any]) -> dict[str, Any]:
    """One value per knob of the spec, over the spec's own ranges (the space rea searches)."""
    config: dict[str, Any] = {}
    for name, knob in spec["knobs"].items():
        kind = knob["type"]
        if kind == "logfloat":
            config[name] = trial.suggest_float(name, knob["min"], knob["max"], log=True)
        elif kind == "float":
            config[name] = trial.suggest_float(name, knob["min"], knob["max"])
        elif kind == "int":
            config[name] = trial.suggest_int(name, knob["min"], knob["max"])
        elif kind == "categorical":
            config[name] = trial.suggest_categorical(name, knob["choices"])
        elif kind == "bool":
            config[name] = trial.suggest_categorical(name, [True, False])
        else:
            raise SystemExit(f"knob {name}: unknown type {kind!r} in the spec; extend bench/baselines.py")
    return config


def baseline(spec: dict[str, Any]) -> dict[str, Any]:
    return {name: knob["baseline"] for name, knob in spec["knobs"].items()}


class Runner:
    """Runs the trainer on a config, in this process, through its --config/--metrics protocol."""

    def __init__(self, spec: dict[str, Any], trainer_seed: int, workdir: str) -> None:
        self.spec = spec
        self.seed = trainer_seed
        self.workdir = workdir
        self.knob = spec["fidelity"]["knob"]
        self.original_report = train.report_progress

    def run(self, knobs: dict[str, Any], steps: int, on_progress=None) -> dict[str, Any]:
        config = {**self.spec.get("fixed", {}), **knobs, self.knob: steps, "seed": self.seed}
        cfg_path = os.path.join(self.workdir, "config.json")
        metrics_path = os.path.join(self.workdir, "metrics.json")
        with open(cfg_path, "w") as f:
            json.dump(config, f)
        with contextlib.suppress(FileNotFoundError):
            os.remove(metrics_path)
        reached = {"step": 0}

        def hook(step: int, total: int, loss: float, examples_per_s: float) -> None:
            reached["step"] = step
            if on_progress is not None:
                on_progress(step, loss)

        train.report_progress = hook
        started = time.perf_counter()
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = train.main(["--config", cfg_path, "--metrics", metrics_path])
        except StopTraining as stop:
            return {"status": "stopped", "why": stop.why, "steps_trained": stop.step,
                    "wall_s": time.perf_counter() - started}
        finally:
            train.report_progress = self.original_report
        wall = time.perf_counter() - started
        if code != 0:
            line = next((l for l in err.getvalue().splitlines() if l.startswith("rea:error ")), "")
            failure = json.loads(line[len("rea:error "):]) if line else {"class": "crash", "message": err.getvalue()[-300:]}
            # A failed run is charged its whole step budget, as rea's budget charges a job when it starts.
            return {"status": "failed", "failure": failure["class"], "message": failure["message"][:300],
                    "steps_trained": steps, "wall_s": wall}
        with open(metrics_path) as f:
            metrics = json.load(f)
        return {"status": "ok", "ne": metrics["ne"], "bayes_ne": metrics.get("bayes_ne"),
                "steps_trained": steps, "wall_s": wall}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", required=True, choices=["random", "tpe", "hyperband", "baseline"])
    p.add_argument("--spec", required=True, help="a model spec JSON (models/<name>.json)")
    p.add_argument("--fidelity", type=int, required=True, help="steps of a full trial")
    p.add_argument("--budget-steps", type=int, default=0, help="total training steps of the study")
    p.add_argument("--seed", type=int, default=0, help="sampler seed and trainer seed")
    p.add_argument("--data-seed", type=int, default=None, help="override fixed.dataset.data_seed (a drifted task)")
    p.add_argument("--out", required=True, help="JSON lines, one per trial (appended)")
    a = p.parse_args()

    with open(a.spec) as f:
        spec = json.load(f)
    if a.data_seed is not None:
        spec["fixed"]["dataset"]["data_seed"] = a.data_seed
    workdir = tempfile.mkdtemp(prefix=f"rea-bench-{a.method}-")
    runner = Runner(spec, a.seed, workdir)
    out = open(a.out, "a", buffering=1)
    start = time.time()

    def emit(row: dict[str, Any]) -> None:
        out.write(json.dumps({"method": a.method, "model": spec["name"], "seed": a.seed,
                              "t": time.time() - start, **row}) + "\n")

    if a.method == "baseline":
        r = runner.run(baseline(spec), a.fidelity)
        emit({"trial": 0, "fidelity": a.fidelity, "delta": {}, **r})
        return 0 if r["status"] == "ok" else 1

    spent = 0
    if a.method == "random":
        sampler: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=a.seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=a.seed)
    pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    if a.method == "hyperband":
        # Rungs at fidelity/9, /3 and the full fidelity (reduction factor 3), as Optuna recommends.
        pruner = optuna.pruners.HyperbandPruner(
            min_resource=max(1, a.fidelity // 9), max_resource=a.fidelity, reduction_factor=3)
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)
    base = baseline(spec)
    n = 0
    while True:
        # Random and TPE only start a trial they can finish; Hyperband starts while a first rung fits.
        need = a.fidelity if a.method != "hyperband" else max(1, a.fidelity // 9)
        if spent + need > a.budget_steps:
            break
        trial = study.ask()
        knobs = suggest(trial, spec)

        def on_progress(step: int, loss: float, trial=trial) -> None:
            if spent + step >= a.budget_steps and step < a.fidelity:
                raise StopTraining(step, "budget")
            if a.method == "hyperband" and math.isfinite(loss):
                trial.report(loss, step)
                if trial.should_prune():
                    raise StopTraining(step, "pruned")

        r = runner.run(knobs, a.fidelity, on_progress)
        spent += r["steps_trained"]
        delta = {k: v for k, v in knobs.items() if base.get(k) != v}
        if r["status"] == "ok":
            study.tell(trial, r["ne"])
        elif r["status"] == "stopped":
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        emit({"trial": n, "fidelity": a.fidelity, "delta": delta, "spent": spent, **r})
        n += 1
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
