"""Synthetic click-log generator with a known ground-truth click probability.

Every row is an ad impression with seven categorical features:

    column  feature       cardinality  distribution
    0       user_id       20000        Zipf-like (long tail)
    1       ad_id         5000         Zipf-like (long tail)
    2       ad_category   80           deterministic function of ad_id
    3       site_id       300          Zipf-like
    4       device        4            fixed skewed distribution
    5       hour          24           diurnal (day-heavy) distribution
    6       position      6            values 1..6, top slots most frequent

Zipf-like sampling draws a popularity rank r with probability proportional
to 1 / (r + offset) ** exponent and maps ranks to ids through a random
permutation, so an id's value says nothing about its popularity.  Users and
ads use exponent 2: a heavy head (a few thousand distinct users appear in
200k rows) plus a long tail of ids seen only a handful of times.

The true click logit is a sum of planted effects:

    logit = base
          + user_effect[user] + ad_effect[ad] + site_effect[site]     (main)
          + segcat[segment(user), ad_category]      (pairwise, rank 4)
          + sitedev[site, device]                   (pairwise, rank 2)
          + triple[hour // 4, device, ad_category]  (third order, rank 2)
          - position_slope * (position - 1)         (position bias)

Main effects are i.i.d. Gaussian per id.  ``segment(user)`` assigns every
user to one of 24 hidden segments, so a model has to learn the
user -> segment mapping from user_id to exploit ``segcat``.  The interaction
tables are low-rank CP products of per-value factor vectors (e.g.
``triple[h, d, c] = sum_r A[h, r] B[d, r] C[c, r]``), i.e. exactly the kind
of structure embedding models (FM, DCN, MLP) can learn and generalise from.
Each table is rescaled to zero mean and the difficulty's standard deviation.
``base`` is found by bisection so that the mean click probability on a
fixed reference sample is ``TARGET_CTR`` (12 %).

The scales were tuned so that the default trainer config (Adam, lr 0.01,
300 steps of 256 on 200k rows) lands well above the Bayes limit, and longer
training (3000 steps) or better architectures close a visible part of the gap.

The clean probability is ``p = sigmoid(logit)``.  The "hard" difficulty
weakens the main effects, strengthens the interactions and flips labels
with probability ``f = 0.03``; the true probability reported for each row
is then ``p' = p (1 - f) + (1 - p) f``, so the log loss of ``true_prob`` is
still the Bayes-optimal loss.  Labels are ``Bernoulli(p')``.

Everything is vectorised numpy and deterministic for a given
``(difficulty, data_seed)``: the world (effect tables, id permutations) and
the base come from their own random streams, and the train, valid and
(optional) test rows from three more, so the validation split does not
change with ``n_train`` and asking for a test split changes neither.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FEATURE_NAMES: tuple[str, ...] = (
    "user_id",
    "ad_id",
    "ad_category",
    "site_id",
    "device",
    "hour",
    "position",
)
CARDINALITIES: tuple[int, ...] = (20_000, 5_000, 80, 300, 4, 24, 6)
NUM_FEATURES: int = len(FEATURE_NAMES)
DIFFICULTIES: tuple[str, ...] = ("easy", "hard")
TARGET_CTR: float = 0.12

_N_USERS, _N_ADS, _N_CATEGORIES, _N_SITES, _N_DEVICES, _N_HOURS, _N_POSITIONS = CARDINALITIES
_N_SEGMENTS = 24
_SEGCAT_RANK = 4
_SITEDEV_RANK = 2
_TRIPLE_RANK = 2
_HOUR_BUCKET = 4
_REFERENCE_ROWS = 50_000
# (exponent, offset) of the Zipf-like popularity of users, ads and sites.
_USER_ZIPF = (2.0, 50.0)
_AD_ZIPF = (2.0, 20.0)
_SITE_ZIPF = (1.0, 2.0)

_DEVICE_PROBS = np.array([0.55, 0.30, 0.10, 0.05])
_POSITION_PROBS = np.array([0.30, 0.24, 0.18, 0.13, 0.09, 0.06])
# Relative traffic per hour of day: low at night, peak in the evening.
_HOUR_WEIGHTS = np.array(
    [2, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 6, 7, 6, 6, 6, 6, 7, 8, 9, 9, 8, 6, 4], dtype=np.float64
)


@dataclass(frozen=True)
class DifficultyParams:
    """Standard deviations (in logits) of each planted effect."""

    user_scale: float
    ad_scale: float
    site_scale: float
    segcat_scale: float
    sitedev_scale: float
    triple_scale: float
    position_slope: float
    flip_rate: float


DIFFICULTY_PARAMS: dict[str, DifficultyParams] = {
    "easy": DifficultyParams(
        user_scale=0.4,
        ad_scale=0.6,
        site_scale=0.6,
        segcat_scale=1.0,
        sitedev_scale=0.6,
        triple_scale=0.8,
        position_slope=0.45,
        flip_rate=0.0,
    ),
    "hard": DifficultyParams(
        user_scale=0.25,
        ad_scale=0.35,
        site_scale=0.35,
        segcat_scale=1.3,
        sitedev_scale=0.8,
        triple_scale=1.1,
        position_slope=0.45,
        flip_rate=0.03,
    ),
}


@dataclass(frozen=True)
class Split:
    """One split: features (n, F) int64, labels (n,) float32 0/1, true_prob (n,) float64."""

    features: np.ndarray
    labels: np.ndarray
    true_prob: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class Dataset:
    train: Split
    valid: Split
    difficulty: str
    data_seed: int
    test: Split | None = None


@dataclass(frozen=True)
class _World:
    """Latent tables shared by every row of one (difficulty, data_seed)."""

    params: DifficultyParams
    user_cdf: np.ndarray
    ad_cdf: np.ndarray
    site_cdf: np.ndarray
    user_perm: np.ndarray
    ad_perm: np.ndarray
    site_perm: np.ndarray
    user_effect: np.ndarray
    ad_effect: np.ndarray
    site_effect: np.ndarray
    user_segment: np.ndarray
    segcat: np.ndarray
    sitedev: np.ndarray
    triple: np.ndarray


def ad_category_of(ad_id: np.ndarray) -> np.ndarray:
    """Deterministic (seed independent) ad_id -> ad_category mapping."""
    mixed = (ad_id.astype(np.int64) * 2_654_435_761) >> 7
    return mixed % _N_CATEGORIES


def _zipf_cdf(card: int, exponent: float, offset: float) -> np.ndarray:
    weights = 1.0 / (np.arange(card, dtype=np.float64) + offset) ** exponent
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def _sample_from_cdf(rng: np.random.Generator, cdf: np.ndarray, n: int) -> np.ndarray:
    idx = np.searchsorted(cdf, rng.random(n), side="right")
    return np.minimum(idx, cdf.shape[0] - 1)


def _standardised(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """Gaussian table rescaled to exactly zero mean and ``scale`` std."""
    table = rng.standard_normal(shape)
    table -= table.mean()
    return table * (scale / table.std())


def _low_rank(rng: np.random.Generator, dims: tuple[int, ...], rank: int, scale: float) -> np.ndarray:
    """Rank-``rank`` CP tensor sum_r a_r (x) b_r (x) ..., standardised to ``scale``."""
    factors = [rng.standard_normal((dim, rank)) for dim in dims]
    letters = "abcdefgh"[: len(dims)]
    spec = ",".join(f"{c}r" for c in letters) + "->" + letters
    table = np.einsum(spec, *factors)
    table -= table.mean()
    return table * (scale / table.std())


def _build_world(params: DifficultyParams, rng: np.random.Generator) -> _World:
    return _World(
        params=params,
        user_cdf=_zipf_cdf(_N_USERS, *_USER_ZIPF),
        ad_cdf=_zipf_cdf(_N_ADS, *_AD_ZIPF),
        site_cdf=_zipf_cdf(_N_SITES, *_SITE_ZIPF),
        user_perm=rng.permutation(_N_USERS),
        ad_perm=rng.permutation(_N_ADS),
        site_perm=rng.permutation(_N_SITES),
        user_effect=_standardised(rng, (_N_USERS,), params.user_scale),
        ad_effect=_standardised(rng, (_N_ADS,), params.ad_scale),
        site_effect=_standardised(rng, (_N_SITES,), params.site_scale),
        user_segment=rng.integers(0, _N_SEGMENTS, size=_N_USERS),
        segcat=_low_rank(rng, (_N_SEGMENTS, _N_CATEGORIES), _SEGCAT_RANK, params.segcat_scale),
        sitedev=_low_rank(rng, (_N_SITES, _N_DEVICES), _SITEDEV_RANK, params.sitedev_scale),
        triple=_low_rank(
            rng,
            (_N_HOURS // _HOUR_BUCKET, _N_DEVICES, _N_CATEGORIES),
            _TRIPLE_RANK,
            params.triple_scale,
        ),
    )


def _sample_features(world: _World, rng: np.random.Generator, n: int) -> np.ndarray:
    user = world.user_perm[_sample_from_cdf(rng, world.user_cdf, n)]
    ad = world.ad_perm[_sample_from_cdf(rng, world.ad_cdf, n)]
    site = world.site_perm[_sample_from_cdf(rng, world.site_cdf, n)]
    device = rng.choice(_N_DEVICES, size=n, p=_DEVICE_PROBS)
    hour = rng.choice(_N_HOURS, size=n, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    position = rng.choice(_N_POSITIONS, size=n, p=_POSITION_PROBS) + 1
    columns = (user, ad, ad_category_of(ad), site, device, hour, position)
    return np.stack([c.astype(np.int64) for c in columns], axis=1)


def _logit_without_base(world: _World, x: np.ndarray) -> np.ndarray:
    user, ad, cat, site, device, hour, position = (x[:, i] for i in range(NUM_FEATURES))
    p = world.params
    return (
        world.user_effect[user]
        + world.ad_effect[ad]
        + world.site_effect[site]
        + world.segcat[world.user_segment[user], cat]
        + world.sitedev[site, device]
        + world.triple[hour // _HOUR_BUCKET, device, cat]
        - p.position_slope * (position - 1)
    )


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _flip_adjusted(p: np.ndarray, flip_rate: float) -> np.ndarray:
    return p * (1.0 - flip_rate) + (1.0 - p) * flip_rate


def _solve_base(world: _World, rng: np.random.Generator) -> float:
    """Bisection for the base logit giving TARGET_CTR on a reference sample."""
    z = _logit_without_base(world, _sample_features(world, rng, _REFERENCE_ROWS))
    lo, hi = -12.0, 4.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        ctr = _flip_adjusted(_sigmoid(z + mid), world.params.flip_rate).mean()
        lo, hi = (mid, hi) if ctr < TARGET_CTR else (lo, mid)
    return 0.5 * (lo + hi)


def _sample_split(world: _World, base: float, rng: np.random.Generator, n: int) -> Split:
    features = _sample_features(world, rng, n)
    clean = _sigmoid(base + _logit_without_base(world, features))
    flip = world.params.flip_rate
    true_prob = _flip_adjusted(clean, flip)
    labels = rng.random(n) < clean
    if flip > 0.0:
        labels ^= rng.random(n) < flip
    return Split(features=features, labels=labels.astype(np.float32), true_prob=true_prob)


def generate(difficulty: str, data_seed: int, n_train: int, n_valid: int, n_test: int = 0) -> Dataset:
    """Generate train/valid (and, when ``n_test > 0``, test) splits; deterministic
    for (difficulty, data_seed, n_*).  Child ``i`` of ``SeedSequence.spawn`` does
    not depend on how many children are spawned, so the test stream (child 4)
    leaves the other splits unchanged."""
    if difficulty not in DIFFICULTY_PARAMS:
        raise ValueError(f"difficulty must be one of {DIFFICULTIES}, got {difficulty!r}")
    world_seq, base_seq, train_seq, valid_seq, test_seq = np.random.SeedSequence(data_seed).spawn(5)
    world = _build_world(DIFFICULTY_PARAMS[difficulty], np.random.default_rng(world_seq))
    base = _solve_base(world, np.random.default_rng(base_seq))
    test = _sample_split(world, base, np.random.default_rng(test_seq), n_test) if n_test > 0 else None
    return Dataset(
        train=_sample_split(world, base, np.random.default_rng(train_seq), n_train),
        valid=_sample_split(world, base, np.random.default_rng(valid_seq), n_valid),
        difficulty=difficulty,
        data_seed=data_seed,
        test=test,
    )
