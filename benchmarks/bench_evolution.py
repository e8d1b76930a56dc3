"""One generation of the genetic algorithm at population 1000: Allele vs DEAP, same algorithm.

Both sides run the same generational algorithm: tournament selection (3 contestants, with
replacement, over the whole population), blend crossover (``cxBlend``, alpha 0.5) of
consecutive pairs with probability 0.7, Gaussian mutation (per-trait probability 0.1, sd 0.1)
of every offspring, clipping to [0, 1], elitism 2, and re-evaluation of exactly the offspring
that changed. The fitness is closeness to the same target personality; DEAP evaluates it once
per individual, as DEAP does, with two implementations of the same formula:

* ``deap-python``: plain Python ``math`` over the 8 traits (what a DEAP user would write; the
  fastest per-individual form -- the headline ratio uses it, so the ratio is not inflated);
* ``deap-numpy``: our ``TargetPersonality`` object called on a 1 x 8 array.

A generation is timed the same way on both sides: from the end of one generation to the end of
the next (selection to the next population with its fitness); ours from one per-generation
callback to the next, so nothing the engine does per generation is left out. Medians over
generations. A quality check runs both for the same number of generations over several seeds:
equal algorithms reach similar fitness.

A second, short-run comparison times what a user's whole call costs: a fresh population of 1000
and five generations through the async API (``population = engine.initialize_population()``,
``await engine.evolve(population, vectorized(fn))``), against DEAP building and evaluating a
population of 1000 and breeding five generations. At that length the genome objects at the
edges (built at the start, the final population at the end) are a visible share of a run, so
this line is the one that checks their cost. Runs alternate (ours, DEAP, ours...) in one
process; the ratio is of medians.

Run: ``.venv/bin/python benchmarks/bench_evolution.py [--quick]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: honest single-thread timings

import argparse  # noqa: E402
import asyncio  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
from deap import base, creator, tools  # noqa: E402

from allele.evolution import EvolutionConfig, EvolutionEngine  # noqa: E402
from allele.fitness import MAX_DISTANCE, TERSE_EXPERT, TargetPersonality, vectorized  # noqa: E402

FITNESS = TargetPersonality(TERSE_EXPERT)
MUTATION_RATE, MUTATION_SD, CROSSOVER_RATE = 0.1, 0.1, 0.7
ELITISM, TOURNAMENT, ALPHA = 2, 3, 0.5

Individual = list[float]


def config(population: int, generations: int, seed: int) -> EvolutionConfig:
    """Our engine's settings for the shared algorithm."""
    return EvolutionConfig(
        population_size=population,
        generations=generations,
        mutation_rate=MUTATION_RATE,
        mutation_strength=MUTATION_SD,
        crossover_rate=CROSSOVER_RATE,
        elitism=ELITISM,
        tournament_size=TOURNAMENT,
        blend_alpha=ALPHA,
        seed=seed,
    )


def ours(population: int, generations: int, seed: int) -> tuple[list[float], float]:
    """Seconds per generation (callback to callback, monotonic clock) and the best fitness."""
    stamps: list[float] = []
    engine = EvolutionEngine(config(population, generations, seed))
    result = engine.run(FITNESS, callback=lambda _: stamps.append(time.perf_counter()))
    return list(np.diff(stamps)), result.best_fitness


# -- DEAP -------------------------------------------------------------------------------------
def python_fitness(ind: Individual) -> tuple[float]:
    """``TargetPersonality`` in plain Python: 1 - distance to the target / sqrt(8)."""
    squared = sum((v - t) * (v - t) for v, t in zip(ind, TARGET_LIST, strict=True))
    return (1.0 - math.sqrt(squared) / MAX_DISTANCE,)


def numpy_fitness(ind: Individual) -> tuple[float]:
    """``TargetPersonality`` itself on a 1 x 8 array."""
    return (float(FITNESS(np.asarray(ind)[None, :])[0]),)


TARGET_LIST = FITNESS.target.tolist()
DEAP_FITNESS: dict[str, Callable[[Individual], tuple[float]]] = {
    "deap-python": python_fitness,
    "deap-numpy": numpy_fitness,
}


def deap_toolbox(evaluate: Callable[[Individual], tuple[float]]) -> base.Toolbox:
    """DEAP's standard operators with the shared settings."""
    if not hasattr(creator, "FitnessMax"):
        creator.create("FitnessMax", base.Fitness, weights=(1.0,))
        creator.create("Individual", list, fitness=creator.FitnessMax)
    toolbox = base.Toolbox()
    toolbox.register("evaluate", evaluate)
    toolbox.register("mate", tools.cxBlend, alpha=ALPHA)
    toolbox.register("mutate", tools.mutGaussian, mu=0.0, sigma=MUTATION_SD, indpb=MUTATION_RATE)
    toolbox.register("select", tools.selTournament, tournsize=TOURNAMENT)
    return toolbox


