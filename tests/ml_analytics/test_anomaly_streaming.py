"""Streaming detectors: river's contract, causality, bounded state, and they find anomalies."""

from __future__ import annotations

import math
import random

import pytest

from allele.errors import ValidationError
from allele.observability.ml_analytics.anomaly.streaming import (
    PatternNoveltyDetector,
    ResidualDetector,
    ResidualNoveltyDetector,
    score_series,
)


def _series(n: int = 1500, spike_at: int | None = 1200, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    values = [10 + 3 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, 0.3) for i in range(n)]
    if spike_at is not None:
        values[spike_at] += 8.0
    return values


@pytest.mark.parametrize(
    "factory", [ResidualDetector, PatternNoveltyDetector, ResidualNoveltyDetector]
)
def test_scores_are_in_unit_interval_and_score_one_does_not_learn(factory: type) -> None:
    det = factory()
    for v in _series(400, None):
        s1 = det.score_one(v)
        s2 = det.score_one(v)  # scoring again sees the same state
        assert s1 == s2
        assert 0.0 <= s1 <= 1.0
        det.learn_one(v)


def test_causal_a_score_does_not_depend_on_later_values() -> None:
    values = _series()
    a = score_series(ResidualNoveltyDetector(), values[:1000])
    b = score_series(ResidualNoveltyDetector(), values[:1000] + [1e6] * 100)
    assert a == b[:1000]


def test_the_spike_gets_the_top_residual_rank_after_warm_up() -> None:
    values = _series()
    scores = score_series(ResidualDetector(season_length=288), values)
    assert max(range(150, len(values)), key=scores.__getitem__) == 1200
    assert scores[1200] > 0.99


def test_an_incident_fires_once() -> None:
    # A clean daily wave, then two rows of one incident: the first fires, the echo does not.
    values = [10 + 3 * math.sin(2 * math.pi * i / 288) for i in range(1500)]
    values[1200] += 8.0
    values[1201] += 7.5
    scores = score_series(ResidualNoveltyDetector(season_length=288), values)
    assert scores[1200] > 0.9
    assert scores[1201] == 0.0
    assert max(scores[:1200]) < scores[1200]  # nothing before it looked as unusual


def test_state_is_bounded() -> None:
    det = ResidualNoveltyDetector(season_length=288)
    score_series(det, _series(3000, None))
    before = [len(r._counts) + len(r._profile) for r in (det.daily, det.weekly)]
    score_series(det, _series(20000, None, seed=2))
    after = [len(r._counts) + len(r._profile) for r in (det.daily, det.weekly)]
    assert after == before == [200 + 288, 200 + 7 * 288]
    levels = det.novelty.levels
    assert len(det.novelty._seen) <= (levels + 1) * (levels + 2)


def test_novelty_contexts_are_bounded_by_levels() -> None:
    det = PatternNoveltyDetector(levels=4)
    rng = random.Random(3)
    score_series(det, [rng.uniform(0, 1) for _ in range(5000)])
    assert len(det._seen) <= (4 + 1) * (4 + 2)


def test_season_comes_from_timestamps() -> None:
    det = ResidualDetector()
    score_series(det, [1.0, 2.0, 3.0], [0.0, 300.0, 600.0])
    assert det.season_length == 288


def test_bad_observations_are_rejected() -> None:
    det = ResidualNoveltyDetector()
    with pytest.raises(ValidationError, match="finite"):
        det.score_one(float("nan"))
    with pytest.raises(ValidationError, match="'value'"):
        det.score_one({"v": 1.0})
    with pytest.raises(ValidationError, match="weight"):
        ResidualNoveltyDetector(weight=2.0)
