"""The NAB scorer reproduces NAB's own per-row and per-series scores for Windowed Gaussian."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from allele.errors import ValidationError
from allele.observability.ml_analytics.anomaly.nab_scorer import (
    PROFILES,
    best_threshold,
    normalised,
    score_at,
    sweep_scores,
    window_indices,
    window_map,
)

NAB = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "nab"
if not NAB.is_dir():
    NAB = Path("/work/shared/data/nab")
REFERENCE = NAB / "reference" / "windowedGaussian"
pytestmark = pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"NAB data not at {NAB}")

# Column of the per-row score, and file of the per-series scores, of each profile.
_COLUMNS = {
    "standard": "S(t)_standard",
    "reward_low_FP_rate": "S(t)_reward_low_FP_rate",
    "reward_low_FN_rate": "S(t)_reward_low_FN_rate",
}


def _reference_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _windows() -> dict[str, list[tuple[str, str]]]:
    return window_map(json.loads((NAB / "labels" / "combined_windows.json").read_text()))


@pytest.mark.parametrize("profile_name", list(PROFILES))
def test_scores_every_series_and_row_as_nab_does(profile_name: str) -> None:
    profile = PROFILES[profile_name]
    windows = _windows()
    expected = {
        r["File"]: r
        for r in _reference_rows(REFERENCE / f"scores_{profile_name}.csv")
        if r["File"] and r["File"] != "Totals"
    }
    assert len(expected) == 35
    for relative, row in expected.items():
        category, name = relative.split("/")
        rows = _reference_rows(REFERENCE / category / f"windowedGaussian_{name}")
        timestamps = [r["timestamp"] for r in rows]
        scored = sweep_scores(
            len(rows), window_indices(timestamps, windows[relative], relative), profile
        )
        np.testing.assert_allclose(
            scored.sweep, [float(r[_COLUMNS[profile_name]]) for r in rows], rtol=0, atol=1e-9
        )
        anomaly = np.array([float(r["anomaly_score"]) for r in rows])
        result = score_at(scored, anomaly, float(row["Threshold"]), profile)
        assert result.score == pytest.approx(float(row["Score"]), abs=1e-9), relative
        assert (result.tp, result.tn, result.fp, result.fn) == (
            int(row["TP"]),
            int(row["TN"]),
            int(row["FP"]),
            int(row["FN"]),
        ), relative


def test_normalised_corpus_scores_match_the_published_subset_table() -> None:
    windows = _windows()
    n_windows = sum(len(w) for w in windows.values())
    published = {"standard": 21.93, "reward_low_FP_rate": 4.87, "reward_low_FN_rate": 29.17}
    for profile_name, want in published.items():
        total = sum(
            float(r["Score"])
            for r in _reference_rows(REFERENCE / f"scores_{profile_name}.csv")
            if r["File"] and r["File"] != "Totals"
        )
        assert normalised(total, n_windows, PROFILES[profile_name]) == pytest.approx(
            want, abs=0.005
        )


def test_threshold_sweep_picks_the_best_and_the_highest_among_equals() -> None:
    profile = PROFILES["standard"]
    n = 200
    scored = sweep_scores(n, [(100, 119)], profile)
    anomaly = np.zeros(n)
    anomaly[100] = 0.9  # earliest row of the window: the full A_TP
    anomaly[150] = 0.5  # a false positive, later
    best = best_threshold([scored], [anomaly], profile)
    assert best.threshold == 0.9
    assert best.score == pytest.approx(1.0)
    # No detection at all: -A_FN for the window.
    assert score_at(scored, np.zeros(n), 1.0, profile).score == pytest.approx(-1.0)
    # A perfect and a null detector normalise to 100 and 0.
    assert normalised(1.0, 1, profile) == 100.0
    assert normalised(-1.0, 1, profile) == 0.0


def test_window_timestamps_must_be_in_the_series() -> None:
    with pytest.raises(ValidationError, match="not in the series"):
        window_indices(["2020-01-01 00:00:00"], [("2020-01-02 00:00:00", "2020-01-02 00:00:00")])
