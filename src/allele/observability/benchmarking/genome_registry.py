"""Genomes as registered MLflow models: a version per genome, loading gives the genome back.

A version's tags carry the genome: ``trait.<name>`` for each of the eight traits,
``allele.genome_id``, ``allele.generation``, ``allele.parent_ids`` (comma-separated lineage),
``allele.fitness`` and ``allele.suite_id`` (the suite run it was measured in, which promotion
compares). The model is ``mlflow_integration/models/genome_model.py`` built from code with the
genome as JSON; ``load_genome`` returns an equal ``ConversationalGenome`` and the pyfunc's
prediction is the agent's system prompt and sampling for the genome.

>>> registry = GenomeRegistry()                                  # doctest: +SKIP
>>> version = registry.register_genome(best, suite_id=run.suite_id)
>>> registry.load_genome("allele-genomes", version.version) == best
True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from allele.errors import ValidationError
from allele.genome import ConversationalGenome
from allele.observability.benchmarking.model_registry import KIND_TAG, SUITE_TAG, ModelRegistry

DEFAULT_GENOME_MODEL = "allele-genomes"


def genome_tags(genome: ConversationalGenome, suite_id: str | None = None) -> dict[str, str]:
    """The version tags that describe ``genome``: traits, lineage, fitness, suite."""
    tags = {f"trait.{name}": f"{value:.6g}" for name, value in genome.traits.items()}
    tags.update(
        {
            KIND_TAG: "genome",
            "allele.genome_id": genome.genome_id,
            "allele.generation": str(genome.generation),
            "allele.parent_ids": ",".join(genome.parent_ids),
            "allele.fitness": "" if genome.fitness is None else repr(float(genome.fitness)),
        }
    )
    if suite_id:
        tags[SUITE_TAG] = suite_id
    return tags


class GenomeRegistry(ModelRegistry):
    """The model registry with genome versions (see the module docstring)."""

    def register_genome(
        self,
        genome: ConversationalGenome,
        name: str = DEFAULT_GENOME_MODEL,
        *,
        suite_id: str | None = None,
        run_id: str | None = None,
        description: str | None = None,
    ) -> Any:
        """Register ``genome`` as a new version of ``name``; returns the ModelVersion."""
        from allele.observability.mlflow_integration.models import genome_model

        if not isinstance(genome, ConversationalGenome):
            raise ValidationError(
                f"register_genome needs a ConversationalGenome, got {type(genome).__name__}"
            )
        return self._register(
            name,
            genome_model.__file__,
            genome_model.GENOME_ARTIFACT,
            genome.to_dict(),
            genome_tags(genome, suite_id),
            description or f"genome {genome.genome_id} (generation {genome.generation})",
            run_id,
        )

    def load_genome(self, name: str, ref: str | int) -> ConversationalGenome:
        """The genome registered as version (or alias) ``ref`` of ``name``."""
        genome = self.load_model(name, ref).unwrap_python_model().genome
        assert isinstance(genome, ConversationalGenome)
        return genome

    def register_best(
        self,
        population: Iterable[ConversationalGenome],
        name: str = DEFAULT_GENOME_MODEL,
        *,
        suite_id: str | None = None,
        run_id: str | None = None,
    ) -> Any:
        """Register the fittest genome of ``population`` when ``ALLELE_MLFLOW_AUTO_REGISTER_MODELS``
        is on; returns its ModelVersion, or None (turned off, or no genome has a fitness)."""
        if not self.config.auto_register_models:
            return None
        scored = [g for g in population if g.fitness is not None]
        if not scored:
            return None
        best = max(scored, key=lambda g: float(g.fitness or 0.0))
        return self.register_genome(best, name, suite_id=suite_id, run_id=run_id)


def track_evolution(
    result: Any,
    name: str = "evolution",
    *,
    experiment_logger: Any = None,
    model_name: str = DEFAULT_GENOME_MODEL,
    suite_id: str | None = None,
) -> tuple[str | None, Any]:
    """Log an ``EvolutionResult`` as an MLflow run and register its best genome.

    The run (experiment ``ALLELE_MLFLOW_EXPERIMENT_PREFIX + name``) has one point per generation
    of ``best_fitness``, ``mean_fitness``, ``worst_fitness``, ``diversity``, ``evaluations`` and
    ``duration_s`` (step = generation, stamped with the generation's own time). With
    ``ALLELE_MLFLOW_AUTO_REGISTER_MODELS`` the best genome becomes a version of ``model_name``
    whose artifacts live in that run. Returns ``(run id, ModelVersion or None)``; the run id is
    None when the server was unreachable (the run is spooled, the genome not registered).
    """
    import uuid

    from allele.observability.benchmarking.experiment_logger import ExperimentLogger, now_ms

    log = experiment_logger or ExperimentLogger()
    group = uuid.uuid4().hex
    key = f"evolution:{group}"
    where = {
        "key": key,
        "experiment": f"{log.config.experiment_prefix}{name}",
        "group": group,
        "parent": None,
    }
    figures = ("best_fitness", "mean_fitness", "worst_fitness", "diversity", "evaluations")
    metrics = [
        [figure, float(getattr(g, figure)), int(g.timestamp * 1000), g.generation]
        for g in result.history
        for figure in (*figures, "duration_s")
    ]
    start = int(result.history[0].timestamp * 1000) if result.history else now_ms()
    ops: list[dict[str, Any]] = [
        {
            **where,
            "op": "run",
            "name": f"{name}-{group[:8]}",
            "start_time": start,
            "tags": {"allele.kind": "evolution", "allele.best_genome": result.best.genome_id},
        },
        {
            **where,
            "op": "log",
            "metrics": metrics,
            "tags": {},
            "params": {"generations": result.generations, "evaluations": result.evaluations},
        },
        {**where, "op": "end", "status": "FINISHED", "end_time": now_ms()},
    ]
    log.send(ops)
    run_id = log.run_id(key)
    if run_id is None:
        return None, None
    registry = GenomeRegistry(log.config, client=log.client)
    return run_id, registry.register_best(
        [result.best], model_name, suite_id=suite_id, run_id=run_id
    )
