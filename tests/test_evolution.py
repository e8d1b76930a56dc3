"""EvolutionEngine: configuration checks, the genetic algorithm's behaviour, both APIs."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import threading
import time
from typing import Any

import numpy as np
import pytest

from allele.errors import ValidationError
from allele.evolution import (
    EvolutionConfig,
    EvolutionEngine,
    EvolutionResult,
    GenerationStats,
)
from allele.fitness import PersonaTradeoff, TargetPersonality, VectorizedFitness, vectorized
from allele.genome import TRAIT_NAMES, ConversationalGenome, population_to_array

TARGET = {
    "empathy": 0.9,
    "engagement": 0.2,
    "technical_knowledge": 0.75,
    "creativity": 0.1,
    "conciseness": 0.6,
    "context_awareness": 0.35,
    "adaptability": 0.8,
    "personability": 0.05,
}


def _config(**overrides: Any) -> EvolutionConfig:
    base: dict[str, Any] = {"population_size": 30, "generations": 5, "seed": 11}
    return EvolutionConfig(**{**base, **overrides})


def _same_result(a: EvolutionResult, b: EvolutionResult) -> bool:
    return (
        np.array_equal(a.best.values, b.best.values)
        and a.best.fitness == b.best.fitness
        and np.array_equal(population_to_array(a.population), population_to_array(b.population))
        and np.array_equal(a.fitness, b.fitness)
        and [h.best_fitness for h in a.history] == [h.best_fitness for h in b.history]
        and a.evaluations == b.evaluations
    )


# -- configuration ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("population_size", 1, r"population_size must be an integer in \[2, 10000000\], got 1"),
        ("population_size", 10.0, "population_size must be an integer.*got float 10.0"),
        ("population_size", True, "population_size must be an integer.*got bool"),
        ("generations", -1, r"generations must be an integer in \[0, 10000000\], got -1"),
        ("generations", "5", "generations must be an integer.*got str"),
        ("mutation_rate", 1.5, r"mutation_rate must be a number in \[0, 1\], got 1.5"),
        ("mutation_rate", math.nan, r"mutation_rate must be a number in \[0, 1\], got nan"),
        ("mutation_rate", "0.1", r"mutation_rate must be a number in \[0, 1\], got str"),
        ("mutation_strength", 0.0, r"mutation_strength must be a number in \(0, 1\], got 0.0"),
        ("mutation_strength", 2.0, r"mutation_strength must be a number in \(0, 1\], got 2.0"),
        ("mutation_strength", None, r"mutation_strength must be a number in \(0, 1\].*NoneType"),
        ("crossover_rate", -0.1, r"crossover_rate must be a number in \[0, 1\], got -0.1"),
        ("crossover_rate", True, r"crossover_rate must be a number in \[0, 1\], got bool"),
        ("elitism", 30, r"elitism must be an integer in \[0, 29\], got 30"),
        ("elitism", -1, r"elitism must be an integer in \[0, 29\], got -1"),
        ("elitism", 1.0, r"elitism must be an integer in \[0, 29\], got float"),
        ("tournament_size", 0, r"tournament_size must be an integer in \[1, 30\], got 0"),
        ("tournament_size", 31, r"tournament_size must be an integer in \[1, 30\], got 31"),
        ("tournament_size", "3", r"tournament_size must be an integer in \[1, 30\], got str"),
        ("blend_alpha", 1.5, r"blend_alpha must be a number in \[0, 1\], got 1.5"),
        ("blend_alpha", -0.5, r"blend_alpha must be a number in \[0, 1\], got -0.5"),
        ("seed", -3, r"seed must be an integer in \[0, 9223372036854775807\], got -3"),
        ("seed", 1.5, r"seed must be an integer in \[0, .*got float"),
        ("target_fitness", math.inf, r"target_fitness must be a number in \(-inf, inf\), got inf"),
        ("target_fitness", math.nan, r"target_fitness must be a number in \(-inf, inf\)"),
        ("target_fitness", "high", r"target_fitness must be a number.*got str"),
    ],
)
def test_config_rejects_each_bad_field(field: str, value: object, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        _config(**{field: value})


def test_every_config_field_is_validated() -> None:
    # Each field of EvolutionConfig appears in the table above, so none goes unchecked.
    from dataclasses import fields

    checked = {
        mark.args[1][i][0]
        for mark in test_config_rejects_each_bad_field.pytestmark  # type: ignore[attr-defined]
        if mark.name == "parametrize"
        for i in range(len(mark.args[1]))
    }
    assert checked == {f.name for f in fields(EvolutionConfig)}


def test_config_accepts_the_bounds() -> None:
    config = EvolutionConfig(
        population_size=2,
        generations=0,
        mutation_rate=1.0,
        mutation_strength=1.0,
        crossover_rate=0.0,
        elitism=1,
        tournament_size=2,
        blend_alpha=0.0,
        seed=0,
        target_fitness=-5.0,
    )
    assert config.elitism == 1 and config.tournament_size == 2


def test_config_from_mapping_rejects_unknown_keys_and_round_trips() -> None:
    config = _config(mutation_rate=0.2)
    assert EvolutionConfig.from_mapping(config.to_dict()) == config
    with pytest.raises(ValidationError, match=r"unknown evolution config field\(s\) \['speed'\]"):
        EvolutionConfig.from_mapping({"speed": 3})
    with pytest.raises(ValidationError, match="must be a mapping"):
        EvolutionConfig.from_mapping([1])  # type: ignore[arg-type]


def test_engine_rejects_bad_arguments() -> None:
    with pytest.raises(ValidationError, match="config must be an EvolutionConfig"):
        EvolutionEngine({"population_size": 3})  # type: ignore[arg-type]
    engine = EvolutionEngine(_config())
    with pytest.raises(ValidationError, match="callback must be callable"):
        engine.add_callback(3)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="fitness_fn must be callable"):
        engine.run(None)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"size must be an integer in \[2, "):
        engine.initialize_population(1)
    with pytest.raises(ValidationError, match="is not registered"):
        engine.remove_callback(print)


async def test_evolve_rejects_bad_populations() -> None:
    engine = EvolutionEngine(_config(elitism=2, tournament_size=3))
    fit = TargetPersonality(TARGET)
    with pytest.raises(ValidationError, match="at least 2 genomes, got 1"):
        await engine.evolve([ConversationalGenome()], fit)
    with pytest.raises(ValidationError, match="item 1 is dict"):
        await engine.evolve([ConversationalGenome(), {"empathy": 1}], fit)  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="sequence of ConversationalGenome, got str"):
        await engine.evolve("genomes", fit)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"elitism must be in \[0, 1\] for a population of 2"):
        await engine.evolve(engine.initialize_population(2), fit)
    with pytest.raises(ValidationError, match=r"generations must be an integer"):
        await engine.evolve(engine.initialize_population(5), fit, generations=-1)


# -- the algorithm ---------------------------------------------------------------------------
def test_converges_to_target_personality() -> None:
    fit = TargetPersonality(TARGET)
    engine = EvolutionEngine(EvolutionConfig(population_size=100, generations=50, seed=3))
    result = engine.run(fit)
    assert result.best.fitness > 0.99
    assert np.abs(result.best.values - fit.target).max() < 0.03
    assert result.generations == 50 and len(result.history) == 51
    # the distance to the optimum shrinks at least tenfold from the best random genome
    assert 1 - result.history[-1].best_fitness < (1 - result.history[0].best_fitness) / 10
    assert result.history[-1].mean_fitness > result.history[0].mean_fitness + 0.3


def test_converges_to_tradeoff_optimum() -> None:
    fit = PersonaTradeoff(weight=0.3)
    best_values, best_fitness = fit.optimum
    result = EvolutionEngine(EvolutionConfig(population_size=100, generations=60, seed=4)).run(fit)
    assert result.best.fitness == pytest.approx(best_fitness, abs=2e-4)
    assert result.best.fitness <= best_fitness + 1e-12
    assert np.abs(result.best.values - best_values).max() < 0.05


def test_elitism_makes_best_fitness_monotone() -> None:
    result = EvolutionEngine(_config(generations=30, elitism=1, mutation_strength=0.3)).run(
        TargetPersonality(TARGET)
    )
    best = [h.best_fitness for h in result.history]
    assert all(b2 >= b1 for b1, b2 in itertools.pairwise(best))


def test_elites_survive_unchanged() -> None:
    fit = TargetPersonality(TARGET)
    engine = EvolutionEngine(_config(generations=1, elitism=3))
    population = engine.initialize_population()
    scores = fit(population_to_array(population))
    top = [population[i] for i in np.argsort(-scores)[:3]]
    asyncio.run(engine.evolve(population, fit))
    assert engine.last_result is not None
    survivors = {g.genome_id: g for g in engine.last_result.population}
    for elite in top:
        kept = survivors[elite.genome_id]
        assert np.array_equal(kept.values, elite.values)
        assert kept.generation == elite.generation


def test_selection_pressure_beats_random_drift() -> None:
    # With no selection (tournament 1) fitness drifts; with tournament 5 it climbs faster.
    fit = TargetPersonality(TARGET)
    drift = EvolutionEngine(_config(generations=15, tournament_size=1, elitism=0)).run(fit)
    pressure = EvolutionEngine(_config(generations=15, tournament_size=5, elitism=0)).run(fit)
    assert pressure.history[-1].mean_fitness > drift.history[-1].mean_fitness + 0.1


def test_no_variation_means_no_new_evaluations() -> None:
    calls: list[int] = []

    def counted(pop: np.ndarray) -> np.ndarray:
        calls.append(len(pop))
        return TargetPersonality(TARGET).evaluate(pop)

    config = _config(generations=4, mutation_rate=0.0, crossover_rate=0.0)
    result = EvolutionEngine(config).run(vectorized(counted))
    assert calls == [30]  # only the initial population: copies keep their parent's fitness
    assert result.evaluations == 30
    assert [h.evaluations for h in result.history] == [30, 0, 0, 0, 0]


def test_evaluations_are_counted_per_generation() -> None:
    rows: list[int] = []

    def counted(pop: np.ndarray) -> np.ndarray:
        rows.append(len(pop))
        return pop.mean(axis=1)

    result = EvolutionEngine(_config(generations=6, crossover_rate=1.0, elitism=2)).run(
        vectorized(counted)
    )
    assert [h.evaluations for h in result.history] == rows
    assert result.evaluations == sum(rows)
    assert rows[1:] == [28] * 6  # crossover_rate 1: every offspring changed


def test_statistics_match_the_population() -> None:
    seen: list[GenerationStats] = []
    engine = EvolutionEngine(_config(generations=3), callback=seen.append)
    result = engine.run(TargetPersonality(TARGET))
    last = seen[-1]
    fitness = np.array([g.fitness for g in result.population])
    assert last.best_fitness == fitness.max() and last.worst_fitness == fitness.min()
    assert last.mean_fitness == pytest.approx(fitness.mean())
    values = population_to_array(result.population)
    assert last.diversity == pytest.approx(values.std(axis=0).mean())
    assert [s.generation for s in seen] == [0, 1, 2, 3]
    assert all(s.duration_s >= 0 and s.population_size == 30 for s in seen)
    assert seen == engine.history == result.history
    assert set(last.to_dict()) >= {
        "best_fitness",
        "diversity",
        "evaluations",
        "duration_s",
        "timestamp",
    }


def test_generation_timestamps_are_wall_clock_end_times_in_order() -> None:
    engine = EvolutionEngine(_config(generations=20))
    before = time.time()
    result = engine.run(TargetPersonality(TARGET))
    after = time.time()
    stamps = np.array([s.timestamp for s in result.history])
    assert stamps.size == 21
    assert np.all(np.diff(stamps) > 0)  # strictly increasing within the run
    assert before <= stamps[0] and stamps[-1] <= after  # inside the run's wall-clock span
    # A generation starts after the previous one's end was read and its own end is read after
    # its duration: stamps are at least a duration apart (give or take a float's resolution at
    # epoch magnitude, ~0.24 us).
    durations = np.array([s.duration_s for s in result.history[1:]])
    assert np.all(np.diff(stamps) >= durations - 1e-6)
    assert result.history[-1].to_dict()["timestamp"] == stamps[-1]


def test_target_fitness_stops_early() -> None:
    result = EvolutionEngine(_config(population_size=60, generations=200, target_fitness=0.95)).run(
        TargetPersonality(TARGET)
    )
    assert result.best.fitness >= 0.95
    assert result.generations < 200
    assert result.history[-2].best_fitness < 0.95


# -- determinism and aliasing ----------------------------------------------------------------
def test_same_seed_same_result_and_different_seed_differs() -> None:
    fit = TargetPersonality(TARGET)
    a = EvolutionEngine(_config(generations=10)).run(fit)
    b = EvolutionEngine(_config(generations=10)).run(fit)
    c = EvolutionEngine(_config(generations=10, seed=12)).run(fit)
    assert _same_result(a, b)
    assert not _same_result(a, c)


def test_repeated_runs_on_one_engine_are_identical() -> None:
    engine = EvolutionEngine(_config(generations=8))
    fit = TargetPersonality(TARGET)
    assert _same_result(engine.run(fit), engine.run(fit))


def test_run_equals_initialize_then_evolve() -> None:
    fit = TargetPersonality(TARGET)
    ran = EvolutionEngine(_config(generations=7)).run(fit)
    engine = EvolutionEngine(_config(generations=7))
    best = asyncio.run(engine.evolve(engine.initialize_population(), fit))
    assert engine.last_result is not None
    assert _same_result(ran, engine.last_result)
    assert best == engine.last_result.best


def test_per_genome_and_vectorized_paths_agree() -> None:
    fit = TargetPersonality(TARGET)

    def per_genome(genome: ConversationalGenome) -> float:
        return float(fit(genome.values[None, :])[0])

    a = EvolutionEngine(_config(generations=6)).run(fit)
    b = EvolutionEngine(_config(generations=6)).run(per_genome)
    assert _same_result(a, b)


def test_best_genome_is_an_independent_copy_with_exact_fitness() -> None:
    fit = TargetPersonality(TARGET)
    engine = EvolutionEngine(_config(generations=10))
    result = engine.run(fit)
    best = result.best
    assert fit(best.values[None, :])[0] == best.fitness  # exactly, not approximately
    assert best.fitness == max(h.best_fitness for h in result.history)
    best.set_trait_value("empathy", 0.0)
    again = engine.best_genome
    assert again is not None and again.get_trait_value("empathy") != 0.0
    assert engine.best_genome is not engine.best_genome
    assert all(best is not g for g in result.population)


def test_no_genome_is_shared_between_individuals() -> None:
    engine = EvolutionEngine(_config(generations=5, mutation_rate=0.0, crossover_rate=0.0))
    population = engine.initialize_population()
    before = [g.to_dict() for g in population]
    result = asyncio.run(engine.evolve(population, TargetPersonality(TARGET)))
    assert [g.to_dict() for g in population] == before  # the input population is untouched
    final = engine.last_result.population if engine.last_result else []
    assert len({id(g) for g in final}) == len(final)
    assert len({g.genome_id for g in final}) == len(final)
    # copies without variation are still separate objects: changing one changes no other
    final[0].set_trait_value("empathy", 0.0 if final[0].get_trait_value("empathy") else 1.0)
    assert sum(
        g.get_trait_value("empathy") == final[0].get_trait_value("empathy") for g in final
    ) < len(final)
    assert result is not final[0]


def test_lineage_links_children_to_parents() -> None:
    engine = EvolutionEngine(_config(generations=3, elitism=0, crossover_rate=1.0))
    population = engine.initialize_population()
    asyncio.run(engine.evolve(population, TargetPersonality(TARGET)))
    assert engine.last_result is not None
    final = engine.last_result.population
    assert all(g.generation == 3 for g in final)
    assert all(len(g.parent_ids) == 2 for g in final)  # every pair crossed
    # generation-1 ids never appear in the final population, so parents are from generation 2
    assert all(p.endswith(tuple("0123456789")) for g in final for p in g.parent_ids)
    initial_ids = {g.genome_id for g in population}
    assert not initial_ids & {p for g in final for p in g.parent_ids}


def test_children_of_an_older_population_continue_its_generation_count() -> None:
    engine = EvolutionEngine(_config(generations=2, elitism=1))
    population = [g.copy() for g in engine.initialize_population()]
    for g in population:
        g.generation = 7
    asyncio.run(engine.evolve(population, TargetPersonality(TARGET)))
    assert engine.last_result is not None
    generations = sorted({g.generation for g in engine.last_result.population})
    assert generations[-1] == 9 and set(generations) <= {7, 8, 9}


def test_first_generation_parents_are_initial_genomes() -> None:
    engine = EvolutionEngine(_config(generations=1, elitism=0))
    population = engine.initialize_population()
    asyncio.run(engine.evolve(population, TargetPersonality(TARGET)))
    assert engine.last_result is not None
    ids = {g.genome_id for g in population}
    children = engine.last_result.population
    assert all(g.parent_ids and set(g.parent_ids) <= ids for g in children)
    assert all(g.genome_id not in ids for g in children)


# -- fitness errors --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (vectorized(lambda pop: np.full(len(pop), np.nan)), "non-finite fitness nan"),
        (vectorized(lambda pop: pop), r"returned shape \(30, 8\), expected \(30,\)"),
        (vectorized(lambda pop: pop[:, 0][:-1]), r"expected \(30,\)"),
        (lambda genome: math.inf, "non-finite fitness inf"),
        (lambda genome: "good", "must return a finite number, got str"),
        (lambda genome: None, "must return a finite number, got NoneType"),
    ],
)
def test_bad_fitness_raises_clear_error(fn: Any, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        EvolutionEngine(_config()).run(fn)


def test_marker_attribute_selects_the_vectorised_path() -> None:
    class Marked:
        vectorized = True

        def __call__(self, pop: np.ndarray) -> np.ndarray:
            return pop[:, 0]

    result = EvolutionEngine(_config(generations=3)).run(Marked())
    assert result.best.fitness == result.best.values[0]


def test_sync_function_returning_coroutine_is_rejected_by_run() -> None:
    async def score(genome: ConversationalGenome) -> float:
        return 0.5

    with pytest.raises(ValidationError, match="returned an awaitable"):
        EvolutionEngine(_config()).run(lambda genome: score(genome))


# -- callbacks -------------------------------------------------------------------------------
def test_failing_callbacks_are_counted_and_do_not_stop_evolution(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[int] = []

    def broken(stats: GenerationStats) -> None:
        raise RuntimeError("observer down")

    engine = EvolutionEngine(_config(generations=4))
    engine.add_callback(broken)
    with caplog.at_level(logging.WARNING, logger="allele.evolution"):
        result = engine.run(TargetPersonality(TARGET), callback=lambda s: seen.append(s.generation))
    assert seen == [0, 1, 2, 3, 4]
    assert engine.callback_errors == 5 and result.callback_errors == 5
    assert "observer down" in caplog.text
    engine.remove_callback(broken)
    engine.run(TargetPersonality(TARGET))
    assert engine.callback_errors == 5


def test_a_results_callback_errors_count_only_its_own_run() -> None:
    def broken(stats: GenerationStats) -> None:
        raise RuntimeError("observer down")

    engine = EvolutionEngine(_config(generations=2), callback=broken)
    first = engine.run(TargetPersonality(TARGET))
    second = engine.run(TargetPersonality(TARGET))
    assert (first.callback_errors, second.callback_errors) == (3, 3)  # not 3 then 6
    engine.remove_callback(broken)
    assert engine.run(TargetPersonality(TARGET)).callback_errors == 0
    assert engine.callback_errors == 6  # the engine's own count covers its whole life


async def test_async_callbacks_are_awaited_under_evolve() -> None:
    seen: list[int] = []

    async def observer(stats: GenerationStats) -> None:
        await asyncio.sleep(0)
        seen.append(stats.generation)

    async def broken(stats: GenerationStats) -> None:
        raise RuntimeError("async observer down")

    engine = EvolutionEngine(_config(generations=3), callback=observer)
    engine.add_callback(broken)
    await engine.evolve(engine.initialize_population(), TargetPersonality(TARGET))
    assert seen == [0, 1, 2, 3]
    assert engine.callback_errors == 4


# -- async API -------------------------------------------------------------------------------
async def test_documented_async_api() -> None:
    engine = EvolutionEngine(EvolutionConfig(population_size=50, generations=20, seed=5))
    population = engine.initialize_population(size=50)
    assert len(population) == 50 and all(isinstance(g, ConversationalGenome) for g in population)
    best = await engine.evolve(population, TargetPersonality(TARGET))
    assert isinstance(best, ConversationalGenome)
    assert best.fitness is not None and best.fitness > 0.9
    assert engine.generation == 20 and len(engine.history) == 21


async def test_async_per_genome_fitness_is_gathered_concurrently() -> None:
    fit = TargetPersonality(TARGET)
    in_flight = 0
    peak = 0

    async def slow_score(genome: ConversationalGenome) -> float:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return float(fit(genome.values[None, :])[0])

    engine = EvolutionEngine(_config(generations=3))
    best = await engine.evolve(engine.initialize_population(), slow_score)
    assert peak == 30  # the whole initial population was awaited at once
    reference = EvolutionEngine(_config(generations=3)).run(fit)
    assert np.array_equal(best.values, reference.best.values)
    assert best.fitness == reference.best.fitness


async def test_vectorised_work_runs_off_the_event_loop() -> None:
    loop_thread = threading.get_ident()
    threads: set[int] = set()

    def fitness(pop: np.ndarray) -> np.ndarray:
        threads.add(threading.get_ident())
        return pop.mean(axis=1)

    engine = EvolutionEngine(_config(generations=3))
    await engine.evolve(engine.initialize_population(), VectorizedFitness(fitness))
    assert threads and loop_thread not in threads


async def test_sync_per_genome_fitness_runs_off_the_event_loop() -> None:
    loop_thread = threading.get_ident()
    threads: set[int] = set()

    def fitness(genome: ConversationalGenome) -> float:
        threads.add(threading.get_ident())
        return genome.get_trait_value("empathy")

    engine = EvolutionEngine(_config(generations=2))
    best = await engine.evolve(engine.initialize_population(), fitness)
    assert loop_thread not in threads
    assert best.fitness == best.get_trait_value("empathy")


def test_run_drives_async_fitness_on_its_own_loop() -> None:
    async def score(genome: ConversationalGenome) -> float:
        return genome.get_trait_value("creativity")

    result = EvolutionEngine(_config(generations=5)).run(score)
    assert result.best.fitness == result.best.get_trait_value("creativity")
    assert result.generations == 5


async def test_run_inside_a_loop_with_async_fitness_points_to_evolve() -> None:
    async def score(genome: ConversationalGenome) -> float:
        return 0.0

    with pytest.raises(ValidationError, match=r"use `await engine\.evolve"):
        EvolutionEngine(_config()).run(score)


def test_per_genome_function_sees_lineage() -> None:
    seen: list[ConversationalGenome] = []

    def score(genome: ConversationalGenome) -> float:
        seen.append(genome)
        return genome.get_trait_value(TRAIT_NAMES[0])

    EvolutionEngine(_config(generations=2)).run(score)
    assert all(g.fitness is None for g in seen)
    assert all(g.generation == 0 for g in seen[:30])
    assert all(g.generation >= 1 and g.parent_ids for g in seen[30:])


# -- identity, exactness and determinism across every path ------------------------------------
def _assert_no_shared_objects(
    best: ConversationalGenome, population: list[ConversationalGenome], *others: object
) -> None:
    """No genome, and no genome's trait array, appears twice among best, population, others."""
    genomes = [best, *population, *(o for o in others if isinstance(o, ConversationalGenome))]
    assert len({id(g) for g in genomes}) == len(genomes)
    arrays = [g._values for g in genomes]
    for (i, a), (j, b) in itertools.combinations(enumerate(arrays), 2):
        assert not np.shares_memory(a, b), f"genomes {i} and {j} share their traits"


