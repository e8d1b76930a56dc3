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
