"""The design documents' predictors, analyzer and capacity planning."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from allele.errors import ValidationError
from allele.observability.ml_analytics import (
    ARIMAPredictor,
    CapacityPlanner,
    MLMetric,
    PerformancePredictor,
    PredictionType,
    PredictiveAnalyticsConfig,
    PredictiveAnalyzer,
    TimeSeriesForecaster,
    time_to_threshold,
)
from allele.observability.types import ComponentType

START = datetime(2026, 1, 1, tzinfo=UTC)


def metrics(values, name="fitness_score", kind=ComponentType.EVOLUTION_ENGINE, cid="engine"):
    return [
        MLMetric(START + timedelta(minutes=i), kind, cid, name, float(v))
        for i, v in enumerate(values)
    ]


def fitness_history(n: int = 300) -> list[MLMetric]:
    rng = np.random.default_rng(0)
    return metrics(0.5 + 0.001 * np.arange(n) + 0.01 * rng.normal(size=n))


async def test_the_design_documents_prediction_example_runs_as_written(capsys) -> None:
    time_series_data = fitness_history()
    # From here on: the example of ../shared/spec/3-ml-analytics.md, import path allele.
    from allele.observability.ml_analytics import (
        ARIMAPredictor,
        ComponentType,
        PredictiveAnalyticsConfig,
    )

    # Configure predictor
    config = PredictiveAnalyticsConfig(prediction_horizon_minutes=60, confidence_level=0.95)

    # Initialize predictor
    predictor = ARIMAPredictor(config)

    # Train on time series data
    await predictor.train(time_series_data)

    # Generate predictions
    prediction = await predictor.predict(
        component_type=ComponentType.EVOLUTION_ENGINE, metric_name="fitness_score"
    )

    print(f"Predicted value: {prediction.predicted_value}")
    print(f"Confidence interval: {prediction.confidence_interval}")
    # End of the example.
    out = capsys.readouterr().out
    assert "Predicted value: " in out and "Confidence interval: (" in out
    # The series rises 0.001 a minute: an hour past 0.799 is about 0.859.
    assert prediction.predicted_value == pytest.approx(0.859, abs=0.02)
    low, high = prediction.confidence_interval
    assert low < prediction.predicted_value < high
    assert prediction.horizon_minutes == 60 and prediction.confidence_level == 0.95
    assert prediction.timestamp == START + timedelta(minutes=299 + 60)
    assert prediction.prediction_type is PredictionType.PERFORMANCE_FORECAST


async def test_performance_predictor_gives_every_horizon_with_widening_intervals() -> None:
    rng = np.random.default_rng(1)
    cpu = metrics(50 + 10 * np.sin(np.arange(600) * 2 * np.pi / 60) + rng.normal(size=600), "cpu")
    predictor = PerformancePredictor(PredictiveAnalyticsConfig(horizons_minutes=(240, 15, 60)))
    await predictor.train({"system": cpu})
    results = await predictor.predict(ComponentType.EVOLUTION_ENGINE, "cpu")
    assert [r.horizon_minutes for r in results] == [15, 60, 240]
    assert all(r.prediction_type is PredictionType.RESOURCE_USAGE for r in results)
    widths = [r.confidence_interval[1] - r.confidence_interval[0] for r in results]
    assert widths[0] <= widths[-1]
    # The series has a 60-minute cycle: 15 minutes on from sample 599 is phase 14 of it.
    assert results[0].predicted_value == pytest.approx(
        50 + 10 * math.sin(2 * math.pi * 14 / 60), abs=2.5
    )


def test_predictors_name_what_is_missing() -> None:
    predictor = ARIMAPredictor().fit(fitness_history())
    with pytest.raises(ValidationError, match=r"no trained series.*trained: evolution_engine"):
        predictor.predict_now(ComponentType.NLP_AGENT, "latency")
    with pytest.raises(ValidationError, match="min_training_samples"):
        ARIMAPredictor().fit(fitness_history(5))
    both = fitness_history() + metrics(np.ones(100), cid="other")
    with pytest.raises(ValidationError, match="several components"):
        ARIMAPredictor().fit(both).predict_now(ComponentType.EVOLUTION_ENGINE, "fitness_score")
    with pytest.raises(ValidationError, match="confidence_level"):
        PredictiveAnalyticsConfig(confidence_level=1.0)
    with pytest.raises(ValidationError, match="MLMetric"):
        ARIMAPredictor().fit([1.0, 2.0])


def test_analyzer_finds_trend_season_and_change_points() -> None:
    rng = np.random.default_rng(0)
    analyzer = PredictiveAnalyzer()
    shifted = np.concatenate([rng.normal(0, 1, 300), rng.normal(4, 1, 300)])
    seasonal = shifted + 3 * np.sin(np.arange(600) * 2 * np.pi / 24)
    result = analyzer.analyze(seasonal)
    assert result.seasonality.period == 24 and result.seasonality.strength > 0.5
    assert len(result.change_points) == 1 and abs(result.change_points[0] - 300) <= 3
    noise = analyzer.analyze(rng.normal(size=500))
    assert not noise.trend.significant and noise.trend.direction == "none"
    assert noise.change_points == [] and noise.seasonality.period == 1
    rising = analyzer.analyze(0.02 * np.arange(400) + rng.normal(size=400))
    assert rising.trend.direction == "increasing" and rising.trend.p_value < 1e-6
    assert rising.trend.slope == pytest.approx(0.02, abs=0.005)


async def test_analyzer_dates_change_points_of_metrics() -> None:
    values = np.concatenate([np.zeros(100), np.full(100, 5.0)]) + 0.1 * np.sin(np.arange(200))
    result = await PredictiveAnalyzer().analyze_metric(
        metrics(values), ComponentType.EVOLUTION_ENGINE, "fitness_score"
    )
    assert result.change_points == [100]
    assert result.change_times == [START + timedelta(minutes=100)]


def test_time_to_threshold_of_a_leak() -> None:
    rng = np.random.default_rng(0)
    memory = 100 + 0.5 * np.arange(400) + rng.normal(0, 2, 400)  # last ~299.5, +0.5 a step
    crossing = time_to_threshold(memory, 350.0)
    assert crossing.direction == "up" and crossing.will_cross
    assert crossing.steps == pytest.approx(101, abs=15)
    assert crossing.earliest <= crossing.steps <= crossing.latest
    assert time_to_threshold(memory, 250.0, direction="up").already
    flat = time_to_threshold(100 + rng.normal(size=400), 1000.0, max_steps=500)
    assert not flat.will_cross and flat.steps == math.inf
    falling = time_to_threshold(-memory, -350.0)
    assert falling.direction == "down" and falling.steps == pytest.approx(crossing.steps, abs=15)
    with pytest.raises(ValidationError, match="direction"):
        time_to_threshold(memory, 350.0, direction="sideways")


async def test_capacity_planner_answers_in_minutes() -> None:
    rng = np.random.default_rng(0)
    # One sample every 5 minutes, rising 1 MB a sample.
    data = [
        MLMetric(START + timedelta(minutes=5 * i), ComponentType.SYSTEM, "host", "memory_mb", v)
        for i, v in enumerate(500 + np.arange(300.0) + rng.normal(0, 1, 300))
    ]
    planner = await CapacityPlanner().train(data)
    result = await planner.plan(ComponentType.SYSTEM, "memory_mb", threshold=900.0)
    assert result.prediction_type is PredictionType.CAPACITY_PLANNING
    assert result.predicted_value == pytest.approx(5 * 101, rel=0.15)
    low, high = result.confidence_interval
    assert low <= result.predicted_value <= high
    assert result.metadata["will_cross"] and result.metadata["threshold"] == 900.0


def test_time_series_forecaster_compares_its_models_on_unseen_data() -> None:
    rng = np.random.default_rng(0)
    y = 10 + 2 * np.sin(np.arange(400) * 2 * np.pi / 24) + 0.2 * rng.normal(size=400)
    config = PredictiveAnalyticsConfig(season_length=24)
    forecaster = TimeSeriesForecaster(config, models=("arima", "combination"), horizon=12)
    scores = forecaster.evaluate(y, origins=2)
    assert set(scores) == {"arima", "combination"}
    assert all(0 < s < 1 for s in scores.values())  # both beat the seasonal naive's noise
    forecasts = forecaster.fit(y).predict()
    assert forecasts["arima"].mean.shape == (12,) and forecasts["arima"].model.startswith("arima")
    with pytest.raises(ValidationError, match="models must be among"):
        TimeSeriesForecaster(models=("prophet",))
