"""``forecast(y, horizon)``: the package's point forecast and prediction interval.

The model is a forecast combination, the lesson of the M3/M4 competitions: remove the seasonal
profile when the series has one; forecast what is left with simple exponential smoothing, the
Theta method and two window medians; add the seasonal naive forecast; rank the five on their own
errors over every step of every recent origin in the history, and average the best two. The
interval comes from the combination's own past multi-step errors (see ``intervals``). Each
candidate is a convolution over the history: a few milliseconds on 1,000 points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from allele.errors import ValidationError, check_int, check_real
from allele.observability.ml_analytics.prediction.intervals import (
    empirical_bounds,
    future_values,
)
from allele.observability.ml_analytics.prediction.naive import seasonal_naive, window_median
from allele.observability.ml_analytics.prediction.season import (
    SeasonalProfile,
    detect_season,
    is_seasonal,
)
from allele.observability.ml_analytics.prediction.smoothing import (
    SmoothingFit,
    fit_alpha,
    ses,
    theta,
)

MAX_HORIZON = 100_000
# Past errors from this many of the latest origins rank the candidates and calibrate the
# interval: recent behaviour matters more than a quiet month long ago.
_CALIBRATION_ORIGINS = 600
# How many of the best-ranked candidates are averaged: two beat one (a combination hedges a
# wrong pick) and three (the third is usually a poor fit that dilutes the mean).
_COMBINED = 2
# Windows of the robust median candidates, in samples.
_MEDIAN_WINDOWS = (12, 48)


@dataclass(frozen=True)
class Forecast:
    """A forecast ``horizon`` steps past the last observation.

    ``mean[j]``, ``lower[j]`` and ``upper[j]`` are for step ``j + 1``; ``[lower, upper]`` is the
    interval at ``level``. ``season_length`` is the period used (1: none).
    """

    mean: NDArray[np.float64]
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    level: float
    season_length: int
    model: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def horizon(self) -> int:
        """How many steps ahead the forecast reaches."""
        return len(self.mean)


def as_series(y: ArrayLike, *, name: str = "y", min_length: int = 3) -> NDArray[np.float64]:
    """``y`` as a 1-D float array of finite values, or a ValidationError saying what is wrong."""
    try:
        values = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must be a sequence of numbers, got {y!r:.80}") from exc
    if values.ndim != 1:
        raise ValidationError(f"{name} must be one-dimensional, got shape {values.shape}")
    if len(values) < min_length:
        raise ValidationError(f"{name} needs at least {min_length} observations, got {len(values)}")
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValidationError(
            f"{name} must be finite; {int(bad.sum())} values are NaN or infinite "
            f"(first at index {int(np.argmax(bad))})"
        )
    return values


def check_level(level: object) -> float:
    """An interval level in (0, 1), or a ValidationError."""
    return check_real("level", level, 0.0, 1.0, low_open=True, high_open=True)


class StatisticalForecaster:
    """Seasonally adjusted SES + Theta combination with empirically calibrated intervals.

    scikit-learn's contract: ``__init__`` stores the parameters, ``fit(y)`` returns ``self`` and
    sets the ``_``-suffixed state, ``predict(horizon)`` forecasts from the end of ``y``.

    >>> import numpy as np
    >>> y = 10 + np.sin(np.arange(200) * 2 * np.pi / 24)
    >>> f = StatisticalForecaster(level=0.9).fit(y).predict(24)
    >>> f.season_length, f.mean.shape
    (24, (24,))
    """

    def __init__(self, season_length: int | None = None, level: float = 0.95) -> None:
        self.season_length = season_length
        self.level = level

    def fit(self, y: ArrayLike) -> StatisticalForecaster:
        """Estimate the season, the smoothing weight and the adjusted series from ``y``."""
        values = as_series(y)
        check_level(self.level)
        period = self._period(values)
        profile = SeasonalProfile.fit(values, period) if period > 1 else SeasonalProfile.none()
        n = len(values)
        adjusted = values - profile.at(np.arange(n))
        self.y_ = values
        self.period_ = period
        self.profile_ = profile
        self.adjusted_ = adjusted
        # The weight is fitted on the recent past only: cheaper, and what the forecast needs.
        self.alpha_ = fit_alpha(adjusted[-_CALIBRATION_ORIGINS:])
        return self

    def _period(self, values: NDArray[np.float64]) -> int:
        if self.season_length is None:
            period = detect_season(values)
        else:
            period = check_int("season_length", self.season_length, 1, MAX_HORIZON)
        # Too few cycles, or no significant seasonal correlation: a profile would be noise.
        return period if is_seasonal(values, period) else 1

    def _candidates(self, horizon: int, first: int) -> list[SmoothingFit]:
        """Every candidate's forecast, season put back, from the end and origins ``first..``."""
        n = len(self.y_)
        season = self.profile_.at(np.arange(n + horizon))
        ahead = season[np.arange(first + 1, n + 1)[:, None] + np.arange(horizon)[None, :]]
        a = self.adjusted_
        adjusted = [ses(a, horizon, self.alpha_, first), theta(a, horizon, self.alpha_, first)]
        adjusted += [window_median(a, horizon, w, first) for w in _MEDIAN_WINDOWS]
        out = [SmoothingFit(f.name, f.mean + season[n:], f.paths + ahead) for f in adjusted]
        if self.period_ > 1:
            out.append(seasonal_naive(self.y_, horizon, self.period_, first))
        return out

    def predict(self, horizon: int, level: float | None = None) -> Forecast:
        """The forecast ``horizon`` steps ahead with its interval at ``level`` (default: the
        estimator's).

        The candidates (SES, Theta, two window medians on the adjusted series, the seasonal
        naive) are ranked by their mean absolute error over every step of every recent origin
        in the history; the best ``_COMBINED`` are averaged.
        """
        if not hasattr(self, "y_"):
            raise ValidationError("this forecaster is not fitted yet: call fit(y) first")
        horizon = check_int("horizon", horizon, 1, MAX_HORIZON)
        level = check_level(self.level if level is None else level)
        y = self.y_
        n = len(y)
        first = max(min(max(self.period_, 10), n // 4), n - _CALIBRATION_ORIGINS)
        candidates = self._candidates(horizon, first)
        actual = future_values(y, horizon)[first:]
        paths = np.stack([c.paths for c in candidates])
        # Ranked by mean absolute error over every known step of every recent origin. (Giving
        # recent origins more weight, or only ranking on fully known origins, scored worse on
        # the NAB series.)
        known = ~np.isnan(actual)
        gaps = np.abs(np.where(known, actual, 0.0)[None] - paths) * known[None]
        mae = gaps.sum(axis=(1, 2)) / max(int(known.sum()), 1)
        chosen = np.argsort(mae, kind="stable")[:_COMBINED]
        mean = np.mean([candidates[k].mean for k in chosen], axis=0)
        errors = actual - paths[chosen].mean(axis=0)
        one_step = errors[:, 0][~np.isnan(errors[:, 0])]
        scale = float(np.std(one_step)) if len(one_step) > 1 else float(np.std(y))
        low, high = empirical_bounds(errors, level, scale)
        return Forecast(
            mean=mean,
            lower=mean + low,
            upper=mean + high,
            level=level,
            season_length=self.period_,
            model="+".join(candidates[k].name for k in chosen),
            info={
                "alpha": self.alpha_,
                "in_sample_mae": {c.name: float(e) for c, e in zip(candidates, mae, strict=True)},
            },
        )


def forecast(
    y: ArrayLike, horizon: int, *, level: float = 0.95, season_length: int | None = None
) -> Forecast:
    """Forecast ``horizon`` steps past the end of ``y``, with an interval at ``level``.

    ``season_length`` is the period in samples (24 for hourly data with a daily cycle); when it
    is None the period is detected from the autocorrelation, and a season that is not
    significant, or with fewer than two full cycles in ``y``, is ignored.

    >>> import numpy as np
    >>> from allele.observability.ml_analytics import forecast
    >>> f = forecast(np.arange(50.0), 5)
    >>> bool(f.mean[0] > 49 and (f.lower <= f.mean).all() and (f.mean <= f.upper).all())
    True
    """
    return StatisticalForecaster(season_length=season_length, level=level).fit(y).predict(horizon)
