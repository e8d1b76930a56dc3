"""One generation of the genetic algorithm at population 1000: Allele vs DEAP, same algorithm.

Both sides run: tournament selection (3 contestants), blend crossover (alpha 0.5, rate 0.7,
consecutive pairs), Gaussian mutation (per-trait rate 0.1, sd 0.1), clipping to [0, 1],
elitism 2, re-evaluation only of changed offspring, and the same fitness function
(``TargetPersonality``), which DEAP calls once per individual as it always does. A generation
is timed from selection to the next population with its fitness. Medians over generations.

Run: ``.venv/bin/python benchmarks/bench_evolution.py [--quick]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: honest single-thread timings

import argparse  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from deap import base, creator, tools  # noqa: E402

from allele.evolution import EvolutionConfig, EvolutionEngine  # noqa: E402
from allele.fitness import TargetPersonality  # noqa: E402

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
RATES = {"mutation_rate": 0.1, "mutation_strength": 0.1, "crossover_rate": 0.7}
ELITISM, TOURNAMENT, ALPHA = 2, 3, 0.5


def ours(population: int, generations: int, seed: int) -> tuple[list[float], float]:
    """Per-generation seconds (from the engine's monotonic GenerationStats) and best fitness."""
    config = EvolutionConfig(
        population_size=population,
        generations=generations,
        elitism=ELITISM,
        tournament_size=TOURNAMENT,
        blend_alpha=ALPHA,
        seed=seed,
        **RATES,
    )
    result = EvolutionEngine(config).run(TargetPersonality(TARGET))
    return [h.duration_s for h in result.history[1:]], result.best_fitness


def ours_wall(population: int, generations: int, seed: int) -> float:
    """Wall time per generation of a whole run timed from outside (includes setup and the
    materialisation of the final population)."""
    config = EvolutionConfig(
        population_size=population,
        generations=generations,
        elitism=ELITISM,
        tournament_size=TOURNAMENT,
        blend_alpha=ALPHA,
        seed=seed,
        **RATES,
    )
    engine = EvolutionEngine(config)
    fitness = TargetPersonality(TARGET)
    start = time.perf_counter()
    engine.run(fitness)
    return (time.perf_counter() - start) / generations


def deap_toolbox(fitness: TargetPersonality) -> base.Toolbox:
    if not hasattr(creator, "FitnessMax"):
        creator.create("FitnessMax", base.Fitness, weights=(1.0,))
        creator.create("Individual", list, fitness=creator.FitnessMax)
    toolbox = base.Toolbox()
    toolbox.register("evaluate", lambda ind: (float(fitness(np.asarray(ind)[None, :])[0]),))
    toolbox.register("mate", tools.cxBlend, alpha=ALPHA)
    toolbox.register(
        "mutate",
        tools.mutGaussian,
        mu=0.0,
        sigma=RATES["mutation_strength"],
        indpb=RATES["mutation_rate"],
    )
    toolbox.register("select", tools.selTournament, tournsize=TOURNAMENT)
    return toolbox


def deap(population: int, generations: int, seed: int) -> tuple[list[float], float]:
    """DEAP running the same generational algorithm; per-generation seconds and best fitness."""
    random.seed(seed)
    fitness = TargetPersonality(TARGET)
    toolbox = deap_toolbox(fitness)
    pop = [creator.Individual(random.random() for _ in range(8)) for _ in range(population)]
    for ind in pop:
        ind.fitness.values = toolbox.evaluate(ind)
    times = []
    for _ in range(generations):
        start = time.perf_counter()
        elite = list(map(toolbox.clone, tools.selBest(pop, ELITISM)))
        offspring = list(map(toolbox.clone, toolbox.select(pop, population - ELITISM)))
        for a, b in zip(offspring[::2], offspring[1::2], strict=False):
            if random.random() < RATES["crossover_rate"]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer generations")
    args = parser.parse_args()
    gens_ours, gens_deap = (60, 5) if args.quick else (300, 30)

    ours(1000, 5, seed=0)  # warm-up: first-call costs are not a generation's cost
    our_times, our_best = ours(1000, gens_ours, seed=1)
    deap_times, deap_best = deap(1000, gens_deap, seed=1)
    o, d = statistics.median(our_times), statistics.median(deap_times)
    print(
        f"ours: median generation {o * 1e3:.3f} ms (p95 "
        f"{np.percentile(our_times, 95) * 1e3:.3f} ms) over {gens_ours} generations; "
        f"best fitness {our_best:.4f}"
    )
    print(
        f"deap: median generation {d * 1e3:.3f} ms over {gens_deap} generations; "
        f"best fitness {deap_best:.4f}"
    )
    wall = ours_wall(1000, gens_ours, seed=2)
    print(
        f"ours, whole run timed from outside: {wall * 1e3:.3f} ms per generation "
        "(includes setup and building the final 1000 genomes)"
    )
    print(
        f"RATIO evolution generation pop=1000: ours={o * 1e3:.3f}ms deap={d * 1e3:.3f}ms "
        f"speedup={d / o:.1f}x (target >= 10x)"
    )

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
