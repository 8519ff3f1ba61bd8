"""The search methods rea is measured against, at full strength, on any model spec: Optuna's TPE
(default, and multivariate + group + constant liar), TPE with Hyperband pruning, random search,
Gaussian-process BO (GPSampler) and CMA-ES, each asking for trials and telling results two at a
time (ask/tell), until a budget of fidelity units is spent.

    .venv/bin/python bench/peers.py --method tpe-mv --spec models/fm-synthetic.json \
        --budget 270 --seed 3 --out /tmp/tpe-mv-3.jsonl

A trial runs the spec's own trainer through rea's trainer protocol (docs/trainers.md): the config
JSON is `{...fixed, ...knobs, <fidelity knob>: <fidelity>, seed}`, the argv is the spec's
`trainer.argv` with {python}, {config} and {metrics} replaced as whole arguments (never a shell),
in `trainer.cwd` with `trainer.env`. Nothing here knows a knob's name: the search space is the
spec's knobs (with `activeWhen` conditions where the spec has them).

Every trial appends one JSON line to --out. The first trial is always the spec's baseline. A trial
reserves a full-fidelity job's units when it starts and is charged what it trained (a failed trial
is charged its reservation, as rea's budget charges a job when it starts), so no study overruns its
budget. Hyperband reports the trainer's progress lines (the primary metric on the evaluated split
when the trainer prints one, else the training loss) and stops a pruned trainer at that point.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import warnings

import optuna

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

optuna.logging.set_verbosity(optuna.logging.WARNING)

METHODS = ("random", "tpe", "tpe-mv", "hyperband", "gp", "cmaes")


def make_sampler(method: str, seed: int) -> optuna.samplers.BaseSampler:
    if method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if method == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if method in ("tpe-mv", "hyperband"):
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)
    if method == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if method == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    raise SystemExit(f"--method: expected one of {', '.join(METHODS)}, got {method!r}")


def knob_order(knobs: dict[str, Any]) -> list[str]:
    """Knobs with every knob their `activeWhen` names before them (a condition needs its value)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in seen:
            return
        if name in path:
            raise SystemExit(f"knobs.{name}.activeWhen: a cycle through {' -> '.join(path + (name,))}")
        for parent in (knobs[name].get("activeWhen") or {}):
            if parent not in knobs:
                raise SystemExit(f"knobs.{name}.activeWhen: unknown knob {parent!r}")
            visit(parent, path + (name,))
        seen.add(name)
        order.append(name)

    for name in knobs:
        visit(name, ())
    return order


def is_active(knob: dict[str, Any], config: dict[str, Any]) -> bool:
    return all(config.get(parent) in values for parent, values in (knob.get("activeWhen") or {}).items())


def suggest(trial: optuna.Trial, spec: dict[str, Any]) -> dict[str, Any]:
    """One value per active knob over the spec's ranges; an inactive knob keeps its baseline."""
    knobs = spec["knobs"]
    config: dict[str, Any] = {}
    for name in knob_order(knobs):
        knob = knobs[name]
        if not is_active(knob, config):
            config[name] = knob["baseline"]
            continue
        kind = knob["type"]
        if kind == "logfloat":
            config[name] = trial.suggest_float(name, knob["min"], knob["max"], log=True)
        elif kind == "float":
            config[name] = trial.suggest_float(name, knob["min"], knob["max"])
        elif kind == "int":
            # Wide positive ranges (sizes, counts) are searched in log space, as rea's planner does.
            log = knob["min"] > 0 and knob["max"] / knob["min"] >= 16
            config[name] = trial.suggest_int(name, knob["min"], knob["max"], log=log)
        elif kind == "categorical":
            config[name] = trial.suggest_categorical(name, knob["choices"])
        elif kind == "bool":
            config[name] = trial.suggest_categorical(name, [False, True])
        else:
            raise SystemExit(f"knobs.{name}.type: unknown type {kind!r}")
    return config


def baseline_params(spec: dict[str, Any]) -> dict[str, Any]:
    """The baseline as trial parameters: active knobs only (an inactive one is not a parameter)."""
    knobs = spec["knobs"]
    config = {name: knob["baseline"] for name, knob in knobs.items()}
    return {name: config[name] for name in knob_order(knobs) if is_active(knobs[name], config)}


# The trainers running now, each the leader of its own process group (start_new_session), so that
# SIGTERM can stop them: they would otherwise run on after this process, outside its group.
RUNNING: set[subprocess.Popen[str]] = set()
RUNNING_LOCK = threading.Lock()


def stop_on_signal(signum: int, _frame: object) -> None:
    """SIGTERM or Ctrl-C: kill every running trainer's group, then exit 128 + signal (the trials that
    finished are in --out already, one line each)."""
    with RUNNING_LOCK:
        for proc in list(RUNNING):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    os._exit(128 + signum)


