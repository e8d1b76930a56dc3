"""The numpy isolation forest: the paper's scores, agreeing with scikit-learn's on the ranking."""

from __future__ import annotations

import numpy as np
import pytest

from allele.errors import ValidationError
from allele.observability.ml_analytics.anomaly.features import series_features
from allele.observability.ml_analytics.anomaly.iforest import FastIsolationForest


def test_outliers_score_lowest_and_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 5))
    x[:10] += 6.0
    ours = FastIsolationForest(random_state=1).fit(x).score_samples(x)
    assert set(np.argsort(ours)[:10]) == set(range(10))
    # The paper's score: near 0.5 for ordinary rows, well above for isolated ones.
    assert -np.median(ours) == pytest.approx(0.42, abs=0.06)
    assert -ours[:10].mean() > 0.65
    sklearn = pytest.importorskip("sklearn.ensemble")
    theirs = sklearn.IsolationForest(random_state=1).fit(x).score_samples(x)
    from scipy.stats import spearmanr

    assert spearmanr(ours, theirs)[0] > 0.9


def test_constant_and_tiny_inputs() -> None:
    x = np.ones((50, 2))
    scores = FastIsolationForest(n_estimators=10, random_state=0).fit(x).score_samples(x)
    assert np.all(scores == scores[0])  # nothing can be isolated
    with pytest.raises(ValidationError, match="2-d"):
        FastIsolationForest().fit(np.ones(5))
    with pytest.raises(ValidationError, match="fitted"):
        FastIsolationForest().score_samples(x)


def test_ewma_feature_matches_the_recursion() -> None:
    x = np.random.default_rng(2).normal(size=60)
    features, expected, scale = series_features(x, window=10, alpha=0.3)
    e = [x[0]]
    for i in range(1, len(x)):
        e.append(e[-1] + 0.3 * (x[i - 1] - e[-1]))
    np.testing.assert_allclose(features[:, 1], (x[10:] - np.array(e)[10:]) / scale, atol=1e-9)
    np.testing.assert_allclose(expected, [np.median(x[i - 10 : i]) for i in range(10, 60)])


def test_bitset_scoring_matches_walking_every_row_down() -> None:
    # Two ways of finding each row's leaf: splitting bitsets of rows (many rows, in chunks of
    # 1024) and walking rows down the trees (a few rows). They must agree exactly, including
    # with trees taller than eight levels (turns spanning two bytes).
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2500, 3))
    x[:3] += 7.0
    for max_samples in (256, 40, 600):
        forest = FastIsolationForest(n_estimators=30, max_samples=max_samples, random_state=2)
        forest.fit(x)
        cols = np.ascontiguousarray(x.T, dtype=np.float32)[forest._columns_used]
        many = forest.path_lengths(x)
        walked = forest._walk(cols)
        np.testing.assert_array_equal(many, walked)
        few = forest.path_lengths(x[:5])
        np.testing.assert_array_equal(few, walked[:5])
        if max_samples >= 256:  # enough rows a tree to tell the three apart from the tails
            assert set(np.argsort(many)[:3]) == {0, 1, 2}


def test_fit_score_samples_and_constant_columns() -> None:
    rng = np.random.default_rng(5)
    x = np.column_stack([rng.normal(size=500), np.zeros(500), rng.normal(size=500)])
    x[0, 0] = 9.0
    forest = FastIsolationForest(random_state=3)
    scores = forest.fit_score_samples(x)
    np.testing.assert_array_equal(scores, forest.score_samples(x))
    assert int(np.argmin(scores)) == 0
    # The constant column splits nothing, so the forest is the one grown without it.
    without = FastIsolationForest(random_state=3).fit(x[:, [0, 2]]).score_samples(x[:, [0, 2]])
    np.testing.assert_array_equal(scores, without)
    with pytest.raises(ValidationError, match="3 columns"):
        forest.score_samples(x[:, :2])
    with pytest.raises(ValidationError, match="finite"):
        forest.score_samples(np.full((3, 3), np.nan))
