"""A Gaussian-process surrogate: what the measured cells of a grid predict of every other cell.

The model is a GP with a Matérn 5/2 kernel and one length scale per coordinate (so a parameter
that does not matter is learned to be flat), a constant mean, and per-observation noise: each
observation is a median of samples whose own spread says how uncertain it is, plus a learned
nugget for what the samples do not show (drift between processes). Targets are standardised;
positive objectives (times, memory) are modelled on the log scale, where benchmark noise is
multiplicative and a ratio is a difference.

Why this small GP rather than scikit-learn's ``GaussianProcessRegressor``: the optimizer refits
after every measurement and ``ask()`` has to answer in milliseconds. With at most a few hundred
observations one Cholesky factorisation costs microseconds, so the hyperparameters are chosen by
the log marginal likelihood over a fixed grid, one coordinate at a time, warm-started from the
previous fit, where the generic L-BFGS fit with restarts costs tens of milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve, solve_triangular
from scipy.special import ndtr, ndtri

from allele.errors import ValidationError

_LENGTH_SCALES = np.geomspace(0.04, 4.0, 12)
_NUGGETS = np.array([1e-6, 1e-4, 1e-3, 1e-2, 0.03, 0.1, 0.3])
_SQRT5 = math.sqrt(5.0)


def _near(grid: np.ndarray, value: float, steps: int = 1) -> np.ndarray:
    """The grid values within ``steps`` places of ``value`` (a warm start's neighbourhood)."""
    i = int(np.argmin(np.abs(np.log(grid) - math.log(value))))
    return grid[max(0, i - steps) : i + steps + 1]


def _matern52(r2: np.ndarray) -> np.ndarray:
    r = np.sqrt(np.maximum(r2, 0.0))
    return (1.0 + _SQRT5 * r + (5.0 / 3.0) * r2) * np.exp(-_SQRT5 * r)


class GaussianProcess:
    """A GP regressor over points of the unit cube; ``fit`` returns self, fitted state ends in _.

    >>> import numpy as np
    >>> x = np.linspace(0, 1, 8)[:, None]
    >>> gp = GaussianProcess().fit(x, np.sin(3 * x[:, 0]))
    >>> mean, var = gp.predict(np.array([[0.5]]))
    >>> bool(abs(mean[0] - np.sin(1.5)) < 0.05)
    True
    """

    length_scales_: np.ndarray
    nugget_: float

    def __init__(self, passes: int = 2) -> None:
        self.passes = passes

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        noise: np.ndarray | None = None,
        *,
        warm_start: GaussianProcess | None = None,
    ) -> GaussianProcess:
        """Fit to points ``x`` (n x d) and targets ``y``; ``noise`` is each target's variance."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] == 0:
            raise ValidationError(
                f"fit needs n x d points and n targets, got {x.shape} and {y.shape}"
            )
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise ValidationError("fit needs finite points and targets")
        n, d = x.shape
        self.mean_ = float(np.mean(y))
        self.scale_ = float(np.std(y)) or 1.0
        z = (y - self.mean_) / self.scale_
        noise_z = (
            np.zeros(n)
            if noise is None
            else np.maximum(np.asarray(noise, dtype=float), 0.0) / self.scale_**2
        )
        diffs = (x[:, None, :] - x[None, :, :]) ** 2  # n x n x d, reused by every candidate

        if warm_start is not None and hasattr(warm_start, "length_scales_"):
            scales = np.asarray(warm_start.length_scales_, dtype=np.float64).copy()
            nugget = float(warm_start.nugget_)
            passes = 1
        else:
            scales = np.full(d, 0.5)
            nugget = 1e-3
            passes = self.passes
        if len(scales) != d:
            scales = np.full(d, 0.5)
        best = self._log_likelihood(diffs, z, noise_z, scales, nugget)
        warm = passes == 1
        if n >= 3:
            for _ in range(passes):
                for j in range(d):
                    for candidate in _near(_LENGTH_SCALES, scales[j]) if warm else _LENGTH_SCALES:
                        trial = scales.copy()
                        trial[j] = candidate
                        value = self._log_likelihood(diffs, z, noise_z, trial, nugget)
                        if value > best:
                            best, scales = value, trial
                for candidate in _near(_NUGGETS, nugget) if warm else _NUGGETS:
                    value = self._log_likelihood(diffs, z, noise_z, scales, float(candidate))
                    if value > best:
                        best, nugget = value, float(candidate)
        self.length_scales_ = scales
        self.nugget_ = nugget
        self.log_likelihood_ = best
        self.x_ = x
        self.noise_z_ = noise_z
        k = _matern52(np.tensordot(diffs, 1.0 / np.square(scales), axes=([2], [0])))
        k[np.diag_indices(n)] += nugget + noise_z
        self.chol_ = np.linalg.cholesky(k)
        self.alpha_ = cho_solve((self.chol_, True), z)
        return self

    @staticmethod
    def _log_likelihood(
        diffs: np.ndarray, z: np.ndarray, noise_z: np.ndarray, scales: np.ndarray, nugget: float
    ) -> float:
        k = _matern52(np.tensordot(diffs, 1.0 / np.square(scales), axes=([2], [0])))
        k[np.diag_indices(len(z))] += nugget + noise_z
        try:
            chol = np.linalg.cholesky(k)
        except np.linalg.LinAlgError:
            return -math.inf
        alpha = cho_solve((chol, True), z)
        return float(-0.5 * z @ alpha - np.log(np.diag(chol)).sum())

    def _cross(self, points: np.ndarray) -> np.ndarray:
        d2 = ((points[:, None, :] - self.x_[None, :, :]) ** 2) @ (
            1.0 / np.square(self.length_scales_)
        )
        return _matern52(d2)

    def predict(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The posterior mean and variance of the latent function at ``points`` (m x d)."""
        points = np.asarray(points, dtype=float)
        ks = self._cross(points)
        mean = ks @ self.alpha_
        v = solve_triangular(self.chol_, ks.T, lower=True)
        var = np.maximum(1.0 - np.sum(v * v, axis=0), 1e-12)
        return self.mean_ + self.scale_ * mean, var * self.scale_**2

    def predict_joint(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The posterior mean and full covariance at ``points`` (for differences of cells)."""
        points = np.asarray(points, dtype=float)
        ks = self._cross(points)
        mean = ks @ self.alpha_
        v = solve_triangular(self.chol_, ks.T, lower=True)
        d2 = ((points[:, None, :] - points[None, :, :]) ** 2) @ (
            1.0 / np.square(self.length_scales_)
        )
        cov = _matern52(d2) - v.T @ v
        return self.mean_ + self.scale_ * mean, cov * self.scale_**2

    def loo_r2(self, y: np.ndarray) -> float:
        """Leave-one-out R² of the fit on its own targets (closed form), NaN below 3 points."""
        y = np.asarray(y, dtype=float)
        if len(y) < 3:
            return float("nan")
        inverse = cho_solve((self.chol_, True), np.eye(len(y)))
        residual = self.alpha_ / np.diag(inverse) * self.scale_
        total = float(np.sum((y - y.mean()) ** 2))
        return float(1.0 - np.sum(residual**2) / total) if total > 0 else float("nan")


@dataclass(frozen=True)
class PredictedChange:
    """What moving from one cell to another should do to the objective, with its interval."""

    current_value: float
    candidate_value: float
    improvement: float  # percent (log scale: of the current value), positive = better
    interval: tuple[float, float]  # percent, at ``level``
    level: float
    probability_better: float


def predicted_change(
    model: GaussianProcess,
    candidate: np.ndarray,
    current: np.ndarray,
    fresh_noise: tuple[float, float],
    *,
    log: bool,
    minimize: bool,
    level: float = 0.95,
) -> PredictedChange:
    """The change from ``current`` to ``candidate`` (points), as a fresh measurement would see it.

    The interval adds to the model's joint uncertainty about the two cells the variance a fresh
    median measurement of each carries (``fresh_noise``), so a confirmation run can check it.
    """
    mean, cov = model.predict_joint(np.vstack([candidate, current]))
    diff = float(mean[0] - mean[1])
    var = cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1] + fresh_noise[0] + fresh_noise[1]
    sd = math.sqrt(max(float(var), 1e-18))
    z = float(ndtri(0.5 + level / 2.0))
    gain = -diff if minimize else diff

    def percent(g: float) -> float:
        # On the log scale a gain g is a ratio: the change is (1 - e^-g) of the current value.
        return float(100.0 * (1.0 - math.exp(-g))) if log else float(g)

    same = bool(np.allclose(candidate, current))
    return PredictedChange(
        current_value=float(np.exp(mean[1]) if log else mean[1]),
        candidate_value=float(np.exp(mean[0]) if log else mean[0]),
        improvement=percent(gain),
        interval=(percent(gain - z * sd), percent(gain + z * sd)),
        level=level,
        probability_better=0.5 if same else float(ndtr(gain / sd)),
    )
