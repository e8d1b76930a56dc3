"""EvolutionEngine: a generational genetic algorithm over personality genomes, vectorised.

The engine holds the population as an ``N x 8`` float array plus a fitness array and applies
every operator to the whole array at once:

* **tournament selection** -- ``tournament_size`` contestants drawn with replacement per
  offspring slot (``rng.integers(0, N, (n_offspring, k))``), the fittest wins;
* **blend crossover** (BLX-alpha, as DEAP's ``cxBlend``) -- consecutive winners are paired and,
  with probability ``crossover_rate``, both children get ``(1-g) a + g b`` and ``g a + (1-g) b``
  with ``g ~ U(-alpha, 1+alpha)`` drawn per trait;
* **Gaussian mutation** -- every trait, with probability ``mutation_rate``, gets ``N(0,
  mutation_strength)`` noise; traits are then clipped to [0, 1];
* **elitism** -- the ``elitism`` fittest individuals survive unchanged (not re-evaluated).

Offspring that neither crossed over nor mutated keep their parent's fitness instead of being
evaluated again (as DEAP does), so ``evaluations`` counts real fitness calls.

Genome objects exist only at the edges: :meth:`EvolutionEngine.initialize_population` returns
genomes, per-genome fitness functions receive freshly built genomes, and the best genome and
final population are materialised as independent copies. Lineage is tracked with integer serial
numbers and turned into ``genome_id`` / ``parent_ids`` when a genome is built.

Fitness functions are either vectorised (``allele.fitness.VectorizedFitness`` or any callable
whose ``vectorized`` attribute is True: ``N x 8`` array in, ``N`` values out) or per-genome
(``ConversationalGenome`` in, a number out; ``async def`` allowed). See ``allele.fitness``.

>>> from allele.fitness import TargetPersonality
>>> engine = EvolutionEngine(EvolutionConfig(population_size=40, generations=30, seed=1))
>>> result = engine.run(TargetPersonality({"empathy": 0.9, "conciseness": 0.2}))
>>> result.best.fitness > 0.9
True
"""

from allele.evolution.config import EvolutionConfig
from allele.evolution.engine import Callback, EvolutionEngine, FitnessFn
from allele.evolution.population import LazyPopulation
from allele.evolution.results import EvolutionResult, GenerationStats

__all__ = [
    "Callback",
    "EvolutionConfig",
    "EvolutionEngine",
    "EvolutionResult",
    "FitnessFn",
    "GenerationStats",
    "LazyPopulation",
]