@pytest.mark.parametrize("kind", ["vectorised", "per-genome", "async per-genome"])
async def test_evolve_returns_an_unshared_best_with_exact_fitness(kind: str) -> None:
    fit = PersonaTradeoff(weight=0.4)

    def per_genome(genome: ConversationalGenome) -> float:
        return float(fit(genome.values[None, :])[0])

    async def async_per_genome(genome: ConversationalGenome) -> float:
        await asyncio.sleep(0)
        return per_genome(genome)

    fn = {"vectorised": fit, "per-genome": per_genome, "async per-genome": async_per_genome}[kind]
    # No variation: offspring are exact copies of their parents, the case most prone to aliasing.
    for overrides in ({}, {"mutation_rate": 0.0, "crossover_rate": 0.0}):
        engine = EvolutionEngine(_config(generations=6, **overrides))
        population = engine.initialize_population(size=30)
        best = await engine.evolve(population, fn)
        result = engine.last_result
        assert result is not None
        _assert_no_shared_objects(best, result.population, result.best, *population)
        assert best is not result.best and best == result.best
        # the traits give exactly the recorded fitness, re-evaluated both ways
        assert per_genome(best) == best.fitness
        assert fit(population_to_array([best]))[0] == best.fitness
        assert best.fitness == max(h.best_fitness for h in result.history)
        for g in result.population:
            assert per_genome(g) == g.fitness