class Trainer:
    """Runs the spec's trainer on one config through the protocol, as a process group of its own."""

    def __init__(self, spec: dict[str, Any], root: str, trainer_seed: int) -> None:
        self.spec = spec
        self.seed = trainer_seed
        trainer = spec["trainer"]
        self.cwd = os.path.join(root, trainer.get("cwd", "."))
        self.env = {**os.environ, **(trainer.get("env") or {}), "PYTHONUNBUFFERED": "1"}
        self.argv = trainer["argv"]
        self.primary = spec["metric"]["primary"]
        self.knob = spec["fidelity"]["knob"]
        self.workdir = tempfile.mkdtemp(prefix="rea-peers-")

    def run(self, number: int, knobs: dict[str, Any], fidelity: int, on_progress) -> dict[str, Any]:
        """on_progress(step, value) → True to stop the trainer there (pruned)."""
        run_dir = os.path.join(self.workdir, f"t{number}")
        os.makedirs(run_dir, exist_ok=True)
        cfg = os.path.join(run_dir, "config.json")
        metrics = os.path.join(run_dir, "metrics.json")
        with open(cfg, "w") as f:
            json.dump({**self.spec.get("fixed", {}), **knobs, self.knob: fidelity, "seed": self.seed}, f)
        subst = {"{python}": sys.executable, "{config}": cfg, "{metrics}": metrics}
        argv = [subst.get(a, a) for a in self.argv]
        started = time.perf_counter()
        with RUNNING_LOCK:  # so that a signal handler never misses a trainer that is starting
            proc = subprocess.Popen(argv, cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, start_new_session=True)
            RUNNING.add(proc)
        err_lines: list[str] = []
        err_reader = threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)
        err_reader.start()
        reached = 0
        stopped = False
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.startswith("rea:progress "):
                continue
            try:
                p = json.loads(line[len("rea:progress "):])
                step = int(p["step"])
            except (ValueError, KeyError, TypeError):
                continue
            reached = step
            value = (p.get("metrics") or {}).get(self.primary, p.get("loss"))
            if isinstance(value, (int, float)) and step < fidelity and on_progress(step, float(value)):
                stopped = True
                os.killpg(proc.pid, signal.SIGKILL)
                break
        proc.wait()
        with RUNNING_LOCK:
            RUNNING.discard(proc)
        err_reader.join(timeout=5)
        wall = time.perf_counter() - started
        if stopped:
            return {"status": "pruned", "units": reached, "wall_s": wall}
        if proc.returncode != 0:
            line = next((l for l in err_lines if l.startswith("rea:error ")), "")
            try:
                failure = json.loads(line[len("rea:error "):]) if line else None
            except ValueError:
                failure = None
            failure = failure or {"class": "crash", "message": "".join(err_lines)[-300:]}
            return {"status": "failed", "failure": failure.get("class"), "message": str(failure.get("message"))[:300],
                    "units": fidelity, "wall_s": wall}
        with open(metrics) as f:
            m = json.load(f)
        value = m.get(self.primary)
        if not isinstance(value, (int, float)):
            return {"status": "failed", "failure": "crash", "message": f"no {self.primary} in the metrics",
                    "units": fidelity, "wall_s": wall}
        return {"status": "ok", "value": float(value), "units": fidelity, "wall_s": wall,
                "bayes": m.get(f"bayes_{self.primary}")}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--spec", required=True, help="a model spec JSON")
    p.add_argument("--budget", type=int, required=True, help="fidelity units the study may spend")
    p.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    p.add_argument("--trainer-seed", type=int, default=None, help="every trial's trainer seed (default: --seed)")
    p.add_argument("--parallel", type=int, default=2, help="trials at a time")
    p.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."),
                   help="the folder trainer.cwd is relative to")
    p.add_argument("--out", required=True, help="JSON lines, one per trial")
    a = p.parse_args()
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)

    with open(a.spec) as f:
        spec = json.load(f)
    low, high = spec["fidelity"]["low"], spec["fidelity"]["high"]
    direction = "minimize" if spec["metric"]["direction"] == "minimize" else "maximize"
    pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    if a.method == "hyperband":
        pruner = optuna.pruners.HyperbandPruner(min_resource=low, max_resource=high, reduction_factor=3)
    study = optuna.create_study(direction=direction, sampler=make_sampler(a.method, a.seed), pruner=pruner)
    study.enqueue_trial(baseline_params(spec))
    trainer = Trainer(spec, a.root, a.seed if a.trainer_seed is None else a.trainer_seed)
    baseline = {name: knob["baseline"] for name, knob in spec["knobs"].items()}

    lock = threading.Lock()
    state = {"spent": 0, "reserved": 0, "next": 0}
    out = open(a.out, "w", buffering=1)
    start = time.time()
    errors: queue.Queue[BaseException] = queue.Queue()

    def lane() -> None:
        try:
            while True:
                with lock:
                    # Start only a trial the budget can pay for in full: no study overruns.
                    if state["spent"] + state["reserved"] + high > a.budget:
                        return
                    state["reserved"] += high
                    trial = study.ask()
                    number = state["next"]
                    state["next"] += 1
                knobs = suggest(trial, spec)

                def on_progress(step: int, value: float, trial=trial) -> bool:
                    if a.method != "hyperband":
                        return False
                    with lock:
                        trial.report(value, step)
                        return trial.should_prune()

                r = trainer.run(number, knobs, high, on_progress)
                with lock:
                    state["reserved"] -= high
                    state["spent"] += r["units"]
                    if r["status"] == "ok":
                        study.tell(trial, r["value"])
                    elif r["status"] == "pruned":
                        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    else:
                        study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    delta = {k: v for k, v in knobs.items() if baseline.get(k) != v}
                    out.write(json.dumps({"method": a.method, "seed": a.seed, "trial": number,
                                          "config": knobs, "delta": delta, "spent": state["spent"],
                                          "t": round(time.time() - start, 3), **r}) + "\n")
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.put(err)

    lanes = [threading.Thread(target=lane, daemon=True) for _ in range(max(1, a.parallel))]
    for t in lanes:
        t.start()
    for t in lanes:
        t.join()
    out.close()
    if not errors.empty():
        raise errors.get()
    return 0


if __name__ == "__main__":
    sys.exit(main())
