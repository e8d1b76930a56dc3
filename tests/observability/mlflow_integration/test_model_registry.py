"""Genomes and component models in a real MLflow registry: versions, loading, promotion."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from allele.agent.prompt import build_system_prompt, sampling_for
from allele.cli import app
from allele.errors import ValidationError
from allele.genome import TRAIT_NAMES, ConversationalGenome
from allele.kraken import KrakenLNN
from allele.observability.benchmarking import storage
from allele.observability.benchmarking.genome_registry import GenomeRegistry
from allele.observability.store import open_store

DETECTOR = '''
class ThresholdDetector:
    """A test detector with the dict contract: to_dict() / from_dict(data)."""

    def __init__(self, threshold):
        self.threshold = threshold

    def score(self, values):
        return [float(v > self.threshold) for v in values]

    def to_dict(self):
        return {"threshold": self.threshold}

    @classmethod
    def from_dict(cls, data):
        return cls(data["threshold"])
'''


def _genome(level: float, generation: int = 0, fitness: float | None = 1.0) -> ConversationalGenome:
    traits = {name: level for name in TRAIT_NAMES}
    return ConversationalGenome(
        None, traits, fitness=fitness, generation=generation, parent_ids=("p1", "p2")
    )


@pytest.fixture
def registry(config: Any) -> GenomeRegistry:
    return GenomeRegistry(config)


def test_a_genome_version_carries_its_traits_and_loads_back_as_the_genome(
    registry: GenomeRegistry,
) -> None:
    name = f"genomes-{uuid.uuid4().hex[:8]}"
    genome = _genome(0.25, generation=7, fitness=0.875)
    version = registry.register_genome(genome, name, suite_id="suite-abc")
    assert version.version == "1"
    tags = registry.version(name, 1).tags
    assert tags["trait.empathy"] == "0.25" and tags["allele.generation"] == "7"
    assert tags["allele.parent_ids"] == "p1,p2" and tags["allele.fitness"] == "0.875"
    assert tags["allele.suite_id"] == "suite-abc" and tags["allele.genome_id"] == genome.genome_id

    loaded = registry.load_genome(name, 1)
    assert loaded == genome and loaded.parent_ids == ("p1", "p2")
    prediction = registry.load_model(name, 1).predict([{"temperature": 0.9, "max_tokens": 300}])
    expected = sampling_for(genome, 0.9, 300)
    assert prediction == [
        {
            "genome_id": genome.genome_id,
            "system_prompt": build_system_prompt(genome),
            "temperature": expected.temperature,
            "max_tokens": expected.max_tokens,
        }
    ]
    # models-from-code: the model is the code file and JSON, no pickle anywhere.
    source = registry.version(name, 1).source
    files = [
        a.path
        for a in registry.client.list_artifacts(version.run_id, source.split("/artifacts/", 1)[1])
    ]
    assert any(f.endswith("genome_model.py") for f in files)
    assert not any(f.endswith((".pkl", ".pickle", ".cloudpickle")) for f in files)


def test_component_models_kraken_readout_and_a_dict_detector(
    registry: GenomeRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kraken = KrakenLNN(reservoir_size=30, seed=11)
    signal = np.sin(np.linspace(0, 12, 200))
    kraken.fit(signal[:-1], signal[1:])
    name = f"kraken-{uuid.uuid4().hex[:8]}"
    version = registry.register_component(kraken, name, suite_id="s1")
    loaded = registry.load_component(name, version.version)
    np.testing.assert_allclose(loaded.predict(signal[:-1]), kraken.predict(signal[:-1]))
    with pytest.raises(ValidationError, match="seed"):
        registry.register_component(KrakenLNN(reservoir_size=5), name)

    (tmp_path / "detector_fake.py").write_text(DETECTOR)
    monkeypatch.syspath_prepend(str(tmp_path))
    import detector_fake

    detector = detector_fake.ThresholdDetector(0.5)
    dname = f"detector-{uuid.uuid4().hex[:8]}"
    registry.register_component(detector, dname)
    back = registry.load_component(dname, 1)
    assert type(back).__name__ == "ThresholdDetector" and back.threshold == 0.5
    assert registry.load_model(dname, 1).predict([0.2, 0.7]) == [0.0, 1.0]
    with pytest.raises(ValidationError, match="to_dict"):
        registry.register_component(object(), dname)
    sys.modules.pop("detector_fake", None)


def test_promotion_needs_a_significantly_better_benchmark_unless_forced(
    registry: GenomeRegistry, config: Any, suite_run: Any, tmp_path: Path
) -> None:
    store_uri = f"sqlite:///{tmp_path / 'allele.db'}"
    store = open_store(store_uri)
    slow = suite_run(name="agent", scale=1.0, seed=1)
    fast = suite_run(name="agent", scale=0.7, seed=2)
    slower = suite_run(name="agent", scale=1.5, seed=3)
    for run in (slow, fast, slower):
        storage.save_run(store, run)
    name = f"promoted-{uuid.uuid4().hex[:8]}"
    for level, run in ((0.2, slow), (0.5, fast), (0.8, slower)):
        registry.register_genome(_genome(level), name, suite_id=run.suite_id)

    first = registry.promote(name, 1, store=store)
    assert first.promoted and first.reason == "there is no champion yet"
    better = registry.promote(name, 2, store=store)
    assert better.promoted and better.previous == "1"
    assert (
        "significantly better" in better.reason and better.comparison.counts()["improvement"] == 6
    )
    assert registry.aliases(name) == {"champion": "2"}

    env = {"ALLELE_MLFLOW_SPOOL_DIR": str(config.spool_dir)}
    runner = CliRunner()
    args = [
        "registry",
        "promote",
        name,
        "3",
        "--to",
        "champion",
        "--store",
        store_uri,
        "--tracking-uri",
        config.tracking_uri,
    ]
    refused = runner.invoke(app, args, env=env)
    assert refused.exit_code == 1
    assert "not promoted" in refused.output and "regressed in 6 of 6 cells" in " ".join(
        refused.output.split()
    )
    assert registry.aliases(name) == {"champion": "2"}
    forced = runner.invoke(app, [*args, "--force"], env=env)
    assert forced.exit_code == 0, forced.output
    assert registry.aliases(name) == {"champion": "3"}
    record = json.loads(registry.version(name, 3).tags["allele.promotion.champion"])
    assert record["forced"] is True and record["previous"] == "2"
    challenger = registry.promote(name, 1, to="challenger")
    assert challenger.promoted and registry.aliases(name) == {"champion": "3", "challenger": "1"}
    assert registry.load_genome(name, "champion") == registry.load_genome(name, 3)

    compared = runner.invoke(
        app,
        [
            "registry",
            "compare",
            name,
            "1",
            "2",
            "--store",
            store_uri,
            "--tracking-uri",
            config.tracking_uri,
        ],
        env=env,
    )
    assert compared.exit_code == 0, compared.output
    assert "trait.empathy" in compared.output and "0.2" in compared.output
    result = registry.compare(name, 1, 2, store=store)
    assert result.differences["trait.empathy"] == ("0.2", "0.5")
    assert result.comparison.counts()["improvement"] == 6


def test_a_tracked_evolution_logs_its_generations_and_registers_the_best(config: Any) -> None:
    from allele.evolution import EvolutionConfig, EvolutionEngine
    from allele.fitness import TargetPersonality
    from allele.observability.benchmarking.experiment_logger import ExperimentLogger
    from allele.observability.benchmarking.genome_registry import track_evolution

    engine = EvolutionEngine(EvolutionConfig(population_size=12, generations=4, seed=3))
    result = engine.run(TargetPersonality({"empathy": 0.9}))
    name = f"evolved-{uuid.uuid4().hex[:8]}"
    log = ExperimentLogger(config)
    run_id, version = track_evolution(result, experiment_logger=log, model_name=name)
    assert run_id is not None and version is not None and version.run_id == run_id
    history = log.client.get_metric_history(run_id, "best_fitness")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
        (g.generation, g.best_fitness) for g in result.history
    ]
    registry = GenomeRegistry(config)
    assert registry.load_genome(name, version.version) == result.best
