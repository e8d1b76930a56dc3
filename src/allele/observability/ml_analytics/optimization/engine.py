"""The optimization engine: every kind of advice Allele can back with a measurement, ranked.

``await engine.optimize_system(metrics_history=..., predictions=..., current_configs=...)``
returns ``OptimizationRecommendation``s from:

* configuration tuning (``enable_ml_based``): the surrogate over stored suite runs
  (``benchmark_runs``, or the engine's ``store``) for each component of ``current_configs``;
* alert thresholds: each series with a threshold in ``current_configs[c]["alert_thresholds"]``
  that its history exceeds more often than ``target_false_alert_rate``;
* capacity scaling: each series with a limit in ``current_configs[c]["limits"]`` that its
  forecast reaches within ``prediction_horizon_hours`` (expected improvement: the share of the
  horizon whose upper forecast bound is past the limit; confidence: the forecast's probability
  of passing it), and ``predictions`` of the capacity planning type with a ``limit`` in their
  metadata (both figures: the prediction's probability of being past the limit);
* resource allocation: worker counts from runs that differ only in ``workers``;
* system settings: monitoring intervals from ``current_configs["monitoring"]``'s measured
  overhead;
* the rules of ``rule_file_path``.

Each is kept when its confidence reaches ``min_confidence_threshold`` and its expected
improvement ``min_expected_improvement``, then ranked by expected improvement times confidence
(``priority`` 1 first). Nothing is recommended without a measurement behind it: a component
with no stored runs gets no configuration advice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from scipy.stats import norm

from allele.errors import ValidationError
from allele.observability.benchmarking.model import SuiteRun
from allele.observability.ml_analytics.optimization.capacity import advise_capacity
from allele.observability.ml_analytics.optimization.config import OptimizationEngineConfig
from allele.observability.ml_analytics.optimization.history import MetricSeries, group_series
from allele.observability.ml_analytics.optimization.performance import PerformanceOptimizer
from allele.observability.ml_analytics.optimization.recommender import (
    ConfigurationAdvice,
    ConfigurationRecommender,
)
from allele.observability.ml_analytics.optimization.rules import Rule, fired, load_rules
from allele.observability.ml_analytics.optimization.thresholds import advise_threshold
from allele.observability.ml_analytics.types import (
    OptimizationCategory,
    OptimizationRecommendation,
    PredictionResult,
    PredictionType,
)
from allele.observability.types import ComponentType

logger = logging.getLogger("allele.ml_analytics.optimization")

# The benchmark suite component that measures each component type.
SUITE_COMPONENT = {
    ComponentType.EVOLUTION_ENGINE: "evolution",
    ComponentType.KRAKEN_LNN: "kraken",
    ComponentType.NLP_AGENT: "agent",
    ComponentType.CMR_MODEL: "cmr",
}


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


class OptimizationEngine:
    """Turns measured history, forecasts and benchmark runs into ranked recommendations."""

    def __init__(self, config: OptimizationEngineConfig | None = None, store: Any = None) -> None:
        self.config = config or OptimizationEngineConfig()
        self.store = store
        self.rules: list[Rule] = (
            load_rules(self.config.rule_file_path) if self.config.rule_file_path else []
        )
        self.recommender = ConfigurationRecommender()
        self.performance = PerformanceOptimizer()

    async def optimize_system(
        self,
        metrics_history: Mapping[str, Sequence[Any]] | None = None,
        predictions: Mapping[str, Any] | None = None,
        current_configs: Mapping[str, Mapping[str, Any]] | None = None,
        benchmark_runs: Mapping[str, Sequence[SuiteRun]] | None = None,
    ) -> list[OptimizationRecommendation]:
        """Ranked recommendations (see the module docstring); the work runs off the loop."""
        history = metrics_history or {}
        series = group_series(history, self.config.analysis_window_hours)
        configs = dict(current_configs or {})
        # Components are analysed in batches, each in a worker thread, so an event loop with
        # other work keeps answering between batches.
        keys = sorted({s.component for s in series} | set(configs))
        size = self.config.batch_optimization_size
        found: list[OptimizationRecommendation] = []
        for start in range(0, max(len(keys), 1), size):
            batch = set(keys[start : start + size])
            found += await asyncio.to_thread(
                self._optimize_batch,
                [s for s in series if s.component in batch],
                {k: v for k, v in configs.items() if k in batch},
                predictions or {},
                benchmark_runs,
            )
        found += await asyncio.to_thread(self._from_rules, series)
        return self._rank(found)

    # --- one batch of components --------------------------------------------------------

    def _optimize_batch(
        self,
        series: list[MetricSeries],
        configs: Mapping[str, Mapping[str, Any]],
        predictions: Mapping[str, Any],
        benchmark_runs: Mapping[str, Sequence[SuiteRun]] | None,
    ) -> list[OptimizationRecommendation]:
        out: list[OptimizationRecommendation] = []
        for s in series:
            config = configs.get(s.component, {})
            out += self._threshold(s, config.get("alert_thresholds", {}))
            out += self._capacity(s, config.get("limits", {}))
        for component, value in predictions.items():
            if component in {s.component for s in series} or component in configs:
                out += self._from_predictions(component, value)
        for component, config in configs.items():
            if component == "monitoring":
                out += self._intervals(config)
                continue
            runs = self._runs_for(component, series, benchmark_runs)
            if not runs:
                continue
            if self.config.enable_ml_based:
                out += self._configuration(component, config, runs, series)
            out += self._workers(component, config, runs)
        return out

    def _runs_for(
        self,
        component: str,
        series: Sequence[MetricSeries],
        benchmark_runs: Mapping[str, Sequence[SuiteRun]] | None,
    ) -> list[SuiteRun]:
        if benchmark_runs is not None:
            return list(benchmark_runs.get(component, ()))
        if self.store is None:
            return []
        from allele.observability.benchmarking import storage

        suite_component = self._suite_component(component, series)
        if suite_component is None:
            return []
        summaries = [
            r
            for r in storage.list_runs(self.store)
            if r.component == suite_component and r.status == "complete"
        ]
        if not summaries:
            return []
        newest = max(summaries, key=lambda r: r.created_at)
        return storage.runs_history(self.store, newest.name, limit=20)

    @staticmethod
    def _suite_component(component: str, series: Sequence[MetricSeries]) -> str | None:
        types = {s.component_type for s in series if s.component == component}
        with contextlib.suppress(ValueError):
            types.add(ComponentType(component))
        return next((SUITE_COMPONENT[t] for t in types if t in SUITE_COMPONENT), None)

    def _configuration(
        self,
        component: str,
        config: Mapping[str, Any],
        runs: Sequence[SuiteRun],
        series: Sequence[MetricSeries],
    ) -> list[OptimizationRecommendation]:
        by_suite: dict[str, list[SuiteRun]] = {}
        for run in runs:
            by_suite.setdefault(run.name, []).append(run)
        out = []
        for suite_runs in by_suite.values():
            names = set(suite_runs[-1].config.get("matrix", {}))
            current = {k: v for k, v in config.items() if k in names}
            objective = str(config.get("objective", "time_s"))
            try:
                advice = self.recommender.recommend(
                    suite_runs,
                    objective=objective,
                    constraints=list(config.get("constraints", [])),
                    current=current or None,
                )
            except ValidationError as exc:
                logger.info("no configuration advice for %s: %s", component, exc)
                continue
            if not advice.changes:
                continue
            out.append(self._configuration_recommendation(component, advice, series))
        return out

    def _configuration_recommendation(
        self, component: str, advice: ConfigurationAdvice, series: Sequence[MetricSeries]
    ) -> OptimizationRecommendation:
        changes = advice.changes
        low, high = advice.improvement_interval
        described = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items())
        types = {s.component_type for s in series if s.component == component}
        return OptimizationRecommendation(
            recommendation_id=_new_id(),
            category=OptimizationCategory.CONFIGURATION_TUNING,
            title=f"{component}: {described}",
            description=(
                f"{advice.objective} {advice.current_value:.4g} -> {advice.recommended_value:.4g} "
                f"expected ({advice.expected_improvement:+.1f}%, "
                f"{advice.confidence_level:.0%} interval {low:+.1f}% .. {high:+.1f}%); "
                + advice.rests_on()
            ),
            current_value={k: a for k, (a, _) in changes.items()},
            recommended_value={k: b for k, (_, b) in changes.items()},
            expected_improvement=advice.expected_improvement,
            confidence=advice.probability_better,
            implementation_steps=[
                f"Set {', '.join(f'{k} = {b!r}' for k, (_, b) in changes.items())} for {component}",
                "Confirm with a fresh measurement: allele bench optimize SUITE --budget N "
                "(it re-measures the winner against the current parameters)",
            ],
            estimated_effort="low",
            risk_level="low" if advice.recommended_measured else "medium",
            component_type=next(iter(types), _component_type(component)),
            expires_at=datetime.now(UTC) + timedelta(hours=self.config.analysis_window_hours),
        )

    def _workers(
        self, component: str, config: Mapping[str, Any], runs: Sequence[SuiteRun]
    ) -> list[OptimizationRecommendation]:
        out = []
        by_suite: dict[str, list[SuiteRun]] = {}
        for run in runs:
            by_suite.setdefault(run.name, []).append(run)
        for suite_runs in by_suite.values():
            current = config.get("workers")
            advice = self.performance.workers(
                suite_runs, current if isinstance(current, int) else None
            )
            if advice is None or advice.recommended_workers == advice.current_workers:
                continue
            walls = ", ".join(f"{w}: {s:.1f}s" for w, s in sorted(advice.wall_seconds.items()))
            out.append(
                OptimizationRecommendation(
                    recommendation_id=_new_id(),
                    category=OptimizationCategory.RESOURCE_ALLOCATION,
                    title=f"{advice.suite}: run with {advice.recommended_workers} workers",
                    description=(
                        f"measured wall time by workers {walls}; parallel efficiency "
                        f"{advice.efficiency:.0%} at {advice.recommended_workers}"
                    ),
                    current_value=advice.current_workers,
                    recommended_value=advice.recommended_workers,
                    expected_improvement=advice.expected_improvement,
                    # Wall times of single runs: no spread is measured, so keep it modest.
                    confidence=min(0.9, 0.5 + 0.1 * len(advice.wall_seconds)),
                    implementation_steps=[
                        f"Set ALLELE_BENCHMARK_WORKERS={advice.recommended_workers} "
                        f"(or workers = {advice.recommended_workers} in the suite file)"
                    ],
                    component_type=_component_type(component),
                )
            )
        return out

    def _threshold(
        self, series: MetricSeries, thresholds: Mapping[str, Any]
    ) -> list[OptimizationRecommendation]:
        spec = thresholds.get(series.metric_name)
        if spec is None:
            return []
        if isinstance(spec, Mapping):
            current, above = spec.get("threshold"), spec.get("operator", ">") in (">", ">=")
        else:
            current, above = spec, True
        if not isinstance(current, int | float) or not math.isfinite(current):
            raise ValidationError(
                f"alert threshold of {series.component}.{series.metric_name} must be a finite "
                f"number, got {current!r}"
            )
        advice = advise_threshold(
            series, float(current), self.config.target_false_alert_rate, above
        )
        if advice is None:
            return []
        return [
            OptimizationRecommendation(
                recommendation_id=_new_id(),
                category=OptimizationCategory.ALERT_THRESHOLDS,
                title=(
                    f"{series.component_id}.{series.metric_name}: alert threshold "
                    f"{advice.current:.4g} -> {advice.recommended:.4g}"
                ),
                description=(
                    f"the last {self.config.analysis_window_hours} h exceed "
                    f"{advice.current:.4g} in "
                    f"{advice.current_rate:.1%} of {len(series.values)} samples "
                    f"({advice.effective_samples:.0f} effective); "
                    f"{advice.recommended:.4g} is exceeded at the target "
                    f"{advice.target_rate:.1%}"
                ),
                current_value=advice.current,
                recommended_value=advice.recommended,
                expected_improvement=advice.expected_improvement,
                confidence=advice.confidence,
                implementation_steps=[
                    f"Change the alert rule on {series.metric_name} to threshold "
                    f"{advice.recommended:.4g}"
                ],
                component_type=series.component_type,
            )
        ]

    def _capacity(
        self, series: MetricSeries, limits: Mapping[str, Any]
    ) -> list[OptimizationRecommendation]:
        limit = limits.get(series.metric_name)
        if limit is None:
            return []
        if not isinstance(limit, int | float) or not math.isfinite(limit):
            raise ValidationError(
                f"limit of {series.component}.{series.metric_name} must be a finite number, "
                f"got {limit!r}"
            )
        advice = advise_capacity(series, float(limit), self.config.prediction_horizon_hours)
        if advice is None or advice.earliest_hours is None:
            return []

        def hours(value: float | None) -> str:
            return f"beyond {advice.horizon_hours:.1f} h" if value is None else f"{value:.1f} h"

        return [
            OptimizationRecommendation(
                recommendation_id=_new_id(),
                category=OptimizationCategory.CAPACITY_SCALING,
                title=(
                    f"{series.component_id}.{series.metric_name} reaches {advice.limit:.4g} in "
                    f"{hours(advice.expected_hours)}"
                ),
                description=(
                    f"forecast crossing: earliest {hours(advice.earliest_hours)}, expected "
                    f"{hours(advice.expected_hours)}, latest {hours(advice.latest_hours)}; the "
                    f"95% upper bound peaks at {advice.peak_upper:.4g}"
                ),
                current_value=advice.limit,
                recommended_value=advice.peak_upper,
                # The share of the horizon at risk (upper bound beyond the limit): what
                # scaling in time removes.
                expected_improvement=100.0 * advice.at_risk_share,
                confidence=advice.probability,
                implementation_steps=[
                    f"Raise the {series.metric_name} limit to at least {advice.peak_upper:.4g}, "
                    f"or scale out before {hours(advice.earliest_hours)} from now"
                ],
                risk_level="medium",
                component_type=series.component_type,
                expires_at=datetime.now(UTC) + timedelta(hours=advice.horizon_hours),
            )
        ]

    def _from_predictions(self, component: str, value: Any) -> list[OptimizationRecommendation]:
        items = value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
        out = []
        for p in items:
            if not isinstance(p, PredictionResult):
                continue
            if p.prediction_type != PredictionType.CAPACITY_PLANNING:
                continue
            limit = p.metadata.get("limit")
            if not isinstance(limit, int | float):
                continue
            low, high = p.confidence_interval
            if high < limit:
                continue
            # The chance that the metric is past the limit at that horizon, from the
            # prediction's own interval (normal, at its confidence level).
            z = float(norm.ppf(0.5 + p.confidence_level / 2.0))
            sd = max((high - low) / (2.0 * z), 1e-12)
            share = float(norm.sf((limit - p.predicted_value) / sd))
            out.append(
                OptimizationRecommendation(
                    recommendation_id=_new_id(),
                    category=OptimizationCategory.CAPACITY_SCALING,
                    title=(
                        f"{p.component_id}.{p.metric_name} may reach {limit:.4g} within "
                        f"{p.horizon_minutes:.0f} min"
                    ),
                    description=(
                        f"predicted {p.predicted_value:.4g} (interval {low:.4g} .. {high:.4g}) "
                        f"by {p.model_name or 'the predictor'}"
                    ),
                    current_value=limit,
                    recommended_value=high,
                    expected_improvement=100.0 * share,
                    confidence=share,
                    implementation_steps=[f"Raise the limit to at least {high:.4g} or scale out"],
                    component_type=p.component_type,
                )
            )
        return out

    def _intervals(self, monitoring: Mapping[str, Any]) -> list[OptimizationRecommendation]:
        out = []
        for advice in self.performance.intervals(monitoring, self.config.overhead_budget_percent):
            out.append(
                OptimizationRecommendation(
                    recommendation_id=_new_id(),
                    category=OptimizationCategory.SYSTEM_SETTINGS,
                    title=f"{advice.setting} {advice.current:g} s -> {advice.recommended:g} s",
                    description=(
                        f"measured monitoring overhead {advice.overhead_percent:.2f}% of wall time "
                        f"against a budget of {advice.budget_percent:.2f}%; periodic work costs "
                        "in proportion to 1 / interval"
                    ),
                    current_value=advice.current,
                    recommended_value=advice.recommended,
                    expected_improvement=advice.expected_improvement,
                    confidence=advice.confidence,
                    implementation_steps=[
                        f"Set ALLELE_{advice.setting.upper()}={advice.recommended:g}",
                        "Re-measure with benchmarks/bench_overhead.py",
                    ],
                    component_type=ComponentType.SYSTEM,
                )
            )
        return out

    def _from_rules(self, series: list[MetricSeries]) -> list[OptimizationRecommendation]:
        out = []
        for rule, s, value in fired(self.rules, series):
            out.append(
                OptimizationRecommendation(
                    recommendation_id=_new_id(),
                    category=rule.category,
                    title=rule.title,
                    description=(
                        f"{rule.description} (rule {rule.name!r}: {s.component_id}."
                        f"{s.metric_name} {rule.statistic} = {value:.4g} {rule.operator} "
                        f"{rule.threshold:g})"
                    ).strip(),
                    current_value=value,
                    recommended_value=rule.recommended_value,
                    expected_improvement=rule.expected_improvement,
                    confidence=rule.confidence,
                    implementation_steps=list(rule.steps),
                    estimated_effort=rule.estimated_effort,
                    risk_level=rule.risk_level,
                    component_type=s.component_type,
                )
            )
        return out

    # --- ranking --------------------------------------------------------------------------

    def _rank(self, found: list[OptimizationRecommendation]) -> list[OptimizationRecommendation]:
        kept = [
            r
            for r in found
            if r.confidence >= self.config.min_confidence_threshold
            and r.expected_improvement >= self.config.min_expected_improvement
        ]
        risk = {"low": 1.0, "medium": 0.8, "high": 0.6}
        kept.sort(
            key=lambda r: r.expected_improvement * r.confidence * risk.get(r.risk_level, 0.6),
            reverse=True,
        )
        for i, r in enumerate(kept, start=1):
            r.priority = i
        return kept


def _component_type(component: str) -> ComponentType:
    try:
        return ComponentType(component)
    except ValueError:
        return ComponentType.SYSTEM
