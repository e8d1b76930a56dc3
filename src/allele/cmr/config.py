"""The settings of a CMR model: its backbone (``GPTConfig``), its memory (``CMRConfig``) and
its monitor (``monitoring_config``).

Both are plain frozen dataclasses validated when built; ``CMRConfig.from_mapping`` accepts the
dict form the design documents use (``{'target_layers': [1], 'buffer_size': 256, ...}``).
No torch here: a configuration can be built, checked and stored without loading it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from allele.cmr.alerting import CHECKS
from allele.errors import ValidationError, check_int, check_real

SCORERS = ("attention", "variance", "hybrid")
EVICTIONS = ("lru", "relevance", "lru_relevance")
STRATEGIES = ("similarity", "contextual", "multi_criteria", "hybrid")


def _choice(name: str, value: object, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValidationError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def _layers(name: str, value: object, n_layers: int | None) -> tuple[int, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ValidationError(f"{name} must be a list of layer indices, got {value!r}")
    high = 10_000 if n_layers is None else n_layers - 1
    layers = tuple(check_int(f"{name}[{i}]", v, 0, high) for i, v in enumerate(value))
    if len(set(layers)) != len(layers):
        raise ValidationError(f"{name} repeats a layer: {list(layers)}")
    return tuple(sorted(layers))


@dataclass(frozen=True)
class GPTConfig:
    """A small GPT-2-style causal transformer (pre-LayerNorm blocks, tied embeddings)."""

    vocab_size: int = 256
    n_positions: int = 1024
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check_int("vocab_size", self.vocab_size, 2, 10_000_000)
        check_int("n_positions", self.n_positions, 1, 1_000_000)
        check_int("d_model", self.d_model, 1, 1_000_000)
        check_int("n_layers", self.n_layers, 1, 1000)
        check_int("n_heads", self.n_heads, 1, 10_000)
        check_real("dropout", self.dropout, 0.0, 1.0, high_open=True)
        if self.d_model % self.n_heads:
            raise ValidationError(
                f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}"
            )


@dataclass(frozen=True)
class CMRConfig:
    """What the memory captures, keeps, retrieves and reweaves.

    * ``target_layers``: blocks whose output states are captured into the memory.
    * ``intervention_layers``: blocks whose output states get retrieved memory blended in.
    * ``scoring_method`` (attention | variance | hybrid) rates each position's relevance;
      positions scoring below ``relevance_threshold`` are not stored, and at most
      ``max_entries_per_capture`` (the most relevant) per sequence and layer per forward are.
    * ``buffer_size``: entries kept per sequence (batch row) over all layers;
      ``layer_capacity``: per layer (default: ``buffer_size``). ``eviction_strategy``
      (lru | relevance | lru_relevance) picks what goes when full; ``lru_weight`` weighs recency
      against relevance for ``lru_relevance``.
    * ``retrieval_strategy`` (similarity | contextual | multi_criteria | hybrid) ranks the
      memory for each position; the ``retrieval_k`` best are reweaved. A retrieval is a hit
      when its best score reaches ``similarity_threshold``.
    * ``memory_dim``: width of the reweaver's learned query/key/value space.
    * ``reweaving``: False captures and retrieves nothing into the states (the plain backbone,
      still capturing); ``memory_gradients``: in training mode stored states keep their
      autograd graph, so a loss on a later segment trains what an earlier one wrote (call
      ``reset_memory()`` or ``detach_memory()`` after each optimiser step).
    """

    target_layers: tuple[int, ...] = (1,)
    intervention_layers: tuple[int, ...] = (2,)
    scoring_method: str = "attention"
    hybrid_weight: float = 0.5
    relevance_threshold: float = 0.0
    max_entries_per_capture: int = 1024
    buffer_size: int = 512
    layer_capacity: int | None = None
    eviction_strategy: str = "lru_relevance"
    lru_weight: float = 0.5
    retrieval_strategy: str = "similarity"
    retrieval_k: int = 8
    similarity_threshold: float = 0.5
    multi_criteria_weights: tuple[float, float, float] = (0.6, 0.3, 0.1)
    memory_dim: int = 64
    reweaving: bool = True
    memory_gradients: bool = True
    max_history: int = 1000

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "target_layers", _layers("target_layers", self.target_layers, None))
        set_(
            self,
            "intervention_layers",
            _layers("intervention_layers", self.intervention_layers, None),
        )
        if not self.target_layers:
            raise ValidationError("target_layers must name at least one layer, got []")
        _choice("scoring_method", self.scoring_method, SCORERS)
        _choice("eviction_strategy", self.eviction_strategy, EVICTIONS)
        _choice("retrieval_strategy", self.retrieval_strategy, STRATEGIES)
        check_real("hybrid_weight", self.hybrid_weight, 0.0, 1.0)
        check_real("relevance_threshold", self.relevance_threshold, 0.0, 1.0)
        check_int("max_entries_per_capture", self.max_entries_per_capture, 1, 10_000_000)
        check_int("buffer_size", self.buffer_size, 1, 100_000_000)
        if self.layer_capacity is not None:
            check_int("layer_capacity", self.layer_capacity, 1, 100_000_000)
        check_real("lru_weight", self.lru_weight, 0.0, 1.0)
        check_int("retrieval_k", self.retrieval_k, 1, 100_000)
        check_real("similarity_threshold", self.similarity_threshold, -1.0, 1.0)
        weights = tuple(self.multi_criteria_weights)
        if len(weights) != 3:
            raise ValidationError(
                "multi_criteria_weights must be 3 numbers (similarity, relevance, recency), "
                f"got {self.multi_criteria_weights!r}"
            )
        for i, w in enumerate(weights):
            check_real(f"multi_criteria_weights[{i}]", w, 0.0, 1e6)
        set_(self, "multi_criteria_weights", tuple(float(w) for w in weights))
        check_int("memory_dim", self.memory_dim, 1, 1_000_000)
        check_int("max_history", self.max_history, 1, 10_000_000)

    @property
    def per_layer_capacity(self) -> int:
        """Entries one layer may hold per sequence."""
        return self.buffer_size if self.layer_capacity is None else self.layer_capacity

    def check_layers(self, n_layers: int) -> None:
        """Raise ValidationError unless every configured layer exists in a backbone of
        ``n_layers`` blocks."""
        _layers("target_layers", self.target_layers, n_layers)
        _layers("intervention_layers", self.intervention_layers, n_layers)

    @classmethod
    def from_mapping(cls, data: CMRConfig | Mapping[str, Any]) -> CMRConfig:
        """A config from a dict; unknown keys are an error naming the allowed ones."""
        if isinstance(data, CMRConfig):
            return data
        if not isinstance(data, Mapping):
            raise ValidationError(f"a CMR config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValidationError(f"unknown CMR config keys {unknown}; allowed: {sorted(known)}")
        values = dict(data)
        for key in ("target_layers", "intervention_layers", "multi_criteria_weights"):
            if key in values and isinstance(values[key], list):
                values[key] = tuple(values[key])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data."""
        data = asdict(self)
        for key in ("target_layers", "intervention_layers", "multi_criteria_weights"):
            data[key] = list(data[key])
        return data


