"""The pyfunc model of a registered component (a models-from-code file: MLflow runs it on load).

The component's state is the JSON artifact ``component``: ``{"class": "module:QualName",
"state": {...}}``. Loading imports the class and calls its ``from_dict(state)`` (KrakenLNN, which
has no dict form of its own, goes through ``benchmarking/model_registry.py``'s adapter). The
prediction is the component's own: ``predict(model_input)``, else ``score(model_input)`` (a
detector's anomaly scores), as a list.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import mlflow
from mlflow.pyfunc import PythonModel

COMPONENT_ARTIFACT = "component"


def component_from_state(data: dict[str, Any]) -> Any:
    """Rebuild a component from its ``{"class": ..., "state": ...}`` JSON form."""
    module_name, _, qualname = str(data["class"]).partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    if module_name == "allele.kraken" and qualname == "KrakenLNN":
        from allele.observability.benchmarking.model_registry import kraken_from_state

        return kraken_from_state(data["state"])
    return target.from_dict(data["state"])


class ComponentModel(PythonModel):
    """A component with a dict form (``to_dict`` / ``from_dict``) as an MLflow pyfunc model."""

    component: Any = None

    def load_context(self, context: Any) -> None:
        path = Path(context.artifacts[COMPONENT_ARTIFACT])
        self.component = component_from_state(json.loads(path.read_text(encoding="utf-8")))

    # No annotations: MLflow would read them as an input schema it cannot use.
    def predict(self, context, model_input, params=None):
        import numpy as np

        data = np.asarray(model_input, dtype=float)
        for method in ("predict", "score"):
            fn = getattr(self.component, method, None)
            if callable(fn):
                return np.asarray(fn(data)).tolist()
        raise TypeError(f"{type(self.component).__name__} has neither predict() nor score()")


mlflow.models.set_model(ComponentModel())
