"""The pyfunc model of a registered genome (a models-from-code file: MLflow runs it on load).

Loading gives back the genome (``load_genome`` in ``benchmarking/genome_registry.py``); its
prediction is what an agent built on the genome sends a provider: for each input row (optional
columns ``temperature`` and ``max_tokens``, the agent's configured sampling; defaults 0.7 and
512) the system prompt and the sampling nudged by the genome's traits
(``allele.agent.prompt``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
from mlflow.pyfunc import PythonModel

GENOME_ARTIFACT = "genome"
DEFAULT_TEMPERATURE = 0.7
DEFAULT_MAX_TOKENS = 512


class GenomeModel(PythonModel):
    """A ConversationalGenome as an MLflow pyfunc model."""

    genome: Any = None

    def load_context(self, context: Any) -> None:
        from allele.genome import ConversationalGenome

        data = json.loads(Path(context.artifacts[GENOME_ARTIFACT]).read_text(encoding="utf-8"))
        self.genome = ConversationalGenome.from_dict(data)

    # No annotations: MLflow would read them as an input schema it cannot use.
    def predict(self, context, model_input, params=None):
        from allele.agent.prompt import build_system_prompt, sampling_for

        rows = _rows(model_input)
        prompt = build_system_prompt(self.genome)
        out = []
        for row in rows:
            sampling = sampling_for(
                self.genome,
                float(row.get("temperature", DEFAULT_TEMPERATURE)),
                int(row.get("max_tokens", DEFAULT_MAX_TOKENS)),
            )
            out.append(
                {
                    "genome_id": self.genome.genome_id,
                    "system_prompt": prompt,
                    "temperature": sampling.temperature,
                    "max_tokens": sampling.max_tokens,
                }
            )
        return out


def _rows(model_input: Any) -> list[dict[str, Any]]:
    if model_input is None:
        return [{}]
    if hasattr(model_input, "to_dict"):  # a pandas DataFrame
        rows: list[dict[str, Any]] = model_input.to_dict(orient="records")
        return rows or [{}]
    if isinstance(model_input, dict):
        return [model_input]
    return [dict(r) for r in model_input] or [{}]


mlflow.models.set_model(GenomeModel())