def test_run_result_shares_no_genome_or_array() -> None:
    engine = EvolutionEngine(_config(generations=4, mutation_rate=0.0, crossover_rate=0.0))
    result = engine.run(TargetPersonality(TARGET))
    _assert_no_shared_objects(result.best, result.population, engine.best_genome)


def test_fitness_function_cannot_corrupt_the_run_through_its_genome() -> None:
    fit = TargetPersonality(TARGET)

    def vandal(genome: ConversationalGenome) -> float:
        score = float(fit(genome.values[None, :])[0])
        genome.set_trait_value("empathy", 0.0)  # must not leak into the population
        return score

    vandalised = EvolutionEngine(_config(generations=5)).run(vandal)
    clean = EvolutionEngine(_config(generations=5)).run(fit)
    assert _same_result(vandalised, clean)


@pytest.mark.parametrize("kind", ["vectorised", "async per-genome"])
async def test_evolve_is_deterministic_per_seed(kind: str) -> None:
    fit = TargetPersonality(TARGET)

    async def scored(genome: ConversationalGenome) -> float:
        # finish out of order: the result must not depend on completion order
        await asyncio.sleep(0.001 * (hash(genome.genome_id) % 3))
        return float(fit(genome.values[None, :])[0])

    fn = fit if kind == "vectorised" else scored

    async def once(seed: int) -> EvolutionResult:
        engine = EvolutionEngine(_config(generations=4, seed=seed))
        await engine.evolve(engine.initialize_population(size=30), fn)
        assert engine.last_result is not None
        return engine.last_result

    a, b, c = await once(21), await once(21), await once(22)
    assert _same_result(a, b)
    assert not _same_result(a, c)


