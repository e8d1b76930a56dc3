"""The recommender, the advice of each category and the engine that ranks them."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from allele.errors import ConfigurationError, ValidationError
from allele.observability.benchmarking.model import CellResult, SuiteRun
from allele.observability.ml_analytics import (
    MLMetric,
    OptimizationCategory,
    OptimizationEngine,
    OptimizationEngineConfig,
)
from allele.observability.ml_analytics.optimization import (
    ConfigurationRecommender,
    PerformanceOptimizer,
)
from allele.observability.ml_analytics.optimization.history import group_series
from allele.observability.ml_analytics.optimization.rules import load_rules
from allele.observability.ml_analytics.optimization.thresholds import (
    advise_threshold,
    effective_samples,
)
from allele.observability.types import ComponentType

START = datetime(2026, 1, 1, tzinfo=UTC)
MATRIX = {"population_size": [50, 100, 200, 400], "mutation_rate": [0.05, 0.1, 0.2]}


def _time(pop: int, rate: float) -> float:
    return 1e-3 * pop / 50 * (1 + 2 * abs(rate - 0.1))


def _fitness(pop: int, rate: float) -> float:
    return 0.6 + 0.1 * np.log2(pop / 50) - abs(rate - 0.1)


def _run(cells: list[tuple[int, float]] | None = None, seed: int = 0, **config: object) -> SuiteRun:
    rng = np.random.default_rng(seed)
    chosen = cells or [(p, r) for p in MATRIX["population_size"] for r in MATRIX["mutation_rate"]]
    out = []
    for pop, rate in chosen:
        noise = np.exp(rng.normal(0, 0.02, 10))
        out.append(
            CellResult(
                params={"population_size": pop, "mutation_rate": rate},
                samples={"time_s": list(_time(pop, rate) * noise)},
                metrics={"best_fitness": _fitness(pop, rate)},
            )
        )
    return SuiteRun(
        name="evo", component="evolution", cells=out, config={"matrix": MATRIX, **config}
    )


# --- the configuration recommender ----------------------------------------------------------


def test_recommends_the_fastest_cell_with_an_interval_that_holds_the_truth() -> None:
    advice = ConfigurationRecommender().recommend(
        [_run()], current={"population_size": 200, "mutation_rate": 0.2}
    )
    assert advice.recommended_params == {"population_size": 50, "mutation_rate": 0.1}
    truth = 100 * (1 - _time(50, 0.1) / _time(200, 0.2))
    low, high = advice.improvement_interval
    assert low <= truth <= high
    assert abs(advice.expected_improvement - truth) < 3
    assert advice.cells_measured == advice.cells_in_grid == 12
    assert advice.model_fit > 0.9
    assert advice.recommended_measured
    assert advice.changes == {"population_size": (200, 50), "mutation_rate": (0.2, 0.1)}


def test_constraints_hold_on_the_recommendation() -> None:
    advice = ConfigurationRecommender().recommend(
        [_run()], constraints=["best_fitness>=0.75"], current={"population_size": 400}
    )
    pop, rate = advice.recommended_params.values()
    assert _fitness(pop, rate) >= 0.75
    # The cheapest cell that meets it: population 200 at the best rate.
    assert advice.recommended_params == {"population_size": 200, "mutation_rate": 0.1}


def test_a_quality_objective_is_maximised() -> None:
    advice = ConfigurationRecommender().recommend([_run()], objective="best_fitness")
    assert not advice.minimize
    assert advice.recommended_params == {"population_size": 400, "mutation_rate": 0.1}


def test_unmeasured_cells_are_predicted_and_said_to_be() -> None:
    measured = [(50, 0.05), (50, 0.2), (100, 0.1), (200, 0.05), (400, 0.2), (400, 0.1)]
    advice = ConfigurationRecommender().recommend(
        [_run(measured)], current={"population_size": 400}
    )
    assert advice.cells_measured == 6 and advice.cells_in_grid == 12
    assert advice.recommended_params["population_size"] == 50
    assert "6 of 12 cells measured" in advice.rests_on()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"objective": "nope"}, "no measured cell has the objective 'nope'"),
        ({"constraints": ["best_fitness>=2"]}, "no cell of the grid meets"),
        ({"constraints": ["fitness about 1"]}, "not of the form NAME<=NUMBER"),
        ({"current": {"generations": 3}}, r"names \['generations'\]"),
        ({"current": {"population_size": 75}}, "is not a cell of the grid"),
    ],
)
def test_bad_requests_are_refused_clearly(kwargs: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ConfigurationRecommender().recommend([_run()], **kwargs)


# --- thresholds -------------------------------------------------------------------------


def _series(values: np.ndarray, name: str = "latency_ms", component: str = "agent") -> list:
    return [
        MLMetric(START + timedelta(seconds=10 * i), ComponentType.NLP_AGENT, component, name, v)
        for i, v in enumerate(values)
    ]


def test_a_threshold_exceeded_too_often_is_raised_to_the_target_quantile() -> None:
    rng = np.random.default_rng(0)
    values = rng.gamma(4.0, 5.0, 4000)
    (series,) = group_series({"agent": _series(values)}, 24)
    current = float(np.quantile(values, 0.9))  # 10 % of healthy samples alert
    advice = advise_threshold(series, current, target_rate=0.01)
    assert advice is not None
    assert advice.recommended == pytest.approx(np.quantile(values, 0.99))
    assert advice.current_rate == pytest.approx(0.1, abs=0.005)
    assert advice.expected_improvement == pytest.approx(90, abs=1)
    assert advice.confidence > 0.999
    # Already at the target: nothing to say.
    assert advise_threshold(series, float(np.quantile(values, 0.995)), 0.01) is None


def test_correlated_samples_count_for_less() -> None:
    rng = np.random.default_rng(1)
    white = rng.normal(size=2000)
    sticky = np.zeros(2000)
    for i in range(1, 2000):
        sticky[i] = 0.95 * sticky[i - 1] + white[i]
    assert effective_samples(white) > 1500
    assert effective_samples(sticky) < 100


# --- rules ------------------------------------------------------------------------------


RULE = {
    "name": "slow",
    "metric": "latency_ms",
    "statistic": "p95",
    "operator": ">",
    "threshold": 30,
    "category": "performance_tuning",
    "title": "Agent latency above 30 ms at p95",
    "expected_improvement": 20,
    "confidence": 0.8,
}


def test_rules_load_from_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "rules.toml"
    toml.write_text(
        "[[rule]]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in RULE.items()) + "\n"
    )
    js = tmp_path / "rules.json"
    js.write_text(json.dumps([RULE]))
    assert load_rules(toml) == load_rules(js)
    assert load_rules(js)[0].category == OptimizationCategory.PERFORMANCE_TUNING


def test_a_bad_rule_file_lists_every_problem_one_per_line(tmp_path: Path) -> None:
    bad = dict(RULE, operator="~", confidence=3, statistic="p200", colour="red")
    del bad["title"]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rule": [bad]}))
    with pytest.raises(ConfigurationError) as info:
        load_rules(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 5
    for where in ("operator", "confidence", "statistic", "title", "colour"):
        assert any(f"rule.0.{where}" in line for line in lines), where


def test_unreadable_and_malformed_rule_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read rule file"):
        load_rules(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[rule]\nname = ")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_rules(broken)


# --- the engine -------------------------------------------------------------------------


def _optimize(engine: OptimizationEngine, **kwargs: object) -> list:
    return asyncio.run(engine.optimize_system(**kwargs))  # type: ignore[arg-type]


def test_engine_ranks_every_kind_of_backed_advice(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([RULE]))
    rng = np.random.default_rng(2)
    latency = 20 + rng.gamma(2.0, 4.0, 2000)
    engine = OptimizationEngine(OptimizationEngineConfig(rule_file_path=rules))
    recs = _optimize(
        engine,
        metrics_history={"agent": _series(latency)},
        predictions={},
        current_configs={
            "agent": {"alert_thresholds": {"latency_ms": 30.0}},
            "evolution_engine": {"population_size": 400, "mutation_rate": 0.2},
            "monitoring": {
                "collection_interval": 10,
                "flush_interval": 5,
                "overhead_percent": 1.8,
                "overhead_interval": [1.4, 2.2],
            },
        },
        benchmark_runs={"evolution_engine": [_run()]},
    )
    categories = {r.category for r in recs}
    assert categories == {
        OptimizationCategory.ALERT_THRESHOLDS,
        OptimizationCategory.CONFIGURATION_TUNING,
        OptimizationCategory.SYSTEM_SETTINGS,
        OptimizationCategory.PERFORMANCE_TUNING,
    }
    assert [r.priority for r in recs] == list(range(1, len(recs) + 1))
    scores = [r.expected_improvement * r.confidence for r in recs]
    assert scores[0] == max(scores)
    config = next(r for r in recs if r.category == OptimizationCategory.CONFIGURATION_TUNING)
    assert config.recommended_value == {"population_size": 50, "mutation_rate": 0.1}
    assert config.component_type == ComponentType.EVOLUTION_ENGINE
    intervals = {
        r.title.split()[0]: r.recommended_value
        for r in recs
        if r.category == OptimizationCategory.SYSTEM_SETTINGS
    }
    assert intervals == {"collection_interval": 20.0, "flush_interval": 10.0}
    for r in recs:
        assert r.confidence >= 0.7 and r.expected_improvement >= 5.0


def test_no_measurement_no_configuration_advice() -> None:
    engine = OptimizationEngine(OptimizationEngineConfig(enable_ml_based=True))
    recs = _optimize(
        engine,
        metrics_history={},
        predictions={},
        current_configs={"evolution_engine": {"population_size": 100}},
    )
    assert recs == []


def test_ml_based_off_drops_the_learned_advice() -> None:
    engine = OptimizationEngine(OptimizationEngineConfig(enable_ml_based=False))
    recs = _optimize(
        engine,
        current_configs={"evolution_engine": {"population_size": 400}},
        benchmark_runs={"evolution_engine": [_run()]},
    )
    assert recs == []


def test_thresholds_filter_on_confidence_and_improvement() -> None:
    base = {
        "current_configs": {"evolution_engine": {"population_size": 100}},
        "benchmark_runs": {"evolution_engine": [_run()]},
    }
    assert _optimize(OptimizationEngine(), **base)
    strict = OptimizationEngine(OptimizationEngineConfig(min_expected_improvement=99.0))
    assert _optimize(strict, **base) == []


def test_worker_counts_from_measured_scaling() -> None:
    runs = []
    for workers, wall in ((1, 40.0), (2, 22.0), (4, 21.0)):
        run = _run(seed=workers, workers=workers)
        run.created_at = START + timedelta(hours=workers)
        run.cells[0].started_at = START
        run.cells[-1].finished_at = START + timedelta(seconds=wall)
        runs.append(run)
    advice = PerformanceOptimizer().workers(runs, current=1)
    assert advice is not None
    assert advice.recommended_workers == 4
    assert advice.expected_improvement == pytest.approx(100 * (1 - 21 / 40))
    assert advice.efficiency == pytest.approx((40 / 21) / 4)
    assert PerformanceOptimizer().workers(runs[:1]) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("min_confidence_threshold", 1.5),
        ("min_expected_improvement", -1),
        ("batch_optimization_size", 0),
        ("analysis_window_hours", 2.5),
        ("enable_ml_based", "yes"),
    ],
)
def test_config_refuses_bad_values_naming_them(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=field):
        OptimizationEngineConfig(**{field: value})  # type: ignore[arg-type]


def test_design_documents_workflow_steps_6_and_7_run_as_written() -> None:
    # Steps 6-7 of the end-to-end workflow of the design documents.
    base_time = datetime.now(UTC)
    metrics = [
        MLMetric(
            timestamp=base_time + timedelta(minutes=i),
            component_type=ComponentType.EVOLUTION_ENGINE,
            component_id="test_engine",
            metric_name="fitness_score",
            value=0.8 + 0.1 * float(np.random.normal()),
        )
        for i in range(100)
    ]
    optimizer = OptimizationEngine(OptimizationEngineConfig(enable_ml_based=True))

    async def steps() -> list:
        predictions: dict = {}
        configs = {"evolution_engine": {"population_size": 100}}
        recommendations = await optimizer.optimize_system(
            metrics_history={"evolution_engine": metrics},
            predictions=predictions,
            current_configs=configs,
        )
        for rec in recommendations[:3]:
            print(f"\nRecommendation: {rec.title}")
            print(f"Expected improvement: {rec.expected_improvement:.1f}%")
        return recommendations

    assert isinstance(asyncio.run(steps()), list)
