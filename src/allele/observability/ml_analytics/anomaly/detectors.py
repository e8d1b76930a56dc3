"""The design documents' batch detectors: ``IsolationForestDetector``, ``OneClassSVMDetector``
and ``EnsembleDetector``, configured by ``AnomalyDetectionConfig``.

``await detector.train(metrics_history)`` fits one model per series (component type, component
id, metric name) on the series' features (``features.py``: residuals against a robust baseline
and an EWMA forecast, rate of change, position in the day), never on raw values.
``await detector.detect_anomaly(metric)`` scores one new observation against its series' model
and returns an ``AnomalyResult`` when it is anomalous, else None (also None for a series that was
not trained: there is nothing to compare it with).

Scores are calibrated on the training rows: ``anomaly_score`` is the share of training rows the
new row is more anomalous than, so the decision threshold is ``1 - contamination`` whatever the
estimator. scikit-learn (the one-class SVM) is the ``analytics`` extra, imported when such a
model is first trained; the isolation forest is numpy only.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from allele.errors import ValidationError, check_int, check_real, require
from allele.observability.ml_analytics.anomaly.classify import (
    anomaly_shape,
    classify_anomaly,
    recommendations_for,
)
from allele.observability.ml_analytics.anomaly.features import FEATURE_NAMES, series_features
from allele.observability.ml_analytics.anomaly.iforest import FastIsolationForest
from allele.observability.ml_analytics.types import AnomalyResult, MLMetric
from allele.observability.types import AlertSeverity, ComponentType

SeriesKey = tuple[ComponentType, str, str]
_HISTORY = 120  # rows kept per series after training: the feature window and the shape


@dataclass
class AnomalyDetectionConfig:
    """Settings of the batch detectors.

    ``contamination``: the expected share of anomalies (the calibrated threshold is
    ``1 - contamination``); ``min_training_samples``: rows a series needs before it is modelled;
    ``window``: rows of the robust baseline; ``n_estimators``: trees of the isolation forest;
    ``random_state``: seed of the estimators (None: a fresh one each time).
    """

    contamination: float = 0.1
    min_training_samples: int = 50
    window: int = 30
    n_estimators: int = 100
    max_samples: int = 256
    random_state: int | None = 0

    def __post_init__(self) -> None:
        check_real("contamination", self.contamination, 0, 0.5, low_open=True)
        check_int("min_training_samples", self.min_training_samples, 10, 10**9)
        check_int("window", self.window, 5, 10_000)
        check_int("n_estimators", self.n_estimators, 1, 10_000)
        check_int("max_samples", self.max_samples, 8, 10**7)
        if self.window >= self.min_training_samples:
            raise ValidationError(
                f"window ({self.window}) must be smaller than min_training_samples "
                f"({self.min_training_samples})"
            )


@dataclass
class _SeriesModel:
    estimators: list[Any]
    calibration: list[npt.NDArray[np.float64]]  # sorted training scores, per estimator
    history: deque[float]
    epochs: deque[float]
    n_train: int
    seasonal: bool  # trained on two days or more: the position in the day is a feature


class _FeatureDetector:
    """Per-series models over features; subclasses say which estimators and how they score."""

    name = "feature_detector"

    def __init__(self, config: AnomalyDetectionConfig | None = None) -> None:
        self.config = config or AnomalyDetectionConfig()
        self.models: dict[SeriesKey, _SeriesModel] = {}

    # -- what a subclass provides -------------------------------------------------------------
    def _make_estimators(self, n_rows: int) -> list[Any]:
        raise NotImplementedError

    @staticmethod
    def _raw_scores(estimator: Any, features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        # Higher means more anomalous for every estimator here (score_samples is the opposite).
        return -np.asarray(estimator.score_samples(features), dtype=np.float64)

    # -- the API of the design documents ------------------------------------------------------
    @property
    def is_trained(self) -> bool:
        return bool(self.models)

    async def train(self, metrics_history: Sequence[MLMetric]) -> dict[str, int]:
        """Fit a model per series with at least ``min_training_samples`` rows.

        Returns ``{"series": modelled, "samples": rows used, "skipped": series too short}``;
        a ValidationError when no series is long enough.
        """
        groups: dict[SeriesKey, list[MLMetric]] = {}
        for m in metrics_history:
            if not isinstance(m, MLMetric):
                raise ValidationError(
                    f"metrics_history must hold MLMetric items, got {type(m).__name__}"
                )
            groups.setdefault((m.component_type, m.component_id, m.metric_name), []).append(m)
        need = self.config.min_training_samples
        fitted, samples, skipped = 0, 0, 0
        for key, rows in groups.items():
            if len(rows) < need:
                skipped += 1
                continue
            rows.sort(key=lambda m: m.timestamp)
            values = np.array([float(m.value) for m in rows])
            epochs = np.array([m.timestamp.timestamp() for m in rows])
            self.models[key] = self.fit_series(values, epochs)
            fitted += 1
            samples += len(rows)
        if not fitted:
            longest = max((len(r) for r in groups.values()), default=0)
            raise ValidationError(
                f"no series has min_training_samples={need} rows to train on (longest: {longest})"
            )
        return {"series": fitted, "samples": samples, "skipped": skipped}

    def fit_series(
        self, values: npt.NDArray[np.float64], epochs: npt.NDArray[np.float64] | None = None
    ) -> _SeriesModel:
        """Fit this detector's estimators on one series (its features) and calibrate them."""
        return self.fit_score_series(values, epochs)[0]

    def fit_score_series(
        self, values: npt.NDArray[np.float64], epochs: npt.NDArray[np.float64] | None = None
    ) -> tuple[_SeriesModel, npt.NDArray[np.float64]]:
        """Fit on one series and return the model with the calibrated scores of its own rows
        (each row's share of training rows it is more anomalous than), scoring them once."""
        # The position in the day only means something once a few days have been seen;
        # before that every new hour would look novel.
        seasonal = epochs is not None and len(epochs) > 1 and epochs[-1] - epochs[0] >= 2 * 86400
        features, _, _ = series_features(
            values, epochs if seasonal else None, window=self.config.window
        )
        estimators = self._make_estimators(len(features))
        calibration, ranks = [], []
        for est in estimators:
            est.fit(features)
            raw = self._raw_scores(est, features)
            cal = np.sort(raw)
            calibration.append(cal)
            ranks.append(np.searchsorted(cal, raw, side="right") / len(cal))
        keep = min(len(values), _HISTORY)
        model = _SeriesModel(
            estimators,
            calibration,
            deque(values[-keep:].tolist(), maxlen=_HISTORY),
            deque((epochs[-keep:] if epochs is not None else np.zeros(keep)).tolist(), _HISTORY),
            len(values),
            seasonal,
        )
        return model, np.mean(ranks, axis=0)

    def score_series(
        self,
        model: _SeriesModel,
        values: npt.NDArray[np.float64],
        epochs: npt.NDArray[np.float64] | None = None,
    ) -> npt.NDArray[np.float64]:
        """Calibrated scores in [0, 1] of every row of ``values`` after the feature window."""
        features, _, _ = series_features(
            values, epochs if model.seasonal else None, window=self.config.window
        )
        return self._calibrated(model, features)

    def _calibrated(
        self, model: _SeriesModel, features: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        ranks = [
            np.searchsorted(cal, self._raw_scores(est, features), side="right") / len(cal)
            for est, cal in zip(model.estimators, model.calibration, strict=True)
        ]
        return np.mean(ranks, axis=0)

    async def detect_anomaly(self, metric: MLMetric) -> AnomalyResult | None:
        """An AnomalyResult when ``metric`` is anomalous for its series, else None."""
        key = (metric.component_type, metric.component_id, metric.metric_name)
        model = self.models.get(key)
        value = float(metric.value)
        if not math.isfinite(value):
            raise ValidationError(f"metric value must be finite, got {metric.value!r}")
        if model is None:
            return None
        model.history.append(value)
        model.epochs.append(metric.timestamp.timestamp())
        window = self.config.window
        values = np.array(list(model.history)[-(window + 1) :])
        epochs = np.array(list(model.epochs)[-(window + 1) :])
        features, expected, scale = series_features(
            values, epochs if model.seasonal else None, window=window
        )
        score = float(self._calibrated(model, features[-1:])[0])
        threshold = 1.0 - self.config.contamination
        if score < threshold:
            return None
        recent = list(model.history)
        anomaly_type = classify_anomaly(metric.metric_name, recent)
        shape = anomaly_shape(recent)
        robust_z = float(features[-1, 0])
        # Confidence: how far past the threshold the score is, and how large the deviation.
        past = (score - threshold) / (1.0 - threshold) if threshold < 1 else 1.0
        confidence = float(np.clip(0.5 * past + 0.5 * (1 - math.exp(-abs(robust_z) / 4)), 0, 1))
        return AnomalyResult(
            timestamp=metric.timestamp,
            component_type=metric.component_type,
            component_id=metric.component_id,
            metric_name=metric.metric_name,
            anomaly_type=anomaly_type,
            anomaly_score=score,
            confidence=confidence,
            severity=severity_from_score(score, abs(robust_z)),
            actual_value=value,
            expected_value=float(expected[-1]),
            deviation=value - float(expected[-1]),
            threshold=threshold,
            context={
                "detector": self.name,
                "features": dict(zip(FEATURE_NAMES, map(float, features[-1]), strict=True)),
                "baseline_scale": float(scale[-1]),
                "training_samples": model.n_train,
                "shape": {
                    "direction": shape.direction,
                    "spike": shape.spike,
                    "shift": shape.shift,
                    "trend": shape.trend,
                },
                **metric.metadata,
            },
            recommendations=recommendations_for(anomaly_type),
        )


def severity_from_score(score: float, deviation_z: float = 0.0) -> AlertSeverity:
    """Severity of a detection from its calibrated score (and its deviation in robust units)."""
    if score >= 0.999 and deviation_z >= 6:
        return AlertSeverity.CRITICAL
    if score >= 0.99:
        return AlertSeverity.ERROR
    if score >= 0.95:
        return AlertSeverity.WARNING
    return AlertSeverity.INFO


class IsolationForestDetector(_FeatureDetector):
    """An isolation forest per series, on the series' features.

    The forest is ``iforest.FastIsolationForest`` (the paper's algorithm, every tree built at
    once in numpy: a model per series must be cheap to fit); ``n_estimators`` and
    ``max_samples`` are the paper's and scikit-learn's defaults.
    """

    name = "isolation_forest"

    def _make_estimators(self, n_rows: int) -> list[Any]:
        c = self.config
        return [FastIsolationForest(c.n_estimators, c.max_samples, c.random_state)]


class OneClassSVMDetector(_FeatureDetector):
    """scikit-learn's OneClassSVM (RBF kernel, ``nu`` = contamination) on scaled features."""

    name = "one_class_svm"

    def _make_estimators(self, n_rows: int) -> list[Any]:
        pipeline: Any = require("sklearn.pipeline", "analytics")
        preprocessing: Any = require("sklearn.preprocessing", "analytics")
        svm: Any = require("sklearn.svm", "analytics")
        return [
            pipeline.make_pipeline(
                preprocessing.RobustScaler(),
                svm.OneClassSVM(nu=self.config.contamination, gamma="scale"),
            )
        ]


class EnsembleDetector(_FeatureDetector):
    """The isolation forest and the one-class SVM together: the mean of their calibrated ranks.

    Each member's rank is its share of training rows a new row beats, so the two agree on scale
    and a row must look unusual to both to pass the threshold.
    """

    name = "ensemble"

    def __init__(
        self,
        config: AnomalyDetectionConfig | None = None,
        members: Sequence[_FeatureDetector] | None = None,
    ) -> None:
        super().__init__(config)
        self.members = (
            list(members)
            if members is not None
            else [
                IsolationForestDetector(self.config),
                OneClassSVMDetector(self.config),
            ]
        )
        if not self.members:
            raise ValidationError("an EnsembleDetector needs at least one member, got none")

    def _make_estimators(self, n_rows: int) -> list[Any]:
        return [est for m in self.members for est in m._make_estimators(n_rows)]
