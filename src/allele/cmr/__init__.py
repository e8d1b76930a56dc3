"""Contextual Memory Reweaving: a causal transformer that captures hidden states of chosen
layers into a memory and reweaves the relevant ones into later segments, and its monitor.

Everything here needs the ``torch`` extra and loads lazily: ``import allele.cmr`` is cheap.
The design documents' ``models.`` modules map here: ``models.cmr_full_integrated`` is
``allele.cmr.cmr_full_integrated`` (and ``allele.cmr``), ``models.cmr_performance_monitor``
is ``allele.cmr.cmr_performance_monitor``.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "FullCMRModel": "allele.cmr.model",
    "CMRConfig": "allele.cmr.config",
    "GPTConfig": "allele.cmr.config",
    "TinyGPT": "allele.cmr.backbone",
    "HuggingFaceBackbone": "allele.cmr.backbone",
    "LayeredMemoryBuffer": "allele.cmr.buffer",
    "Reweaver": "allele.cmr.reweaving",
    "ForwardRecord": "allele.cmr.stats",
    "PerformanceStats": "allele.cmr.stats",
    "relevance_scores": "allele.cmr.relevance",
    "retrieval_scores": "allele.cmr.retrieval",
    "CMRPerformanceMonitor": "allele.cmr.monitor",
    "CMRAlert": "allele.cmr.alerting",
    "AlertPolicy": "allele.cmr.alerting",
    "AlertSink": "allele.cmr.alerting",
    "MonitorSink": "allele.cmr.alerting",
}

__all__ = list(_LAZY)

_CONFIG_ONLY = {"CMRConfig", "GPTConfig"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'allele.cmr' has no attribute {name!r}")
    if name not in _CONFIG_ONLY:
        from allele.errors import require

        require("torch", "torch")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
