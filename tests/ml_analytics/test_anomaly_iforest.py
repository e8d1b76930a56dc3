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
