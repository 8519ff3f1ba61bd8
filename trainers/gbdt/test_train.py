"""Checks of the fast GBDT trainer (standard-library unittest; a few seconds).

Run from the repository root:

    .venv/bin/python -m unittest discover -s trainers/gbdt -t trainers/gbdt -p 'test_*.py'

Protocol conformance runs the trainer as a subprocess (a few at a time, all
started in ``setUpClass``) on small synthetic data; encodings and config
checks run in-process.  The MovieLens and OBD runs need the data packages
installed by ``npm run setup``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import unittest
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN = os.path.join(HERE, "train.py")

METRIC_KEYS = {
    "ne",
    "logloss",
    "auc",
    "calibration",
    "bayes_ne",
    "bayes_logloss",
    "param_count",
    "examples_per_s",
    "wall_time_s",
    "rounds",
    "train_examples",
    "valid_examples",
    "base_ctr",
}
TIMING_KEYS = {"examples_per_s", "wall_time_s"}
BAYES_KEYS = {"bayes_ne", "bayes_logloss"}

SMALL = {"name": "synthetic", "n_train": 6000, "n_valid": 3000}
LOW: dict[str, Any] = {"seed": 3, "rounds": 12, "dataset": SMALL}
EVERY_KNOB: dict[str, Any] = {
    **LOW,
    "shrinkage": 0.2,
    "leaf_count": 9,
    "depth_limit": 4,
    "min_leaf_rows": 30,
    "l2_leaf": 1.5,
    "bin_count": 63,
    "feature_fraction": 0.7,
    "row_fraction": 0.8,
    "id_encoding": "count_target",
    "target_prior": 3.0,
    "category_limit": 50,
    "threads": 2,
}

RUNS: dict[str, dict[str, Any]] = {
    "low_a": LOW,
    "low_b": LOW,
    "low_test": {**LOW, "eval_split": "test"},
    "every_knob": EVERY_KNOB,
    "unknown_key": {**LOW, "learning_rate": 0.1},
    "over_cap": {**LOW, "memory_cap_mb": 1},
    "movielens": {"seed": 1, "rounds": 10, "dataset": {"name": "movielens", "max_train_rows": 20_000}},
    "obd": {"seed": 1, "rounds": 10, "min_leaf_rows": 50, "dataset": {"name": "obd"}},
}


@dataclass(frozen=True)
class RunResult:
    returncode: int
    stdout: str
    stderr: str
    metrics: dict[str, Any] | None

    def error(self) -> dict[str, Any]:
        lines = [ln for ln in self.stderr.splitlines() if ln.startswith("rea:error ")]
        if not lines:
            raise AssertionError(f"no rea:error line in stderr:\n{self.stderr}")
        return json.loads(lines[-1][len("rea:error ") :])

    def progress(self) -> list[dict[str, Any]]:
        prefix = "rea:progress "
        return [json.loads(ln[len(prefix) :]) for ln in self.stdout.splitlines() if ln.startswith(prefix)]


def run_trainer(config: dict[str, Any], workdir: str, name: str, metrics_dir: str | None = None) -> RunResult:
    config_path = os.path.join(workdir, f"{name}.config.json")
    metrics_path = os.path.join(metrics_dir or workdir, f"{name}.metrics.json")
    with open(config_path, "w", encoding="utf-8") as fh:
        json.dump(config, fh)
    proc = subprocess.run(
        [sys.executable, TRAIN, "--config", config_path, "--metrics", metrics_path],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=workdir,  # the trainer must not depend on the working directory
    )
    metrics = None
    if os.path.exists(metrics_path):
        with open(metrics_path, encoding="utf-8") as fh:
            metrics = json.load(fh)
    return RunResult(proc.returncode, proc.stdout, proc.stderr, metrics)


def load_train() -> ModuleType:
    """trainers/gbdt/train.py as module ``gbdt_train`` (by path: other trainers have a train.py too)."""
    if "gbdt_train" in sys.modules:
        return sys.modules["gbdt_train"]
    spec = importlib.util.spec_from_file_location("gbdt_train", TRAIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gbdt_train"] = module
    spec.loader.exec_module(module)
    return module


def run_main(raw: dict[str, Any], workdir: str) -> tuple[int, dict[str, Any] | None, str]:
    """``train.main`` in-process: exit code, metrics (or None), stderr."""
    train = load_train()
    config_path = os.path.join(workdir, "config.json")
    metrics_path = os.path.join(workdir, "metrics.json")
    if os.path.exists(metrics_path):
        os.unlink(metrics_path)
    with open(config_path, "w", encoding="utf-8") as fh:
        json.dump(raw, fh)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = train.main(["--config", config_path, "--metrics", metrics_path])
    metrics = None
    if os.path.exists(metrics_path):
        with open(metrics_path, encoding="utf-8") as fh:
            metrics = json.load(fh)
    return code, metrics, err.getvalue()


def without_timing(metrics: dict[str, Any] | None) -> dict[str, Any]:
    assert metrics is not None
    return {k: v for k, v in metrics.items() if k not in TIMING_KEYS}


class ProtocolTest(unittest.TestCase):
    results: dict[str, RunResult]
    _tmp: tempfile.TemporaryDirectory[str]

    @classmethod
    def setUpClass(cls) -> None:
        cls._tmp = tempfile.TemporaryDirectory(prefix="rea-gbdt-test-")
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {name: pool.submit(run_trainer, cfg, cls._tmp.name, name) for name, cfg in RUNS.items()}
            futures["crash"] = pool.submit(run_trainer, LOW, cls._tmp.name, "crash", "/nonexistent-rea-dir")
            cls.results = {name: fut.result() for name, fut in futures.items()}

    @classmethod
    def tearDownClass(cls) -> None:
        cls._tmp.cleanup()

    def ok(self, name: str) -> dict[str, Any]:
        result = self.results[name]
        self.assertEqual(result.returncode, 0, f"{name} failed:\n{result.stderr}")
        self.assertIsNotNone(result.metrics)
        assert result.metrics is not None
        return result.metrics

    def test_metrics_file_and_line(self) -> None:
        metrics = self.ok("low_a")
        self.assertEqual(set(metrics), METRIC_KEYS)
        self.assertEqual(metrics["rounds"], 12)
        self.assertEqual(metrics["train_examples"], 6000)
        self.assertEqual(metrics["valid_examples"], 3000)
        self.assertGreater(metrics["param_count"], 12)
        self.assertTrue(0.0 <= metrics["auc"] <= 1.0)
        self.assertLess(metrics["bayes_ne"], metrics["ne"])
        last = self.results["low_a"].stdout.strip().splitlines()[-1]
        self.assertTrue(last.startswith("rea:metrics "))
        self.assertEqual(json.loads(last[len("rea:metrics ") :]), metrics)

    def test_progress_lines_carry_the_validation_ne(self) -> None:
        progress = self.results["low_a"].progress()
        metrics = self.ok("low_a")
        self.assertEqual([p["step"] for p in progress], [2, 3, 4, 5, 6, 8, 9, 10, 11, 12])
        for p in progress:
            self.assertEqual(set(p), {"step", "steps", "loss", "examples_per_s", "metrics"})
            self.assertEqual(p["steps"], 12)
            self.assertEqual(set(p["metrics"]), {"ne"})
        self.assertEqual(progress[-1]["metrics"]["ne"], metrics["ne"])
        losses = [p["loss"] for p in progress]
        self.assertEqual(losses, sorted(losses, reverse=True))  # boosting lowers the training loss

    def test_same_config_same_metrics(self) -> None:
        self.assertEqual(without_timing(self.ok("low_a")), without_timing(self.ok("low_b")))

    def test_test_split_differs_from_valid(self) -> None:
        valid, test = self.ok("low_a"), self.ok("low_test")
        self.assertEqual(test["valid_examples"], valid["valid_examples"])
        self.assertNotEqual(test["ne"], valid["ne"])
        self.assertNotEqual(test["bayes_ne"], valid["bayes_ne"])

    def test_every_knob_trains(self) -> None:
        metrics = self.ok("every_knob")
        self.assertEqual(set(metrics), METRIC_KEYS)
        self.assertTrue(math.isfinite(metrics["ne"]))
        self.assertLess(metrics["bayes_ne"], metrics["ne"])

    def test_unknown_key_is_bad_config(self) -> None:
        result = self.results["unknown_key"]
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(result.error()["class"], "bad_config")
        self.assertIn("learning_rate", result.error()["message"])

    def test_memory_cap_is_oom(self) -> None:
        result = self.results["over_cap"]
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertEqual(result.error()["class"], "oom")
        self.assertIn("exceeds memory_cap_mb 1 MB", result.error()["message"])

    def test_unwritable_metrics_path_is_crash(self) -> None:
        result = self.results["crash"]
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.error()["class"], "crash")

    def test_real_data(self) -> None:
        for name, n_train in (("movielens", 20_000), ("obd", 7000)):
            metrics = self.ok(name)
            self.assertEqual(set(metrics), METRIC_KEYS - BAYES_KEYS, name)
            self.assertEqual(metrics["train_examples"], n_train, name)
            self.assertTrue(math.isfinite(metrics["ne"]) and 0.0 <= metrics["auc"] <= 1.0, name)
        self.assertLess(self.ok("movielens")["ne"], 1.0)


class EncodingTest(unittest.TestCase):
    _tmp: tempfile.TemporaryDirectory[str]

    @classmethod
    def setUpClass(cls) -> None:
        cls._tmp = tempfile.TemporaryDirectory(prefix="rea-gbdt-enc-")

    @classmethod
    def tearDownClass(cls) -> None:
        cls._tmp.cleanup()

    def metrics(self, raw: dict[str, Any]) -> dict[str, Any]:
        code, metrics, err = run_main(raw, self._tmp.name)
        self.assertEqual(code, 0, err)
        return without_timing(metrics)

    def test_target_prior_matters_only_with_target_encoding(self) -> None:
        self.assertEqual(self.metrics({**LOW, "target_prior": 500.0}), self.metrics(LOW))  # count encoding
        target = {**LOW, "id_encoding": "target"}
        self.assertNotEqual(self.metrics({**target, "target_prior": 500.0})["ne"], self.metrics(target)["ne"])

    def test_id_encodings_differ(self) -> None:
        encodings = ("categorical", "count", "target")
        ne = {enc: self.metrics({**LOW, "id_encoding": enc})["ne"] for enc in encodings}
        self.assertEqual(len(set(ne.values())), 3, ne)

    def test_features_per_encoding(self) -> None:
        import numpy as np

        import fastdata

        train = load_train()
        rng = np.random.default_rng(0)
        n = 400
        # field 0: 200 values (an id); field 1: 3 values (a category)
        x = np.column_stack([rng.integers(0, 200, n), rng.integers(0, 3, n)]).astype(np.int32)
        y = (rng.random(n) < 0.3).astype(np.float64)
        split = fastdata.Split(features=x, labels=y, true_prob=None)
        data = fastdata.Data(
            name="synthetic", feature_names=("user_id", "device"), groups=("user", "context"),
            vocab=(np.arange(200), np.arange(3)),
            train=split,
            valid=split,
            test=None,
            source="test",
            cache="off",
        )
        names = {
            enc: train.encode(train.parse_config({"id_encoding": enc}), data, split, 0.3).names
            for enc in ("categorical", "count", "target", "count_target")
        }
        self.assertEqual(names["categorical"], ["user_id", "device"])
        self.assertEqual(names["count"], ["user_id_count", "device"])
        self.assertEqual(names["target"], ["user_id_ctr", "device"])
        self.assertEqual(names["count_target"], ["user_id_count", "user_id_ctr", "device"])
        cfg = train.parse_config({"id_encoding": "count_target", "target_prior": 2.0})
        feats = train.encode(cfg, data, split, 0.3)
        self.assertEqual(feats.categorical, [2])
        counts = np.bincount(x[:, 0], minlength=200)
        np.testing.assert_array_equal(feats.train[:, 0], counts[x[:, 0]])
        # evaluated rows: the rate over all training rows; training rows: out of fold (never their own label)
        clicks = np.bincount(x[:, 0], weights=y, minlength=200)
        np.testing.assert_allclose(feats.evaluated[:, 1], ((clicks + 2.0 * 0.3) / (counts + 2.0))[x[:, 0]])
        folds = train.fold_of_rows(n, 0)
        i = 0
        same = (x[:, 0] == x[i, 0]) & (folds != folds[i])
        expected = (y[same].sum() + 2.0 * 0.3) / (same.sum() + 2.0)
        self.assertAlmostEqual(feats.train[i, 1], expected)
        # more distinct values than category_limit: an id; at most: a category
        limit = train.encode(train.parse_config({"category_limit": 500}), data, split, 0.3)
        self.assertEqual(limit.names, ["user_id", "device"])

    def test_bad_values_name_the_key(self) -> None:
        cases: list[tuple[dict[str, Any], str, str]] = [
            ({"shrinkage": 0}, "shrinkage", "> 0"),
            ({"shrinkage": 1.5}, "shrinkage", "<= 1"),
            ({"rounds": 0}, "rounds", ">= 1"),
            ({"leaf_count": 1}, "leaf_count", ">= 2"),
            ({"min_leaf_rows": 2.5}, "min_leaf_rows", "an integer"),
            ({"feature_fraction": 0}, "feature_fraction", "> 0"),
            ({"id_encoding": "hash"}, "id_encoding", '"count_target"'),
            ({"threads": 0}, "threads", ">= 1"),
            ({"eval_split": "train"}, "eval_split", '"test"'),
            ({"steps": 10}, "'steps'", "allowed keys"),
            ({"dataset": {"name": "obd", "difficulty": "hard"}}, "'difficulty'", "allowed keys"),
        ]
        for raw, key, allowed in cases:
            code, metrics, err = run_main(raw, self._tmp.name)
            self.assertEqual(code, 2, raw)
            lines = [ln for ln in err.splitlines() if ln.startswith("rea:error ")]
            error = json.loads(lines[-1][len("rea:error ") :])
            self.assertEqual(error["class"], "bad_config", raw)
            self.assertIn(key, error["message"], raw)
            self.assertIn(allowed, error["message"], raw)
            self.assertIsNone(metrics)

    def test_memory_estimate(self) -> None:
        train = load_train()
        self.assertLess(train.estimate_memory_mb(train.parse_config({})), 2048)
        huge = train.parse_config({"leaf_count": 4096, "bin_count": 4096, "dataset": {"n_train": 5_000_000}})
        self.assertGreater(train.estimate_memory_mb(huge), 2048)


if __name__ == "__main__":
    unittest.main()
