"""An LSTM forecaster trained on the series itself (the ``torch`` extra, imported lazily).

The network reads the last ``window`` values of the seasonally adjusted, standardised series and
outputs the next ``horizon`` values at once (direct multi-step forecasting: no error feedback
through recursion). It is trained on the first 80% of the series' windows; the last 20% are held
out, and the errors there calibrate the interval per step, as for the statistical models, so the
interval is measured on data the network did not see. Training is full-batch Adam, seeded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from allele.errors import ValidationError, check_int, require
from allele.observability.ml_analytics.prediction.forecast import (
    MAX_HORIZON,
    Forecast,
    as_series,
    check_level,
)
from allele.observability.ml_analytics.prediction.intervals import empirical_bounds
from allele.observability.ml_analytics.prediction.season import (
    SeasonalProfile,
    detect_season,
    is_seasonal,
)

_HELD_OUT = 0.2


def _network(torch: Any, hidden_size: int, horizon: int) -> Any:
    class Network(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(1, hidden_size, batch_first=True)
            self.head = torch.nn.Linear(hidden_size, horizon)

        def forward(self, x: Any) -> Any:
            out, _ = self.lstm(x)
            return self.head(out[:, -1, :])

    return Network()


class LSTMForecaster:
    """LSTM with a direct multi-step head; scikit-learn's estimator contract.

    ``horizon`` is the longest forecast it will be asked for (the head's width).
    """

    def __init__(
        self,
        horizon: int = 24,
        season_length: int | None = None,
        level: float = 0.95,
        window: int = 48,
        hidden_size: int = 16,
        epochs: int = 60,
        learning_rate: float = 0.01,
        seed: int = 0,
    ) -> None:
        self.horizon = horizon
        self.season_length = season_length
        self.level = level
        self.window = window
        self.hidden_size = hidden_size
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.seed = seed

    def fit(self, y: ArrayLike) -> LSTMForecaster:
        """Train on ``y`` and calibrate the interval on its held-out tail."""
        torch: Any = require("torch", "torch")
        horizon = check_int("horizon", self.horizon, 1, MAX_HORIZON)
        window = check_int("window", self.window, 2, 100_000)
        values = as_series(y, min_length=window + horizon + 10)
        check_level(self.level)
        if self.season_length is None:
            period = detect_season(values)
        else:
            period = check_int("season_length", self.season_length, 1, MAX_HORIZON)
        period = period if is_seasonal(values, period) else 1
        profile = SeasonalProfile.fit(values, period) if period > 1 else SeasonalProfile.none()
        adjusted = values - profile.at(np.arange(len(values)))
        centre, scale = float(adjusted.mean()), float(adjusted.std()) or 1.0
        z = (adjusted - centre) / scale
        frames = np.lib.stride_tricks.sliding_window_view(z, window + horizon)
        inputs, targets = frames[:, :window], frames[:, window:]
        split = int(len(frames) * (1 - _HELD_OUT))
        if split < 1 or len(frames) - split < 1:
            raise ValidationError(f"the LSTM needs more than {window + horizon + 10} observations")
        threads = torch.get_num_threads()
        # One thread: the batches are small, and spinning worker threads on a busy machine
        # cost far more than they save.
        torch.set_num_threads(1)
        try:
            self._train(torch, inputs, targets, split, horizon)
        finally:
            torch.set_num_threads(threads)
        self.centre_, self.scale_, self.profile_, self.period_ = centre, scale, profile, period
        self.z_, self.n_, self.window_, self.horizon_ = z, len(values), window, horizon
        self.errors_: NDArray[np.float64] = self.held_out_errors_ * scale  # series' units
        return self

    def _train(
        self, torch: Any, inputs: NDArray, targets: NDArray, split: int, horizon: int
    ) -> None:
        torch.manual_seed(self.seed)
        net = _network(torch, check_int("hidden_size", self.hidden_size, 1, 4096), horizon)
        optimiser = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
        x = torch.tensor(inputs[:split, :, None], dtype=torch.float32)
        t = torch.tensor(targets[:split], dtype=torch.float32)
        for _ in range(check_int("epochs", self.epochs, 1, 100_000)):
            optimiser.zero_grad()
            loss = torch.nn.functional.mse_loss(net(x), t)
            loss.backward()
            optimiser.step()
        net.eval()
        with torch.no_grad():
            held = net(torch.tensor(inputs[split:, :, None], dtype=torch.float32)).numpy()
        self.held_out_errors_ = targets[split:] - held
        self.net_, self.torch_ = net, torch
        self.loss_ = float(loss.detach())

    def predict(self, horizon: int | None = None, level: float | None = None) -> Forecast:
        """The forecast from the end of the series (at most the fitted ``horizon`` steps)."""
        if not hasattr(self, "net_"):
            raise ValidationError("this forecaster is not fitted yet: call fit(y) first")
        horizon = (
            self.horizon_ if horizon is None else check_int("horizon", horizon, 1, MAX_HORIZON)
        )
        if horizon > self.horizon_:
            raise ValidationError(
                f"horizon must be at most the fitted horizon {self.horizon_}, got {horizon}"
            )
        level = check_level(self.level if level is None else level)
        torch = self.torch_
        with torch.no_grad():
            last = torch.tensor(self.z_[None, -self.window_ :, None], dtype=torch.float32)
            z: NDArray[np.float64] = net_output(self.net_, last)[:horizon]
        season = self.profile_.at(np.arange(self.n_, self.n_ + horizon))
        mean = z * self.scale_ + self.centre_ + season
        one_step = float(np.std(self.errors_[:, 0])) if len(self.errors_) > 1 else self.scale_
        low, high = empirical_bounds(self.errors_[:, :horizon], level, one_step)
        return Forecast(mean, mean + low, mean + high, level, self.period_, model="lstm")


def net_output(net: Any, x: Any) -> NDArray[np.float64]:
    """The network's forecast for one input window, as a float64 array."""
    return np.asarray(net(x).numpy()[0], dtype=np.float64)
