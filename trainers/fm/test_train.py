"""Checks of the fast FM trainer (standard-library unittest; a few seconds).

Run from the repository root:

    .venv/bin/python -m unittest discover -s trainers/fm -t trainers/fm -p 'test_*.py'

Protocol conformance runs the trainer as a subprocess (a few at a time, all
started in ``setUpClass``) on small synthetic data; the model and the config
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
    "kilo_examples",
    "passes",
    "updates",
    "train_examples",
    "valid_examples",
    "base_ctr",
}
TIMING_KEYS = {"examples_per_s", "wall_time_s"}
BAYES_KEYS = {"bayes_ne", "bayes_logloss"}

SMALL = {"name": "synthetic", "n_train": 6000, "n_valid": 3000}
LOW: dict[str, Any] = {"seed": 3, "kilo_examples": 12, "minibatch": 128, "dataset": SMALL}
FM: dict[str, Any] = {
    **LOW,
    "model_form": "fm",
    "latent_rank": 4,
    "init_scale": 0.05,
    "update_rule": "adagrad",
    "step_size": 0.05,
}
EVERY_KNOB: dict[str, Any] = {
    **LOW,
    "model_form": "fwfm",
    "latent_rank": 3,
    "init_scale": 0.1,
    "update_rule": "adam",
    "step_size": 0.01,
    "step_decay": "linear",
    "l2_penalty": 0.01,
    "latent_l2": 0.001,
    "hash_bits": 12,
    "min_count": 3,
    "reshuffle": False,
    "minibatch": 100,
    "shuffle_stream": 1,
    "init_stream": 2,
    "progress_lines": 4,
    "eval_chunk": 333,
}

RUNS: dict[str, dict[str, Any]] = {
    "low_a": LOW,
    "low_b": LOW,
    "low_test": {**LOW, "eval_split": "test"},
    "fm": FM,
    "every_knob": EVERY_KNOB,
    "inv_sqrt_sgd": {**FM, "update_rule": "sgd", "step_size": 1.0, "step_decay": "inv_sqrt"},
    "unknown_key": {**LOW, "learning_rate": 0.1},
    "explode": {**FM, "update_rule": "sgd", "step_size": 80.0, "init_scale": 1.0},
    "over_cap": {**LOW, "memory_cap_mb": 1},
    "movielens": {"seed": 1, "kilo_examples": 20, "minibatch": 512, "dataset": {"name": "movielens"}},
    "obd": {"seed": 1, "kilo_examples": 10, "update_rule": "adagrad", "dataset": {"name": "obd"}},
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
    """trainers/fm/train.py as module ``fm_train`` (by path: other trainers have a train.py too)."""
    if "fm_train" in sys.modules:
        return sys.modules["fm_train"]
    spec = importlib.util.spec_from_file_location("fm_train", TRAIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fm_train"] = module
    spec.loader.exec_module(module)
    return module


def run_main(raw: dict[str, Any], workdir: str) -> tuple[int, dict[str, Any] | None, str, str]:
    """``train.main`` in-process: exit code, metrics (or None), stdout, stderr."""
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
    return code, metrics, out.getvalue(), err.getvalue()


def error_of(stderr: str) -> dict[str, Any]:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("rea:error ")]
    return json.loads(lines[-1][len("rea:error ") :]) if lines else {}


def without_timing(metrics: dict[str, Any] | None) -> dict[str, Any]:
    assert metrics is not None
    return {k: v for k, v in metrics.items() if k not in TIMING_KEYS}


class ProtocolTest(unittest.TestCase):
    results: dict[str, RunResult]
    _tmp: tempfile.TemporaryDirectory[str]

    @classmethod
    def setUpClass(cls) -> None:
        cls._tmp = tempfile.TemporaryDirectory(prefix="rea-fm-test-")
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
        self.assertEqual(metrics["kilo_examples"], 12)
        self.assertEqual(metrics["passes"], 2.0)
        self.assertEqual(metrics["updates"], 2 * math.ceil(6000 / 128))
        self.assertEqual(metrics["train_examples"], 6000)
        self.assertEqual(metrics["valid_examples"], 3000)
        self.assertEqual(metrics["param_count"], 2**18 + 1)
        self.assertTrue(0.0 <= metrics["auc"] <= 1.0)
        self.assertLess(metrics["bayes_ne"], metrics["ne"])
        last = self.results["low_a"].stdout.strip().splitlines()[-1]
        self.assertTrue(last.startswith("rea:metrics "))
        self.assertEqual(json.loads(last[len("rea:metrics ") :]), metrics)

    def test_progress_lines_carry_the_validation_ne(self) -> None:
        progress = self.results["low_a"].progress()
        metrics = self.ok("low_a")
        self.assertEqual(len(progress), 10)
        steps = [p["step"] for p in progress]
        self.assertEqual(steps, sorted(set(steps)))
        self.assertEqual(steps[-1], metrics["updates"])
        for p in progress:
            self.assertEqual(set(p), {"step", "steps", "loss", "examples_per_s", "metrics"})
            self.assertEqual(p["steps"], metrics["updates"])
            self.assertEqual(set(p["metrics"]), {"ne"})
            self.assertTrue(math.isfinite(p["loss"]) and p["examples_per_s"] >= 0)
        self.assertEqual(progress[-1]["metrics"]["ne"], metrics["ne"])  # the last point is the result
        self.assertEqual(len(self.results["every_knob"].progress()), 4)  # progress_lines

    def test_same_config_same_metrics(self) -> None:
        self.assertEqual(without_timing(self.ok("low_a")), without_timing(self.ok("low_b")))

    def test_test_split_differs_from_valid(self) -> None:
        valid, test = self.ok("low_a"), self.ok("low_test")
        self.assertEqual(test["valid_examples"], valid["valid_examples"])
        self.assertEqual(test["train_examples"], valid["train_examples"])
        self.assertNotEqual(test["ne"], valid["ne"])
        self.assertNotEqual(test["bayes_ne"], valid["bayes_ne"])

    def test_every_form_and_rule_trains(self) -> None:
        for name in ("fm", "every_knob", "inv_sqrt_sgd"):
            metrics = self.ok(name)
            self.assertEqual(set(metrics), METRIC_KEYS, name)
            self.assertTrue(math.isfinite(metrics["ne"]), name)
            self.assertLess(metrics["bayes_ne"], metrics["ne"], name)
        self.assertEqual(self.ok("every_knob")["param_count"], 2**12 * 4 + 1 + 21)  # w, v, r (7 fields)

    def test_unknown_key_is_bad_config(self) -> None:
        result = self.results["unknown_key"]
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(result.error()["class"], "bad_config")
        self.assertIn("learning_rate", result.error()["message"])
        self.assertIsNone(result.metrics)

    def test_divergence_is_nan(self) -> None:
        result = self.results["explode"]
        self.assertEqual(result.returncode, 4, result.stderr)
        self.assertEqual(result.error()["class"], "nan")
        self.assertIsNone(result.metrics)

    def test_memory_cap_is_oom(self) -> None:
        result = self.results["over_cap"]
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertEqual(result.error()["class"], "oom")
        self.assertIn("exceeds memory_cap_mb 1 MB", result.error()["message"])

    def test_unwritable_metrics_path_is_crash(self) -> None:
        result = self.results["crash"]
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.error()["class"], "crash")
        self.assertIn("nonexistent-rea-dir", result.error()["message"])

    def test_real_data(self) -> None:
        for name, n_train in (("movielens", 80_000), ("obd", 7000)):
            metrics = self.ok(name)
            self.assertEqual(set(metrics), METRIC_KEYS - BAYES_KEYS, name)
            self.assertEqual(metrics["train_examples"], n_train, name)
            self.assertTrue(math.isfinite(metrics["ne"]) and 0.0 <= metrics["auc"] <= 1.0, name)
        self.assertLess(self.ok("movielens")["ne"], 1.0)


class ModelTest(unittest.TestCase):
    """In-process: knob semantics, no-op knobs, config errors, helpers."""

    _tmp: tempfile.TemporaryDirectory[str]

    @classmethod
    def setUpClass(cls) -> None:
        cls._tmp = tempfile.TemporaryDirectory(prefix="rea-fm-model-")

    @classmethod
    def tearDownClass(cls) -> None:
        cls._tmp.cleanup()

    def metrics(self, raw: dict[str, Any]) -> dict[str, Any]:
        code, metrics, _out, err = run_main(raw, self._tmp.name)
        self.assertEqual(code, 0, err)
        return without_timing(metrics)

    def test_bookkeeping_knobs_are_bit_identical(self) -> None:
        for base in (FM, {**FM, "model_form": "fwfm"}, LOW):
            reference = self.metrics(base)
            changes = ({"progress_lines": 3}, {"eval_chunk": 1}, {"eval_chunk": 7}, {"eval_chunk": 100_000})
            for change in changes:
                self.assertEqual(self.metrics({**base, **change}), reference, change)

    def test_stream_knobs_only_rerandomize(self) -> None:
        reference = self.metrics(FM)
        order = self.metrics({**FM, "shuffle_stream": 7})
        init = self.metrics({**FM, "init_stream": 7})
        for other in (order, init):
            self.assertNotEqual(other["ne"], reference["ne"])
            self.assertLess(abs(other["ne"] - reference["ne"]), 0.02)  # noise, not an effect
        # a stream offset is another random stream, not a function of the seed
        self.assertNotEqual(self.metrics({**FM, "seed": 4})["ne"], reference["ne"])
        # the linear model has no factors: init_stream cannot change it
        self.assertEqual(self.metrics({**LOW, "init_stream": 7}), self.metrics(LOW))

    def test_latent_knobs_do_nothing_for_the_linear_model(self) -> None:
        reference = self.metrics(LOW)
        for change in ({"latent_rank": 16}, {"init_scale": 0.5}, {"latent_l2": 0.1}):
            self.assertEqual(self.metrics({**LOW, **change}), reference, change)
            self.assertNotEqual(self.metrics({**FM, **change})["ne"], self.metrics(FM)["ne"], change)

    def test_zero_init_fm_is_the_linear_model(self) -> None:
        # v = 0 is a saddle point: the factors get no gradient and the FM stays linear
        fm = self.metrics({**FM, "init_scale": 0.0})
        linear = self.metrics({**FM, "model_form": "linear"})
        self.assertAlmostEqual(fm["ne"], linear["ne"], places=12)

    def test_forward_matches_the_definition(self) -> None:
        import numpy as np

        train = load_train()
        rng = np.random.default_rng(0)
        for form in ("fm", "fwfm"):
            cfg = train.parse_config({**FM, "model_form": form})
            enc = train.Encoded(
                train=np.zeros((5, 1), dtype=np.int64), evaluated=np.zeros((5, 1), dtype=np.int64),
                buckets=np.arange(40, dtype=np.uint64),
            )
            model = train.FM(cfg, enc, n_fields=5, base_ctr=0.2)
            model.w[:] = rng.standard_normal(40)
            if model.r is not None:
                r = rng.standard_normal((5, 5))
                model.r[:] = (r + r.T) * (1 - np.eye(5))
            cols = rng.integers(0, 40, size=(5, 9))
            expected = []
            for b in range(9):
                rows = cols[:, b]
                z = model.bias + model.w[rows].sum()
                for f in range(5):
                    for g in range(f + 1, 5):
                        weight = model.r[f, g] if model.r is not None else 1.0
                        z += weight * float(model.v[rows[f]] @ model.v[rows[g]])
                expected.append(z)
            np.testing.assert_allclose(model.forward(cols)[0], expected, rtol=1e-12, atol=1e-12)

    def test_gradient_matches_finite_differences(self) -> None:
        import numpy as np

        train = load_train()
        for form in ("fm", "fwfm"):
            cfg = train.parse_config({**FM, "model_form": form, "update_rule": "sgd", "init_scale": 0.3})
            enc = train.Encoded(
                train=np.zeros((4, 1), dtype=np.int64), evaluated=np.zeros((4, 1), dtype=np.int64),
                buckets=np.arange(12, dtype=np.uint64),
            )
            rng = np.random.default_rng(1)
            cols = rng.integers(0, 12, size=(4, 6))
            labels = (rng.random(6) < 0.5).astype(np.float64)

            def loss_of(model: Any) -> float:
                z = model.forward(cols)[0]
                return float(np.mean(np.logaddexp(0.0, z) - labels * z))

            model = train.FM(cfg, enc, n_fields=4, base_ctr=0.3)
            before = model.v.copy()
            row, col = int(cols[0, 0]), 1
            eps = 1e-6
            model.v[row, col] += eps
            up = loss_of(model)
            model.v[row, col] -= 2 * eps
            down = loss_of(model)
            model.v[row, col] += eps
            numeric = (up - down) / (2 * eps)
            model.step(cols, labels, lr=1.0)  # sgd: v -= 1.0 * grad
            self.assertAlmostEqual(before[row, col] - model.v[row, col], numeric, places=6)

    def test_counter_normal_is_a_function_of_bucket_seed_and_stream(self) -> None:
        import numpy as np

        train = load_train()
        buckets = np.arange(20_000, dtype=np.uint64) * np.uint64(7919)
        a = train.counter_normal(buckets, 4, seed=1, stream=0)
        self.assertAlmostEqual(float(a.mean()), 0.0, delta=0.02)
        self.assertAlmostEqual(float(a.std()), 1.0, delta=0.02)
        np.testing.assert_array_equal(train.counter_normal(buckets[::-1], 4, 1, 0), a[::-1])
        self.assertFalse(np.array_equal(train.counter_normal(buckets, 4, 1, 1), a))
        self.assertFalse(np.array_equal(train.counter_normal(buckets, 4, 2, 0), a))

    def test_min_count_maps_rare_values_to_one_token(self) -> None:
        import numpy as np

        import fastdata

        train = load_train()
        split = fastdata.Split(
            features=np.array([[0], [0], [0], [1], [2], [2]], dtype=np.int32),
            labels=np.zeros(6),
            true_prob=None,
        )
        evaluated = fastdata.Split(
            features=np.array([[3], [0]], dtype=np.int32), labels=np.zeros(2), true_prob=None
        )
        data = fastdata.Data(
            name="synthetic", feature_names=("x",), groups=("user",), vocab=(np.array([10, 11, 12, 13]),),
            train=split, valid=evaluated, test=None, source="test", cache="off",
        )
        plain = train.encode(train.parse_config({}), data, evaluated)
        self.assertEqual(len(set(plain.train[0].tolist())), 3)
        rare = train.encode(train.parse_config({"min_count": 3}), data, evaluated)
        self.assertEqual(rare.train[0].tolist()[3], rare.train[0].tolist()[4])  # 11 and 12: rare
        self.assertNotEqual(rare.train[0].tolist()[0], rare.train[0].tolist()[3])  # 10: seen 3 times
        self.assertEqual(rare.evaluated[0].tolist()[0], rare.train[0].tolist()[3])  # 13: unseen = rare

    def test_minibatch_sizes(self) -> None:
        train = load_train()
        self.assertEqual(train._minibatch_sizes(10, 4, 25), [4, 4, 2, 4, 4, 2, 4, 1])
        self.assertEqual(sum(train._minibatch_sizes(6000, 128, 12_000)), 12_000)

    def test_decay(self) -> None:
        train = load_train()
        self.assertEqual([train.decay_factor("constant", u, 10, 5) for u in (1, 10)], [1.0, 1.0])
        self.assertEqual(train.decay_factor("linear", 1, 10, 5), 1.0)
        self.assertAlmostEqual(train.decay_factor("linear", 10, 10, 5), 0.1)
        self.assertAlmostEqual(train.decay_factor("inv_sqrt", 6, 10, 5), 1 / math.sqrt(2))

    def test_bad_values_name_the_key(self) -> None:
        cases: list[tuple[dict[str, Any], str, str]] = [
            ({"step_size": 0}, "step_size", "> 0"),
            ({"step_size": "fast"}, "step_size", "a number"),
            ({"kilo_examples": 0}, "kilo_examples", ">= 1"),
            ({"minibatch": 2.5}, "minibatch", "an integer"),
            ({"model_form": "ffm"}, "model_form", '"fwfm"'),
            ({"update_rule": "ftrl"}, "update_rule", '"adam"'),
            ({"step_decay": "cosine"}, "step_decay", '"inv_sqrt"'),
            ({"latent_rank": 0}, "latent_rank", ">= 1"),
            ({"hash_bits": 31}, "hash_bits", "<= 30"),
            ({"reshuffle": 1}, "reshuffle", "true or false"),
            ({"l2_penalty": -1}, "l2_penalty", ">= 0"),
            ({"shuffle_stream": -1}, "shuffle_stream", ">= 0"),
            ({"eval_chunk": 0}, "eval_chunk", ">= 1"),
            ({"progress_lines": 0}, "progress_lines", ">= 1"),
            ({"eval_split": "train"}, "eval_split", '"test"'),
            ({"lr": 0.1}, "'lr'", "allowed keys"),
            ({"dataset": {"name": "criteo"}}, "dataset.name", '"movielens"'),
            ({"dataset": {"name": "movielens", "n_train": 5000}}, "'n_train'", "allowed keys"),
            ({"dataset": {"n_train": 10}}, "dataset.n_train", ">= 1000"),
            ({"dataset": []}, "dataset", "a JSON object"),
        ]
        for raw, key, allowed in cases:
            code, metrics, _out, err = run_main(raw, self._tmp.name)
            self.assertEqual(code, 2, raw)
            error = error_of(err)
            self.assertEqual(error["class"], "bad_config", raw)
            self.assertIn(key, error["message"], raw)
            self.assertIn(allowed, error["message"], raw)
            self.assertIsNone(metrics)

    def test_memory_estimate(self) -> None:
        train = load_train()
        small = train.parse_config({})
        self.assertLess(train.estimate_memory_mb(small), small.memory_cap_mb)
        huge = train.parse_config(
            {"model_form": "fm", "latent_rank": 256, "update_rule": "adam", "dataset": {"n_train": 5_000_000}}
        )
        self.assertGreater(train.estimate_memory_mb(huge), huge.memory_cap_mb)


if __name__ == "__main__":
    unittest.main()
