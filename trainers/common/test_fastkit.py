"""Checks of the fast trainers' shared code: config values, progress points, metrics, data cache.

Run from the repository root:

    .venv/bin/python -m unittest discover -s trainers/common -t trainers/common -p 'test_*.py'
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import fastkit  # noqa: E402


class ConfigTest(unittest.TestCase):
    def test_spec_messages(self) -> None:
        specs = {
            "a": fastkit.Spec("int", 1, lo=0, hi=10),
            "b": fastkit.Spec("float", 0.5, lo=0, hi=1, lo_exclusive=True),
            "c": fastkit.Spec("choice", "x", choices=("x", "y")),
            "d": fastkit.Spec("bool", True),
        }
        self.assertEqual(fastkit.check_object({}, specs, "config"), {"a": 1, "b": 0.5, "c": "x", "d": True})
        self.assertEqual(fastkit.check_object({"b": 1}, specs, "config")["b"], 1.0)
        cases = {
            "a: expected an integer >= 0 and <= 10, got 11": {"a": 11},
            "a: expected an integer >= 0 and <= 10, got true": {"a": True},
            "b: expected a number > 0 and <= 1, got 0": {"b": 0},
            'c: expected one of "x", "y", got "z"': {"c": "z"},
            "d: expected true or false, got 0": {"d": 0},
            "config: unknown key 'e'; allowed keys: a, b, c, d": {"e": 1},
        }
        for message, raw in cases.items():
            with self.assertRaises(fastkit.BadConfig) as ctx:
                fastkit.check_object(raw, specs, "config")
            self.assertEqual(str(ctx.exception), message)

    def test_dataset_keys_depend_on_the_name(self) -> None:
        ds = fastkit.parse_dataset({"name": "movielens", "max_train_rows": 500})
        self.assertEqual(ds.as_key(), {"name": "movielens", "data_seed": 1234, "max_train_rows": 500})
        self.assertEqual(ds.rows(), (500, 10_001))
        with self.assertRaisesRegex(fastkit.BadConfig, "dataset: unknown key 'n_valid'"):
            fastkit.parse_dataset({"name": "obd", "n_valid": 5})
        with self.assertRaisesRegex(fastkit.BadConfig, "dataset.n_valid: expected an integer >= 1000"):
            fastkit.parse_dataset({"n_valid": 5})

    def test_progress_points(self) -> None:
        self.assertEqual(fastkit.progress_points(100, 10), list(range(10, 101, 10)))
        self.assertEqual(fastkit.progress_points(3, 10), [1, 2, 3])
        self.assertEqual(fastkit.progress_points(7, 1), [7])
        self.assertEqual(fastkit.progress_points(12, 4), [3, 6, 9, 12])

    def test_explosion_is_nan(self) -> None:
        fastkit.check_explosion(0.5, 0.4, 10, "x")
        with self.assertRaisesRegex(fastkit.LossDiverged, "exceeds max"):
            fastkit.check_explosion(11.0, 0.4, 10, "x")
        with self.assertRaisesRegex(fastkit.LossDiverged, "became nan"):
            fastkit.check_explosion(float("nan"), 0.4, 10, "x")


class MetricsTest(unittest.TestCase):
    def test_auc_with_ties_matches_pair_counting(self) -> None:
        import numpy as np

        import fastdata

        rng = np.random.default_rng(0)
        labels = (rng.random(300) < 0.3).astype(np.float64)
        scores = rng.integers(0, 10, 300).astype(np.float64)  # many ties
        pos, neg = scores[labels > 0.5], scores[labels < 0.5]
        pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
        self.assertAlmostEqual(fastdata.auc(labels, scores), pairs / (len(pos) * len(neg)))

    def test_evaluate(self) -> None:
        import numpy as np

        import fastdata

        labels = np.array([0.0, 1.0, 0.0, 0.0])
        split = fastdata.Split(features=np.zeros((4, 1), dtype=np.int32), labels=labels, true_prob=None)
        base = 0.25
        logit = np.log(base / (1 - base))
        scores = fastdata.evaluate(np.full(4, logit), split, base)
        self.assertAlmostEqual(scores["ne"], 1.0)  # the base-rate predictor has NE 1
        self.assertAlmostEqual(scores["calibration"], 1.0)
        self.assertEqual(scores["auc"], 0.5)
        self.assertNotIn("bayes_ne", scores)
        with self.assertRaises(fastkit.LossDiverged):
            fastdata.evaluate(np.array([0.0, np.nan, 0.0, 0.0]), split, base)


class CacheTest(unittest.TestCase):
    """The data cache: keyed by the dataset parameters, atomic, rebuilt when unreadable."""

    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="rea-cache-test-")
        self.env = mock.patch.dict(os.environ, {"REA_DATA_CACHE": self._tmp.name})
        self.env.start()

    def tearDown(self) -> None:
        self.env.stop()
        self._tmp.cleanup()

    def files(self) -> list[str]:
        return sorted(f for f in os.listdir(self._tmp.name) if f.endswith(".npz"))

    def test_hit_miss_and_key(self) -> None:
        import numpy as np

        import fastdata

        ds = fastkit.parse_dataset({"n_train": 2000, "n_valid": 1000})
        first = fastdata.load(ds, need_test=False)
        self.assertEqual(first.cache, "miss")
        second = fastdata.load(ds, need_test=False)
        self.assertEqual(second.cache, "hit")
        for a, b in ((first.train, second.train), (first.valid, second.valid)):
            np.testing.assert_array_equal(a.features, b.features)
            np.testing.assert_array_equal(a.labels, b.labels)
            np.testing.assert_array_equal(a.true_prob, b.true_prob)
        for va, vb in zip(first.vocab, second.vocab):
            np.testing.assert_array_equal(va, vb)
        self.assertEqual(len(self.files()), 1)
        fastdata.load(fastkit.parse_dataset({"n_train": 2000, "n_valid": 1000, "data_seed": 1}), False)
        with_test = fastdata.load(ds, need_test=True)
        self.assertEqual(with_test.cache, "miss")
        assert with_test.test is not None
        np.testing.assert_array_equal(with_test.valid.labels, first.valid.labels)  # same rows
        self.assertEqual(len(self.files()), 3)
        self.assertEqual([f for f in os.listdir(self._tmp.name) if f.startswith(".tmp")], [])

    def test_values_round_trip_through_the_vocabulary(self) -> None:
        import numpy as np

        import fastdata

        ds = fastkit.parse_dataset({"n_train": 2000, "n_valid": 1000})
        data = fastdata.load(ds, need_test=False, use_cache=False)
        raw = fastdata.ctr_datasets().load_synthetic("easy", 1234, 2000, 1000, False)
        decoded = np.column_stack([data.vocab[f][data.train.features[:, f]] for f in range(7)])
        np.testing.assert_array_equal(decoded, raw.train.features)
        self.assertEqual(data.groups, ("user", "ad", "ad", "context", "context", "context", "context"))

    def test_unreadable_file_is_rebuilt(self) -> None:
        import fastdata

        ds = fastkit.parse_dataset({"n_train": 2000, "n_valid": 1000})
        fastdata.load(ds, need_test=False)
        (name,) = self.files()
        with open(os.path.join(self._tmp.name, name), "wb") as fh:
            fh.write(b"not a zip file")
        self.assertEqual(fastdata.load(ds, need_test=False).cache, "miss")
        self.assertEqual(fastdata.load(ds, need_test=False).cache, "hit")

    def test_concurrent_processes_share_one_file(self) -> None:
        script = (
            "import sys, json; sys.path.insert(0, sys.argv[1]); import fastkit, fastdata;"
            "d = fastdata.load(fastkit.parse_dataset({'n_train': 3000, 'n_valid': 1000}), False);"
            "print(json.dumps([d.cache, float(d.train.labels.sum()), int(d.train.features.sum())]))"
        )
        procs = [
            subprocess.Popen([sys.executable, "-c", script, HERE], stdout=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        outputs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
        self.assertTrue(all(p.returncode == 0 for p in procs))
        self.assertEqual(len({(o[1], o[2]) for o in outputs}), 1, outputs)
        self.assertEqual(len(self.files()), 1)
        self.assertEqual([f for f in os.listdir(self._tmp.name) if f.startswith(".tmp")], [])

    def test_key_covers_the_generator_source(self) -> None:
        import fastdata

        ds = fastkit.parse_dataset({})
        key = fastdata.cache_key(ds, False)
        self.assertEqual(key, fastdata.cache_key(ds, False))
        self.assertNotEqual(key, fastdata.cache_key(ds, True))
        self.assertNotEqual(key, fastdata.cache_key(fastkit.parse_dataset({"difficulty": "hard"}), False))
        real = open  # noqa: SIM115 - wrapped, not used directly

        def patched(path: str, mode: str = "r", *args: object, **kwargs: object) -> object:
            handle = real(path, mode, *args, **kwargs)  # type: ignore[call-overload]
            if path.endswith("synthetic.py") and "b" in mode:
                data = handle.read() + b"\n# changed"
                handle.close()
                import io

                return io.BytesIO(data)
            return handle

        with mock.patch("builtins.open", patched):
            self.assertNotEqual(fastdata.cache_key(ds, False), key)


if __name__ == "__main__":
    unittest.main()
