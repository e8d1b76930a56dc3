"""ARIMA(p, d, q) on the seasonally adjusted series, fitted by conditional least squares.

The differencing order comes from the KPSS stationarity test (as in Hyndman and Khandakar's
auto.arima); p and q from AICc over a small grid. Residuals of an ARMA model are a linear filter
of the series, ``e = phi(B) / theta(B) (x - mu)``, so each evaluation of the objective is one
``lfilter`` call. The interval is the model's normal one from its psi weights; the season, when
there is one, is removed beforehand and added back (``season``), as ETS and Theta do.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import least_squares
from scipy.signal import lfilter
from scipy.stats import norm

from allele.errors import ValidationError, check_int
from allele.observability.ml_analytics.prediction.forecast import (
    MAX_HORIZON,
    Forecast,
    as_series,
    check_level,
)
from allele.observability.ml_analytics.prediction.season import (
    SeasonalProfile,
    detect_season,
    is_seasonal,
)

# KPSS 5% critical value for level stationarity (Kwiatkowski et al. 1992, table 1).
_KPSS_CRITICAL = 0.463


def kpss_statistic(x: NDArray[np.float64]) -> float:
    """The KPSS level-stationarity statistic with a Bartlett long-run variance."""
    n = len(x)
    e = x - x.mean()
    partial = np.cumsum(e)
    lags = int(4 * (n / 100) ** 0.25)
    variance = float(e @ e) / n
    for k in range(1, min(lags, n - 1) + 1):
        variance += 2 * (1 - k / (lags + 1)) * float(e[k:] @ e[:-k]) / n
    if variance <= 0:
        return 0.0
    return float(partial @ partial) / (n * n * variance)


def differencing_order(x: NDArray[np.float64], max_d: int = 2) -> int:
    """How many differences make ``x`` level-stationary by KPSS at 5% (at most ``max_d``)."""
    d = 0
    while d < max_d and len(x) > 10 and np.ptp(x) > 0 and kpss_statistic(x) > _KPSS_CRITICAL:
        x = np.diff(x)
        d += 1
    return d


def _polys(params: NDArray[np.float64], p: int, q: int) -> tuple[NDArray, NDArray]:
    ar = np.concatenate(([1.0], -params[:p]))
    ma = np.concatenate(([1.0], params[p : p + q]))
    return ar, ma


def _roots_outside(poly: NDArray[np.float64]) -> bool:
    # Stationarity (AR) / invertibility (MA): every root of the lag polynomial outside |z| = 1.
    if len(poly) == 1:
        return True
    return bool(np.all(np.abs(np.roots(poly[::-1])) > 1.0001))


class ARIMA:
    """An ARIMA model with automatic orders, following scikit-learn's estimator contract.

    ``order=(p, d, q)`` fixes the orders; None chooses them (d by KPSS, then p <= ``max_p`` and
    q <= ``max_q`` by AICc). A constant is estimated when ``d <= 1``: the mean, or with one
    difference the drift (a linear trend, which capacity planning needs).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.cumsum(rng.normal(size=300))
    >>> model = ARIMA(season_length=1).fit(y)
    >>> model.order_[1]
    1
    """

    def __init__(
        self,
        order: tuple[int, int, int] | None = None,
        season_length: int | None = None,
        level: float = 0.95,
        max_p: int = 2,
        max_q: int = 2,
    ) -> None:
        self.order = order
        self.season_length = season_length
        self.level = level
        self.max_p = max_p
        self.max_q = max_q

    def fit(self, y: ArrayLike) -> ARIMA:
        """Choose the orders and estimate the coefficients on ``y``."""
        values = as_series(y, min_length=8)
        check_level(self.level)
        if self.season_length is None:
            period = detect_season(values)
        else:
            period = check_int("season_length", self.season_length, 1, MAX_HORIZON)
        period = period if is_seasonal(values, period) else 1
        profile = SeasonalProfile.fit(values, period) if period > 1 else SeasonalProfile.none()
        adjusted = values - profile.at(np.arange(len(values)))
        if self.order is None:
            d = differencing_order(adjusted)
            grid = [(p, q) for p in range(self.max_p + 1) for q in range(self.max_q + 1)]
        else:
            p0, d, q0 = (check_int(n, v, 0, 10) for n, v in zip("pdq", self.order, strict=True))
            grid = [(p0, q0)]
        x = np.diff(adjusted, n=d) if d else adjusted
        if len(x) < 4:
            raise ValidationError(
                f"ARIMA needs at least 4 observations after {d} differences, got {len(values)}"
            )
        best: tuple[float, int, int, NDArray[np.float64], float] | None = None
        for p, q in grid:
            fitted = self._fit_arma(x, p, q, constant=d <= 1)
            if fitted is not None and (best is None or fitted[0] < best[0]):
                best = (fitted[0], p, q, fitted[1], fitted[2])
        if best is None:  # every candidate was non-stationary or non-invertible
            best = (np.inf, 0, 0, np.array([x.mean() if d <= 1 else 0.0]), float(np.var(x)))
        _, p, q, params, sigma2 = best
        self.order_ = (p, d, q)
        self.params_ = params
        self.sigma2_ = sigma2
        self.period_ = period
        self.profile_ = profile
        self.adjusted_ = adjusted
        self.differenced_ = x
        return self

    @staticmethod
    def _fit_arma(
        x: NDArray[np.float64], p: int, q: int, *, constant: bool
    ) -> tuple[float, NDArray[np.float64], float] | None:
        """(AICc, parameters [ar.., ma.., mu], innovation variance), or None if inadmissible."""
        mu0 = float(x.mean()) if constant else 0.0
        k = p + q + int(constant)

        def residuals(params: NDArray[np.float64]) -> NDArray[np.float64]:
            ar, ma = _polys(params, p, q)
            mu = params[p + q] if constant else 0.0
            return np.asarray(lfilter(ar, ma, x - mu)[p:], dtype=np.float64)

        start = np.concatenate((np.zeros(p + q), [mu0] if constant else []))
        if k:
            result = least_squares(residuals, start, method="lm", max_nfev=200 * (k + 1))
            params = result.x
        else:
            params = start
        ar, ma = _polys(params, p, q)
        if not (_roots_outside(ar) and _roots_outside(ma)):
            return None
        e = residuals(params)
        m = len(e)
        sigma2 = float(e @ e) / m
        if m - k - 2 <= 0 or sigma2 <= 0:
            return None
        aicc = m * np.log(sigma2) + 2 * (k + 1) + 2 * (k + 1) * (k + 2) / (m - k - 2)
        return float(aicc), params, sigma2

    def predict(self, horizon: int, level: float | None = None) -> Forecast:
        """The forecast ``horizon`` steps ahead with the model's normal interval at ``level``."""
        if not hasattr(self, "order_"):
            raise ValidationError("this model is not fitted yet: call fit(y) first")
        horizon = check_int("horizon", horizon, 1, MAX_HORIZON)
        level = check_level(self.level if level is None else level)
        p, d, q = self.order_
        ar, ma = _polys(self.params_, p, q)
        mu = float(self.params_[p + q]) if d <= 1 and len(self.params_) > p + q else 0.0
        x = self.differenced_ - mu
        e = np.asarray(lfilter(ar, ma, x), dtype=np.float64)
        e[:p] = 0.0
        history = list(x[-p:]) if p else []
        shocks = list(e[-q:]) if q else []
        future = np.empty(horizon)
        for h in range(horizon):
            value = sum(-ar[i + 1] * history[-1 - i] for i in range(p))
            value += sum(ma[j + 1] * shocks[-1 - j] for j in range(q))
            future[h] = value
            if p:
                history.append(value)
            if q:
                shocks.append(0.0)
        mean = future + mu
        level_series = self.adjusted_
        for k in range(d, 0, -1):  # undo each difference, innermost last
            last = np.diff(level_series, n=k - 1)[-1] if k > 1 else level_series[-1]
            mean = last + np.cumsum(mean)
        # psi weights of the integrated model: theta(B) / (phi(B) (1 - B)^d).
        denominator = ar
        for _ in range(d):
            denominator = np.convolve(denominator, [1.0, -1.0])
        impulse = np.zeros(horizon)
        impulse[0] = 1.0
        psi = lfilter(ma, denominator, impulse)
        spread = norm.ppf(0.5 + level / 2) * np.sqrt(self.sigma2_ * np.cumsum(psi**2))
        n = len(self.adjusted_)
        mean = mean + self.profile_.at(np.arange(n, n + horizon))
        return Forecast(
            mean=mean,
            lower=mean - spread,
            upper=mean + spread,
            level=level,
            season_length=self.period_,
            model=f"arima{self.order_}",
            info={"order": self.order_, "sigma2": self.sigma2_},
        )