def deap(
    population: int, generations: int, seed: int, evaluate: Callable[[Individual], tuple[float]]
) -> tuple[list[float], float]:
    """DEAP running the shared algorithm: seconds per generation and the best fitness."""
    random.seed(seed)
    toolbox = deap_toolbox(evaluate)
    pop = [creator.Individual(random.random() for _ in range(8)) for _ in range(population)]
    for ind in pop:
        ind.fitness.values = toolbox.evaluate(ind)
    times = []
    for _ in range(generations):
        start = time.perf_counter()
        elite = list(map(toolbox.clone, tools.selBest(pop, ELITISM)))
        offspring = list(map(toolbox.clone, toolbox.select(pop, population - ELITISM)))
        for a, b in zip(offspring[::2], offspring[1::2], strict=False):
            if random.random() < CROSSOVER_RATE:
                toolbox.mate(a, b)
                del a.fitness.values, b.fitness.values
        for ind in offspring:
            before = ind[:]
            toolbox.mutate(ind)
            ind[:] = [min(1.0, max(0.0, v)) for v in ind]
            if ind != before:
                del ind.fitness.values
        for ind in offspring:
            if not ind.fitness.valid:
                ind.fitness.values = toolbox.evaluate(ind)
        pop = elite + offspring
        times.append(time.perf_counter() - start)
    return times, max(ind.fitness.values[0] for ind in pop)


# -- short runs ---------------------------------------------------------------------------------
TARGET_ARRAY = np.asarray(TARGET_LIST)


def target_fitness(rows: np.ndarray) -> np.ndarray:
    """The same fitness as a plain numpy function, wrapped by the user with ``vectorized``."""
    return 1.0 - np.sqrt(((rows - TARGET_ARRAY) ** 2).sum(axis=1)) / MAX_DISTANCE


async def ours_short(population: int, generations: int, seed: int) -> float:
    """Seconds for a fresh population and ``generations`` generations through ``evolve``."""
    fn = vectorized(target_fitness)
    start = time.perf_counter()
    engine = EvolutionEngine(config(population, generations, seed))
    pop = engine.initialize_population()
    best = await engine.evolve(pop, fn)
    elapsed = time.perf_counter() - start
    assert best.fitness is not None and engine.last_result is not None
    assert len(engine.last_result.population) == population
    return elapsed


def deap_short(population: int, generations: int, seed: int) -> float:
    """Seconds for DEAP to build, evaluate and breed ``generations`` generations."""
    start = time.perf_counter()
    deap(population, generations, seed, python_fitness)
    return time.perf_counter() - start


def short_runs(repeats: int) -> None:
    """Five generations at population 1000, whole calls, alternating ours and DEAP."""

    async def measure() -> tuple[list[float], list[float]]:
        await ours_short(1000, 5, seed=0)  # warm-up: the loop's thread pool, first calls
        deap_short(1000, 5, seed=0)
        mine, theirs = [], []
        for seed in range(repeats):
            mine.append(await ours_short(1000, 5, seed))
            theirs.append(deap_short(1000, 5, seed))
        return mine, theirs

    mine, theirs = asyncio.run(measure())
    o, d = statistics.median(mine), statistics.median(theirs)
    print(
        f"RATIO evolution short run pop=1000 gens=5 (await evolve, vectorized fn): "
        f"ours={o * 1e3:.3f}ms deap={d * 1e3:.3f}ms ratio={o / d:.4f} speedup={d / o:.1f}x "
        f"over {repeats} runs each (target ratio <= 0.1, i.e. >= 10x)"
    )


# -- report -----------------------------------------------------------------------------------
def check_same_fitness() -> None:
    """Both DEAP fitness forms agree with ours on random genomes (to rounding)."""
    rows = np.random.default_rng(0).random((200, 8))
    ours_values = FITNESS(rows)
    for name, fn in DEAP_FITNESS.items():
        theirs = np.array([fn(row.tolist())[0] for row in rows])
        gap = float(np.abs(theirs - ours_values).max())
        assert gap < 1e-12, f"{name} fitness differs from ours by {gap}"


def quality(generations: int, seeds: int) -> None:
    """Best fitness after the same number of generations, over several seeds."""
    ours_best = [ours(1000, generations, seed)[1] for seed in range(seeds)]
    deap_best = [deap(1000, generations, seed, python_fitness)[1] for seed in range(seeds)]
    print(
        f"quality after {generations} generations, median over {seeds} seeds: "
        f"ours best fitness {statistics.median(ours_best):.4f}, "
        f"deap {statistics.median(deap_best):.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer generations and seeds")
    args = parser.parse_args()
    gens_ours, gens_deap, seeds = (60, 8, 3) if args.quick else (300, 30, 5)
    check_same_fitness()

    ours(1000, 5, seed=0)  # warm-up: first-call costs are not a generation's cost
    our_times, _ = ours(1000, gens_ours, seed=1)
    o = statistics.median(our_times)
    print(
        f"ours: median generation {o * 1e3:.3f} ms (p95 {np.percentile(our_times, 95) * 1e3:.3f}"
        f" ms) over {gens_ours} generations"
    )
    anchors = {}
    for name, fn in DEAP_FITNESS.items():
        times, _ = deap(1000, gens_deap, 1, fn)
        anchors[name] = statistics.median(times)
        print(f"{name}: median generation {anchors[name] * 1e3:.3f} ms over {gens_deap} gens")
    d = anchors["deap-python"]
    print(
        f"RATIO evolution generation pop=1000: ours={o * 1e3:.3f}ms deap={d * 1e3:.3f}ms "
        f"ratio={o / d:.4f} speedup={d / o:.1f}x (target ratio <= 0.1, i.e. >= 10x)"
    )
    short_runs(10 if args.quick else 30)
    quality(30, seeds)

    print("scaling of our generation time with population size:")
    for size in (50, 100, 200, 500, 1000):
        times, _ = ours(size, gens_ours, seed=3)
        median = statistics.median(times)
        print(
            f"  pop={size:5d}: {median * 1e6:8.1f} us/generation  "
            f"({median / size * 1e9:6.1f} ns per individual)"
        )


if __name__ == "__main__":
    main()
