"""``PredictiveAnalyticsConfig``: the settings of the predictors, checked once at creation."""

from __future__ import annotations

from dataclasses import dataclass

from allele.errors import ValidationError, check_int, check_real


@dataclass
class PredictiveAnalyticsConfig:
    """How far ahead to predict, how sure the intervals are, how much history to use.

    ``prediction_horizon_minutes`` is the default horizon of ``predict``; ``horizons_minutes``
    those of ``PerformancePredictor``. ``season_length`` is the period in samples (None: detect
    it). ``max_history`` keeps the latest samples of each series. The LSTM settings apply to
    ``TimeSeriesForecaster``'s neural model only.
    """

    prediction_horizon_minutes: float = 60
    confidence_level: float = 0.95
    min_training_samples: int = 30
    max_history: int = 1000
    season_length: int | None = None
    horizons_minutes: tuple[float, ...] = (15, 60, 240)
    lstm_window: int = 48
    lstm_hidden_size: int = 16
    lstm_epochs: int = 60
    seed: int = 0

    def __post_init__(self) -> None:
        check_real(
            "prediction_horizon_minutes", self.prediction_horizon_minutes, 0, 1e7, low_open=True
        )
        check_real("confidence_level", self.confidence_level, 0, 1, low_open=True, high_open=True)
        check_int("min_training_samples", self.min_training_samples, 3, 10_000_000)
        check_int("max_history", self.max_history, self.min_training_samples, 10_000_000)
        if self.season_length is not None:
            check_int("season_length", self.season_length, 1, 100_000)
        if not self.horizons_minutes:
            raise ValidationError("horizons_minutes must name at least one horizon, got ()")
        for value in self.horizons_minutes:
            check_real("horizons_minutes", value, 0, 1e7, low_open=True)
        check_int("lstm_window", self.lstm_window, 2, 10_000)
        check_int("lstm_hidden_size", self.lstm_hidden_size, 1, 4096)
        check_int("lstm_epochs", self.lstm_epochs, 1, 100_000)