#: The monitor's configuration of the design documents, as its defaults.
DEFAULT_CONFIG: dict[str, Any] = {
    "enable_real_time": True,
    "enable_profiling": False,
    "metric_collection_interval": 1.0,
    "health_check_interval": 5.0,
    "max_history": 1000,
    "alert_thresholds": {"high_latency": 0.1, "low_efficiency": 0.7, "high_error_rate": 0.05},
}


def monitoring_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """A ``CMRPerformanceMonitor``'s ``monitoring_config``: the defaults overlaid with
    ``config``, every key and threshold checked."""
    merged = {**DEFAULT_CONFIG, **dict(config or {})}
    unknown = sorted(set(merged) - set(DEFAULT_CONFIG) - {"health_window"})
    if unknown:
        raise ValidationError(
            f"unknown monitoring_config keys {unknown}; allowed: {sorted(DEFAULT_CONFIG)}"
        )
    thresholds = {**DEFAULT_CONFIG["alert_thresholds"], **dict(merged["alert_thresholds"])}
    extra = sorted(set(thresholds) - set(CHECKS))
    if extra:
        raise ValidationError(f"unknown alert_thresholds {extra}; allowed: {list(CHECKS)}")
    merged["alert_thresholds"] = {
        "high_latency": check_real(
            "high_latency", thresholds["high_latency"], 0.0, 1e9, low_open=True
        ),
        "low_efficiency": check_real(
            "low_efficiency", thresholds["low_efficiency"], 0.0, 1.0, low_open=True
        ),
        "high_error_rate": check_real(
            "high_error_rate", thresholds["high_error_rate"], 0.0, 1.0, low_open=True
        ),
    }
    for key in ("metric_collection_interval", "health_check_interval"):
        merged[key] = check_real(key, merged[key], 0.0, 1e9)
    merged["max_history"] = check_int("max_history", merged["max_history"], 1, 10_000_000)
    merged["health_window"] = check_int(
        "health_window", merged.get("health_window", merged["max_history"]), 1, 10_000_000
    )
    return merged
