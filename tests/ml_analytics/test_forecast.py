"""forecast() and its parts: season detection, smoothing filters, intervals, naive candidates,
ARIMA and the LSTM."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from allele.errors import ValidationError
from allele.observability.ml_analytics import ARIMA, Forecast, StatisticalForecaster, forecast
from allele.observability.ml_analytics.prediction.intervals import (
    empirical_bounds,
    future_values,
)
from allele.observability.ml_analytics.prediction.naive import seasonal_naive, window_median
from allele.observability.ml_analytics.prediction.season import (
    SeasonalProfile,
    _centred_moving_average,
    detect_season,
    is_seasonal,
)
from allele.observability.ml_analytics.prediction.smoothing import fit_alpha, ses_levels, theta


def seasonal_series(n: int = 600, period: int = 24, noise: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 10 + 2 * np.sin(2 * np.pi * t / period) + noise * rng.normal(size=n)


def test_forecast_returns_arrays_of_the_horizon_with_ordered_bounds() -> None:
    f = forecast(seasonal_series(), 30)
    assert isinstance(f, Forecast)
    for array in (f.mean, f.lower, f.upper):
        assert isinstance(array, np.ndarray) and array.shape == (30,)
    assert np.all(f.lower <= f.mean) and np.all(f.mean <= f.upper)
    assert f.level == 0.95 and f.horizon == 30


def test_forecast_detects_the_season_and_follows_it() -> None:
    y = seasonal_series(n=624)
    f = forecast(y[:600], 24)
    assert f.season_length == 24
    truth = 10 + 2 * np.sin(2 * np.pi * np.arange(600, 624) / 24)
    assert np.mean(np.abs(f.mean - truth)) < 0.3  # the noise sd is 0.3; flat would be ~1.3


def test_given_season_is_used_and_an_insignificant_one_dropped() -> None:
    # The test is one-sided at 10%: white noise passes it about one time in ten.
    rng = np.random.default_rng(1)
    kept = [forecast(rng.normal(size=500), 5, season_length=24).season_length for _ in range(30)]
    assert kept.count(24) <= 6 and set(kept) <= {1, 24}
    assert forecast(seasonal_series(), 5, season_length=24).season_length == 24


def test_interval_coverage_is_near_its_level_on_fresh_noise() -> None:
    rng = np.random.default_rng(3)
    inside = []
    for _ in range(40):
        e = rng.normal(size=524)
        y = 5 + lfilter([1.0], [1.0, -0.5], e)  # AR(1) around a level
        f = forecast(y[:500], 24, level=0.9)
        inside.append(np.mean((y[500:] >= f.lower) & (y[500:] <= f.upper)))
    assert 0.8 <= np.mean(inside) <= 0.97


def test_wider_level_gives_wider_interval() -> None:
    y = seasonal_series()
    narrow, wide = forecast(y, 12, level=0.5), forecast(y, 12, level=0.99)
    assert np.all(wide.upper - wide.lower > narrow.upper - narrow.lower)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"y": [1.0, 2.0], "horizon": 3}, "at least 3"),
        ({"y": [1.0, np.nan, 2.0, 3.0], "horizon": 3}, "finite"),
        ({"y": np.ones((4, 2)), "horizon": 3}, "one-dimensional"),
        ({"y": np.arange(10.0), "horizon": 0}, "horizon"),
        ({"y": np.arange(10.0), "horizon": 3, "level": 1.5}, "level"),
        ({"y": np.arange(10.0), "horizon": 3, "season_length": 0}, "season_length"),
        ({"y": "abc", "horizon": 3}, "numbers"),
    ],
)
def test_bad_input_gets_a_clear_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        forecast(**kwargs)


def test_unfitted_forecaster_says_so() -> None:
    with pytest.raises(ValidationError, match="not fitted"):
        StatisticalForecaster().predict(3)


def test_short_and_constant_series_still_forecast() -> None:
    assert np.allclose(forecast([4.0, 4.0, 4.0, 4.0], 3).mean, 4.0)
    f = forecast([1.0, 2.0, 3.0], 2)
    assert np.all(np.isfinite(f.lower)) and np.all(np.isfinite(f.upper))


def test_ses_levels_match_the_recursion() -> None:
    a = np.random.default_rng(0).normal(size=300)
    alphas = np.array([0.01, 0.3, 1.0])
    levels = ses_levels(a, alphas)
    for k, alpha in enumerate(alphas):
        level = a[0]
        expected = []
        for value in a:
            level = alpha * value + (1 - alpha) * level
            expected.append(level)
        np.testing.assert_allclose(levels[k], expected, atol=1e-10)


def test_fit_alpha_finds_a_random_walk_and_a_noisy_level() -> None:
    rng = np.random.default_rng(0)
    assert fit_alpha(np.cumsum(rng.normal(size=500))) > 0.8
    assert fit_alpha(rng.normal(size=500)) < 0.1


def test_theta_drift_is_half_the_slope() -> None:
    a = 2.0 * np.arange(200.0)
    fit = theta(a, 10, alpha=1.0)
    np.testing.assert_allclose(np.diff(fit.mean), 1.0)  # theta = 2: half the slope of 2


def test_centred_moving_average_matches_a_convolution() -> None:
    y = np.random.default_rng(0).normal(size=80)
    for m in (4, 7):
        kernel = np.full(m + (m % 2 == 0), 1.0 / m)
        if m % 2 == 0:
            kernel[0] = kernel[-1] = 0.5 / m
        got = _centred_moving_average(y, m)
        np.testing.assert_allclose(got[~np.isnan(got)], np.convolve(y, kernel, "valid"))


def test_seasonal_profile_recovers_the_pattern_and_phase() -> None:
    pattern = np.array([3.0, -1.0, -1.0, -1.0])
    y = np.tile(pattern, 30)[1:] + 5.0  # starts at phase 1
    profile = SeasonalProfile.fit(y, 4)
    np.testing.assert_allclose(profile.at(np.arange(4)), np.roll(pattern, -1), atol=1e-9)


def test_season_detection() -> None:
    assert detect_season(seasonal_series(period=12)) == 12
    assert detect_season(np.random.default_rng(0).normal(size=500)) == 1
    assert is_seasonal(seasonal_series(), 24) and not is_seasonal(seasonal_series(n=40), 24)


def test_future_values_and_empirical_bounds_match_numpy_quantiles() -> None:
    y = np.arange(10.0)
    ahead = future_values(y, 3)
    np.testing.assert_array_equal(ahead[0], [1, 2, 3])
    assert np.isnan(ahead[-1]).all() and ahead[-2][0] == 9 and np.isnan(ahead[-2][1])
    errors = np.random.default_rng(0).normal(size=(500, 3))
    errors[-1, 1:] = np.nan
    low, high = empirical_bounds(errors, 0.9, 1.0)
    column = errors[:, 2][~np.isnan(errors[:, 2])]
    assert high[2] == pytest.approx(max(np.quantile(column, 0.95), *high[:2]))
    assert low[0] == pytest.approx(np.quantile(errors[:, 0], 0.05))


def test_naive_candidates_are_causal() -> None:
    y = np.arange(20.0)
    snaive = seasonal_naive(y, 6, period=4)
    np.testing.assert_array_equal(snaive.mean, [16, 17, 18, 19, 16, 17])
    np.testing.assert_array_equal(snaive.paths[10], [7, 8, 9, 10, 7, 8])
    median = window_median(y, 2, window=5)
    assert median.paths[10][0] == 8.0 and median.mean[0] == 17.0  # median of 6..10, 15..19


def test_arima_recovers_an_ar1_and_a_random_walk() -> None:
    rng = np.random.default_rng(0)
    ar = 3 + lfilter([1.0], [1.0, -0.7], rng.normal(size=800))
    model = ARIMA(order=(1, 0, 0), season_length=1).fit(ar)
    assert model.params_[0] == pytest.approx(0.7, abs=0.07)
    assert model.params_[1] == pytest.approx(3.0, abs=0.35)
    walk = ARIMA(season_length=1).fit(np.cumsum(rng.normal(size=400)))
    assert walk.order_[1] == 1
    f = walk.predict(20)
    width = f.upper - f.lower
    assert np.all(np.diff(width) > 0)  # a random walk's uncertainty grows


def test_arima_follows_a_drift() -> None:
    y = 0.5 * np.arange(300.0) + np.random.default_rng(0).normal(size=300)
    f = ARIMA(season_length=1).fit(y).predict(10)
    assert f.mean[-1] == pytest.approx(0.5 * 309, abs=3.0)


def test_lstm_learns_a_seasonal_series() -> None:
    pytest.importorskip("torch")
    from allele.observability.ml_analytics import LSTMForecaster

    y = seasonal_series(n=300, period=12, noise=0.1)
    model = LSTMForecaster(horizon=6, window=12, hidden_size=8, epochs=40, season_length=1)
    f = model.fit(y).predict()
    assert f.mean.shape == (6,) and np.all(f.lower <= f.upper)
    truth = 10 + 2 * np.sin(2 * np.pi * np.arange(300, 306) / 12)
    assert np.mean(np.abs(f.mean - truth)) < np.mean(np.abs(y.mean() - truth))
    with pytest.raises(ValidationError, match="fitted horizon"):
        model.predict(7)
