#!/usr/bin/env python3
"""Measures a fast example task's landscape: the numbers docs/trainers.md reports.

Run from the repository root with the project's Python:

    .venv/bin/python trainers/common/landscape.py search models/fm-synthetic.json 100 --seed 11
    .venv/bin/python trainers/common/landscape.py seeds models/fm-synthetic.json 10 --split test
    .venv/bin/python trainers/common/landscape.py seeds models/fm-planted.json 40 \
        --delta '{"step_size": 0.064}'
    .venv/bin/python trainers/common/landscape.py time models/fm-synthetic.json 5

* ``search``: the baseline and N random configs (each knob drawn independently: uniform for
  int / float, log-uniform for logfloat, uniform over choices) trained at the spec's low and
  high fidelity with trainer seed 0, on the validation split; prints the baseline NE, the
  best NE and its gain, how many configs beat the baseline at high fidelity, failures, and
  the Spearman rank correlation of low- and high-fidelity NE over the configs that trained
  at both.  ``--out FILE`` keeps one JSON line per config.
* ``seeds``: the baseline (plus ``--delta``) at high fidelity over trainer seeds 0..K-1;
  prints mean and standard deviation (n - 1) of NE, and the Bayes NE when there is one.
* ``time``: wall and CPU (user + system) seconds of whole trainer processes (interpreter
  start and data loading included, the data cache warm) for the baseline (plus ``--delta``)
  at low and high fidelity; the median of R runs.  On a busy machine the CPU time is the
  better measure of what a run costs.

``search`` and ``seeds`` run the trainer in this process (same code path as a subprocess;
``main`` returns the exit code) to save interpreter starts.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from types import ModuleType
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_trainer(spec: dict[str, Any]) -> tuple[str, ModuleType]:
    path = os.path.join(ROOT, spec["trainer"]["argv"][1])
    name = "landscape_" + os.path.basename(os.path.dirname(path))
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return path, module


class Trainer:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.path, self.module = load_trainer(spec)
        self.tmp = tempfile.mkdtemp(prefix="rea-landscape-")

    def config(self, knobs: dict[str, Any], fidelity: int, seed: int, extra: dict[str, Any] | None = None):
        return {**self.spec.get("fixed", {}), **knobs, self.spec["fidelity"]["knob"]: fidelity, "seed": seed,
                **(extra or {})}

    def run(self, config: dict[str, Any]) -> dict[str, Any]:
        cfg_path = os.path.join(self.tmp, "config.json")
        metrics_path = os.path.join(self.tmp, "metrics.json")
        with open(cfg_path, "w", encoding="utf-8") as fh:
            json.dump(config, fh)
        with contextlib.suppress(FileNotFoundError):
            os.remove(metrics_path)
        out, err = io.StringIO(), io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = self.module.main(["--config", cfg_path, "--metrics", metrics_path])
        seconds = time.perf_counter() - start
        if code != 0:
            line = next((ln for ln in err.getvalue().splitlines() if ln.startswith("rea:error ")), "")
            failure = json.loads(line[len("rea:error ") :])["class"] if line else "crash"
            return {"failure": failure, "seconds": seconds}
        with open(metrics_path, encoding="utf-8") as fh:
            metrics = json.load(fh)
        return {**metrics, "seconds": seconds}


def baseline(spec: dict[str, Any]) -> dict[str, Any]:
    return {name: knob["baseline"] for name, knob in spec["knobs"].items()}


def sample(rng: random.Random, knob: dict[str, Any]) -> Any:
    kind = knob["type"]
    if kind == "int":
        return rng.randint(knob["min"], knob["max"])
    if kind == "float":
        return rng.uniform(knob["min"], knob["max"])
    if kind == "logfloat":
        return math.exp(rng.uniform(math.log(knob["min"]), math.log(knob["max"])))
    if kind == "categorical":
        return rng.choice(knob["choices"])
    if kind == "bool":
        return rng.random() < 0.5
    raise SystemExit(f"unknown knob type {kind!r}")


def spearman(a: list[float], b: list[float]) -> float:
    def ranks(x: list[float]) -> list[float]:
        order = sorted(range(len(x)), key=lambda i: x[i])
        r = [0.0] * len(x)
        i = 0
        while i < len(order):  # ties share the mean rank
            j = i
            while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2.0
            i = j + 1
        return r

    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))


def cmd_search(args: argparse.Namespace, spec: dict[str, Any]) -> None:
    trainer = Trainer(spec)
    rng = random.Random(args.seed)
    low, high = spec["fidelity"]["low"], spec["fidelity"]["high"]
    configs = [baseline(spec)] + [
        {name: sample(rng, knob) for name, knob in spec["knobs"].items()} for _ in range(args.n)
    ]
    rows = []
    out = open(args.out, "w", encoding="utf-8") if args.out else None
    for i, knobs in enumerate(configs):
        row = {"i": i, "config": knobs}
        for fidelity in (low, high):
            row[str(fidelity)] = trainer.run(trainer.config(knobs, fidelity, seed=0))
        rows.append(row)
        if out:
            out.write(json.dumps(row) + "\n")
            out.flush()
        ne = [row[str(f)].get("ne", row[str(f)].get("failure")) for f in (low, high)]
        print(f"{i:4d} low {ne[0]} high {ne[1]}", file=sys.stderr, flush=True)
    if out:
        out.close()
    base = rows[0][str(high)]["ne"]
    trained = [r for r in rows[1:] if "ne" in r[str(high)]]
    both = [r for r in trained if "ne" in r[str(low)]]
    best = min(trained, key=lambda r: r[str(high)]["ne"])
    summary = {
        "spec": spec["name"],
        "configs": args.n,
        "baseline_ne_high": base,
        "baseline_ne_low": rows[0][str(low)].get("ne"),
        "best_ne_high": best[str(high)]["ne"],
        "best_gain_pct": 100.0 * (base - best[str(high)]["ne"]) / base,
        "beat_baseline": sum(1 for r in trained if r[str(high)]["ne"] < base),
        "failed_high": args.n - len(trained),
        "failures": sorted({r[str(high)]["failure"] for r in rows[1:] if "failure" in r[str(high)]}),
        "spearman_low_high": spearman([r[str(low)]["ne"] for r in both], [r[str(high)]["ne"] for r in both]),
        "spearman_n": len(both),
        "in_process_seconds_high_median": statistics.median(r[str(high)]["seconds"] for r in rows[1:]),
        "in_process_seconds_low_median": statistics.median(r[str(low)]["seconds"] for r in rows[1:]),
        "best_config": best["config"],
    }
    top = sorted(trained, key=lambda r: r[str(high)]["ne"])[:5]
    summary["top5"] = [
        {"ne_high": r[str(high)]["ne"], "ne_low": r[str(low)].get("ne"), "config": r["config"]} for r in top
    ]
    print(json.dumps(summary, indent=1))


def cmd_seeds(args: argparse.Namespace, spec: dict[str, Any]) -> None:
    trainer = Trainer(spec)
    knobs = {**baseline(spec), **json.loads(args.delta)}
    fidelity = args.fidelity or spec["fidelity"]["high"]
    extra = {"eval_split": args.split}
    results = [trainer.run(trainer.config(knobs, fidelity, seed, extra)) for seed in range(args.k)]
    ne = [r["ne"] for r in results]
    summary = {
        "spec": spec["name"],
        "delta": json.loads(args.delta),
        "split": args.split,
        "fidelity": fidelity,
        "seeds": args.k,
        "ne_mean": statistics.fmean(ne),
        "ne_sd": statistics.stdev(ne) if len(ne) > 1 else 0.0,
        "ne": ne,
    }
    if "bayes_ne" in results[0]:
        summary["bayes_ne"] = results[0]["bayes_ne"]
    print(json.dumps(summary, indent=1))


def cmd_time(args: argparse.Namespace, spec: dict[str, Any]) -> None:
    path = os.path.join(ROOT, spec["trainer"]["argv"][1])
    knobs = {**baseline(spec), **json.loads(args.delta)}
    tmp = tempfile.mkdtemp(prefix="rea-landscape-time-")
    summary: dict[str, Any] = {"spec": spec["name"], "delta": json.loads(args.delta)}
    for label in ("low", "high"):
        fidelity = {spec["fidelity"]["knob"]: spec["fidelity"][label]}
        config = {**spec.get("fixed", {}), **knobs, **fidelity, "seed": 0}
        cfg_path = os.path.join(tmp, "config.json")
        with open(cfg_path, "w", encoding="utf-8") as fh:
            json.dump(config, fh)
        walls, cpus = [], []
        for _ in range(args.r + 1):  # the first run warms the data cache
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, path, "--config", cfg_path, "--metrics", os.path.join(tmp, "m.json")],
                check=True,
                stdout=subprocess.DEVNULL,
                cwd=tmp,
            )
            walls.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        summary[f"{label}_wall_s_median"] = statistics.median(walls[1:])
        summary[f"{label}_cpu_s_median"] = statistics.median(cpus[1:])
        summary[f"{label}_wall_s_all"] = [round(w, 3) for w in walls[1:]]
    print(json.dumps(summary, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("search")
    p.add_argument("spec")
    p.add_argument("n", type=int)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--out")
    p = sub.add_parser("seeds")
    p.add_argument("spec")
    p.add_argument("k", type=int)
    p.add_argument("--delta", default="{}")
    p.add_argument("--split", default="valid", choices=("valid", "test"))
    p.add_argument("--fidelity", type=int, default=0)
    p = sub.add_parser("time")
    p.add_argument("spec")
    p.add_argument("r", type=int)
    p.add_argument("--delta", default="{}")
    args = parser.parse_args()
    with open(args.spec, encoding="utf-8") as fh:
        spec = json.load(fh)
    {"search": cmd_search, "seeds": cmd_seeds, "time": cmd_time}[args.cmd](args, spec)


if __name__ == "__main__":
    main()