# -- genome construction at the edges ---------------------------------------------------------
async def test_final_population_is_built_lazily_and_each_genome_once() -> None:
    from allele.evolution import LazyPopulation
    from allele.fitness import vectorized

    engine = EvolutionEngine(_config(generations=3))
    population = engine.initialize_population(size=40)
    fn = vectorized(lambda rows: 1.0 - np.abs(rows - 0.3).mean(axis=1))
    best = await engine.evolve(population, fn)
    result = engine.last_result
    assert result is not None
    final = result.population
    assert isinstance(final, LazyPopulation) and len(final) == 40
    assert final.built == 0  # nothing built until read
    first = final[0]
    assert final.built == 1 and final[0] is first and final[-1] is final[39]
    assert final.built == 2
    # Read back, the lazy genomes are what the run's arrays hold: fitness, traits, lineage.
    assert np.array_equal(population_to_array(final), engine._run.values)  # type: ignore[union-attr]
    assert [g.fitness for g in final] == result.fitness.tolist()
    assert final.built == 40
    assert max(g.fitness or 0.0 for g in final) <= best.fitness  # type: ignore[operator]
    assert final[1:3] == [final[1], final[2]] and final == list(final)
    with pytest.raises(IndexError):
        final[40]


def test_initial_population_genomes_have_unique_ids_and_own_rows() -> None:
    engine = EvolutionEngine(_config())
    population = engine.initialize_population(size=50)
    assert len({g.genome_id for g in population}) == 50
    before = population[1].get_trait_value("empathy")
    population[0].set_trait_value("empathy", 0.0)
    assert population[1].get_trait_value("empathy") == before
    for a, b in itertools.pairwise(population):
        assert not np.shares_memory(a._values, b._values)
