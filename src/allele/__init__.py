"""Allele: benchmark and observe AI-agent components.

The workloads (``ConversationalGenome``, ``EvolutionEngine``, ``KrakenLNN``, ``NLPAgent``) are
importable from the top level; they load lazily so that ``import allele`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "ConversationalGenome": "allele.genome",
    "TRAIT_NAMES": "allele.genome",
    "EvolutionEngine": "allele.evolution",
    "EvolutionConfig": "allele.evolution",
    "KrakenLNN": "allele.kraken",
    "NLPAgent": "allele.agent",
    "AgentConfig": "allele.agent",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'allele' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
