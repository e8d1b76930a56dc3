"""``FullCMRModel``: a causal transformer whose chosen layers write to a memory and whose other
chosen layers read it back, across forward passes.

>>> from allele.cmr import FullCMRModel, GPTConfig                      # doctest: +SKIP
>>> model = FullCMRModel(GPTConfig(vocab_size=64, d_model=32, n_layers=3, n_heads=2),
...                      {"target_layers": [0], "intervention_layers": [1]})  # doctest: +SKIP
>>> first = model(segment_1)              # captures layer 0's states   # doctest: +SKIP
>>> out = model(segment_2, return_memory_info=True)  # layer 1 reads them  # doctest: +SKIP
>>> out["performance_stats"]["total_reconstructions"]                  # doctest: +SKIP

One forward pass:

1. the backbone runs; a forward hook on each target layer scores the block's output states
   (``relevance``), keeps the ``max_entries_per_capture`` most relevant positions at or above
   ``relevance_threshold`` per sequence, and queues them -- all positions of all sequences at
   once;
2. a forward hook on each intervention layer ranks the memory for every position, retrieves
   the best entries and returns the block's output with them reweaved in (``reweaving``);
3. after the backbone, the queued states enter the memory buffer (which evicts what does not
   fit). The current pass never reads what it captured itself: a position could otherwise see
   later positions of its own segment.

Hooks do nothing when the backbone is called on its own (``model.backbone(ids)``), so the
plain backbone stays available for comparison. Counts are kept as tensors during the pass and
read once at its end.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from allele.cmr.backbone import (
    Backbone,
    HuggingFaceBackbone,
    as_backbone,
    hidden_of,
    replace_hidden,
)
from allele.cmr.buffer import LayeredMemoryBuffer
from allele.cmr.config import CMRConfig, GPTConfig
from allele.cmr.relevance import relevance_scores
from allele.cmr.reweaving import MemoryWriter, Reweaver
from allele.cmr.stats import ForwardRecord, PerformanceStats
from allele.errors import ValidationError

logger = logging.getLogger("allele.cmr")

ForwardListener = Callable[[ForwardRecord], object]


@dataclass
class _Pass:
    """Scratch state of the forward pass in progress."""

    record: ForwardRecord
    keep_graph: bool
    pending: list[tuple[int, Tensor, Tensor, Tensor]] = field(default_factory=list)
    counts: list[tuple[str, int, Tensor]] = field(default_factory=list)
    sums: list[tuple[str, Tensor]] = field(default_factory=list)
    recency: Tensor | None = None


class FullCMRModel(nn.Module):
    """A causal transformer with contextual memory reweaving (see the module docstring).

    ``base_config``: a ``GPTConfig`` for a fresh ``TinyGPT`` backbone (default: ``GPTConfig()``);
    or pass ``backbone=`` a ``TinyGPT``, a ``HuggingFaceBackbone`` or a loaded ``transformers``
    causal LM. ``cmr_config``: a ``CMRConfig`` or its dict form.
    """

    def __init__(
        self,
        base_config: GPTConfig | None = None,
        cmr_config: CMRConfig | Mapping[str, Any] | None = None,
        *,
        backbone: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if base_config is not None and backbone is not None:
            raise ValidationError("give base_config or backbone, not both")
        self.backbone: Backbone = as_backbone(backbone if backbone is not None else base_config)
        config = CMRConfig() if cmr_config is None else CMRConfig.from_mapping(cmr_config)
        n_layers = int(self.backbone.n_layers)
        config.check_layers(n_layers)
        self.config = config
        d_model = int(self.backbone.d_model)
        self.writers = nn.ModuleDict(
            {str(layer): MemoryWriter(d_model, config.memory_dim) for layer in config.target_layers}
        )
        self.reweavers = nn.ModuleDict(
            {
                str(layer): Reweaver(d_model, config.memory_dim)
                for layer in config.intervention_layers
            }
        )
        self.buffer = LayeredMemoryBuffer(
            config.target_layers,
            buffer_size=config.buffer_size,
            layer_capacity=config.per_layer_capacity,
            eviction=config.eviction_strategy,
            lru_weight=config.lru_weight,
        )
        self.stats = PerformanceStats(config.max_history)
        self.last_record: ForwardRecord | None = None
        #: When true (set by a profiling monitor), the hooks mark their regions for torch's
        #: profiler as ``cmr.capture`` / ``cmr.reweave``.
        self.profiling = False
        self.listener_errors = 0
        self._listeners: tuple[ForwardListener, ...] = ()
        self._pass: _Pass | None = None
        self._hooks: dict[int, Any] = {}
        self.hook_calls: dict[int, int] = {}
        blocks: nn.ModuleList = self.backbone.blocks
        for layer in sorted(set(config.target_layers) | set(config.intervention_layers)):
            self._hooks[layer] = blocks[layer].register_forward_hook(self._hook(layer))
            self.hook_calls[layer] = 0

    @classmethod
    def from_pretrained(
        cls, path: str | Path, cmr_config: CMRConfig | Mapping[str, Any] | None = None
    ) -> FullCMRModel:
        """A CMR model around the ``transformers`` causal LM saved in directory ``path``
        (loaded with ``local_files_only``: nothing is downloaded)."""
        return cls(cmr_config=cmr_config, backbone=HuggingFaceBackbone.from_pretrained(path))

    # listeners ---------------------------------------------------------------------------------

    def add_forward_listener(self, listener: ForwardListener) -> None:
        """Call ``listener(record)`` after every forward pass (a failed one too, with
        ``record.error`` set). Its exceptions are logged and counted, never raised."""
        if listener not in self._listeners:
            self._listeners = (*self._listeners, listener)

    def remove_forward_listener(self, listener: ForwardListener) -> None:
        self._listeners = tuple(f for f in self._listeners if f != listener)

    def _notify(self, record: ForwardRecord) -> None:
        for listener in self._listeners:
            try:
                listener(record)
            except Exception:
                self.listener_errors += 1
                if self.listener_errors <= 3:
                    logger.warning("a forward listener of the CMR model failed", exc_info=True)

    # memory ------------------------------------------------------------------------------------

    def reset_memory(self) -> None:
        """Forget every stored state (start of a new document or batch of streams)."""
        self.buffer.clear()

    def detach_memory(self) -> None:
        """Keep the stored states but cut their autograd graph (after an optimiser step)."""
        self.buffer.detach()

    def reset_stats(self) -> None:
        """Zero ``performance_stats`` and the buffer's counters."""
        self.stats.reset()
        self.buffer.reset_counters()

    @property
    def performance_stats(self) -> dict[str, Any]:
        """The running ``performance_stats`` (see ``allele.cmr.stats``)."""
        return self.stats.snapshot(len(self.buffer), self.buffer.capacity())

    def buffer_stats(self) -> dict[str, Any]:
        """The memory buffer's state and counters, in the design documents' keys."""
        b = self.buffer
        c = b.counters
        entries = len(b)
        capacity = b.capacity()
        return {
            "total_entries": entries,
            "entries_per_layer": b.entries_per_layer(),
            "memory_size_mb": b.nbytes() / 2**20,
            "utilization_rate": entries / capacity if capacity else 0.0,
            "eviction_count": c.evicted,
            "eviction_rate": c.evicted / c.offered if c.offered else None,
            "states_offered": c.offered,
            "states_stored": c.stored,
            "streams": b.streams or 0,
            "capacity": capacity,
        }

    def retrieval_stats(self) -> dict[str, Any]:
        """Retrieval counters, in the design documents' keys."""
        s = self.stats
        return {
            "total_retrievals": s.retrieval_queries,
            "retrieval_operations": s.retrieval_ops,
            "avg_retrieval_time": s.retrieval_time_total / s.retrieval_ops
            if s.retrieval_ops
            else None,
            "cache_hits": s.retrieval_hits,
            "cache_hit_rate": s.retrieval_hits / s.retrieval_queries
            if s.retrieval_queries
            else None,
            "retrieval_quality": s.best_score_sum / s.retrieval_queries
            if s.retrieval_queries
            else None,
        }

    # forward -----------------------------------------------------------------------------------

    def forward(self, input_ids: Tensor, return_memory_info: bool = False) -> dict[str, Any]:
        """Run one segment: ``{"logits": [B, T, vocab]}``, plus with ``return_memory_info``
        ``performance_stats``, ``buffer_stats``, ``retrieval_stats`` and ``memory_info``."""
        ids = self._check_input(input_ids)
        keep_graph = self.config.memory_gradients and self.training and torch.is_grad_enabled()
        record = ForwardRecord(duration_s=0.0, batch=ids.shape[0], positions=ids.shape[1])
        self._pass = _Pass(record, keep_graph)
        start = time.perf_counter()
        try:
            logits = self.backbone(ids)
            self._commit(self._pass)
        except BaseException as exc:
            record.duration_s = time.perf_counter() - start
            record.error = type(exc).__name__
            self._finish(record)
            raise
        finally:
            self._pass = None
        record.duration_s = time.perf_counter() - start
        self._finish(record)
        out: dict[str, Any] = {"logits": logits}
        if return_memory_info:
            out["performance_stats"] = self.performance_stats
            out["buffer_stats"] = self.buffer_stats()
            out["retrieval_stats"] = self.retrieval_stats()
            out["memory_info"] = {
                "forward": record,
                "entries": record.memory_entries,
                "entries_per_layer": self.buffer.entries_per_layer(),
                "captured": dict(record.captured),
                "stored": dict(record.stored),
                "reconstructions": dict(record.reconstructions),
            }
        return out

    def _check_input(self, input_ids: object) -> Tensor:
        if not isinstance(input_ids, Tensor):
            raise ValidationError(
                f"input_ids must be a torch.Tensor of token ids, got {type(input_ids).__name__}"
            )
        if input_ids.dim() == 1:
            input_ids = input_ids.unsqueeze(0)
        if input_ids.dim() != 2 or input_ids.shape[1] == 0:
            raise ValidationError(
                f"input_ids must be [batch, positions] with positions >= 1, got shape "
                f"{tuple(input_ids.shape)}"
            )
        if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
            raise ValidationError(f"input_ids must be integer token ids, got {input_ids.dtype}")
        streams = self.buffer.streams
        if streams is not None and streams != input_ids.shape[0]:
            raise ValidationError(
                f"the memory holds {streams} streams (batch rows) but the batch has "
                f"{input_ids.shape[0]}; call reset_memory() to start new streams"
            )
        return input_ids

    def _finish(self, record: ForwardRecord) -> None:
        b = self.buffer
        record.memory_entries = len(b)
        record.memory_capacity = b.capacity()
        record.memory_bytes = b.nbytes()
        b.step += 1
        self.stats.record(record)
        self.last_record = record
        self._notify(record)

    def _region(self, name: str) -> contextlib.AbstractContextManager[Any]:
        if self.profiling:
            return torch.profiler.record_function(name)
        return contextlib.nullcontext()

    # hooks -------------------------------------------------------------------------------------

    def _hook(self, layer: int) -> Callable[[nn.Module, Any, Any], Any]:
        capture = layer in self.config.target_layers
        intervene = layer in self.config.intervention_layers

        def hook(module: nn.Module, inputs: Any, output: Any) -> Any:
            p = self._pass
            if p is None:
                return None
            self.hook_calls[layer] += 1
            hidden = hidden_of(output)
            if capture:
                with self._region("cmr.capture"):
                    self._capture(p, layer, hidden)
            if intervene and self.config.reweaving and self.buffer.entries is not None:
                with self._region("cmr.reweave"):
                    return replace_hidden(output, self._reweave(p, layer, hidden))
            return None

        return hook

    def _capture(self, p: _Pass, layer: int, hidden: Tensor) -> None:
        start = time.perf_counter()
        c = self.config
        states = hidden if p.keep_graph else hidden.detach()
        # Each state is stored with its successor (what followed it); the last position's
        # successor is not known yet: it is scored out. Every position is written (a small
        # projection), then the kept ones are picked: cheaper than picking the wide states.
        writer = cast(MemoryWriter, self.writers[str(layer)])
        written = writer.segment(states)  # [B, T, 2, r]
        if not p.keep_graph:
            written = written.detach()
        scores = relevance_scores(hidden, c.scoring_method, c.hybrid_weight)
        scores[:, -1] = -1.0
        if hidden.shape[1] > c.max_entries_per_capture:
            top = scores.topk(c.max_entries_per_capture, dim=1)
            scores = top.values
            index = top.indices.view(*top.indices.shape, 1, 1).expand(-1, -1, *written.shape[2:])
            written = written.gather(1, index)
        selected = scores >= c.relevance_threshold
        # A non-finite state writes a non-finite key or value (LayerNorm spreads it): checked
        # on the small projections rather than on the states.
        finite = torch.isfinite(written.detach()).flatten(2).all(dim=-1)
        valid = selected & finite
        p.pending.append((layer, written, scores, valid))
        p.counts.append(("selected", layer, selected.sum()))
        p.counts.append(("captured", layer, valid.sum()))
        p.record.capture_s.append(time.perf_counter() - start)

    def _commit(self, p: _Pass) -> None:
        """Store the pass's captures, then read every count of the pass at once."""
        start = time.perf_counter()
        b = self.buffer
        for layer, written, scores, valid in p.pending:
            before = b.counters.stored
            evicted = b.counters.evicted
            b.insert(layer, written, scores, valid)
            p.record.stored[layer] = p.record.stored.get(layer, 0) + b.counters.stored - before
            p.record.evicted += b.counters.evicted - evicted
        if p.pending:
            # Storing is part of capturing: its time joins the last capture's.
            p.record.capture_s[-1] += time.perf_counter() - start
        if p.counts or p.sums:
            # One conversion for every count and sum of the pass (not one per tensor).
            tensors = [t for _, _, t in p.counts] + [t for _, t in p.sums]
            values = torch.stack([t.to(torch.float64) for t in tensors]).tolist()
            r = p.record
            for (kind, layer, _), value in zip(p.counts, values, strict=False):
                per_layer = getattr(r, kind)
                per_layer[layer] = per_layer.get(layer, 0) + int(value)
            for (name, _), value in zip(p.sums, values[len(p.counts) :], strict=True):
                current = getattr(r, name)
                setattr(r, name, current + type(current)(value))  # ints stay ints

    def _reweave(self, p: _Pass, layer: int, hidden: Tensor) -> Tensor:
        start = time.perf_counter()
        c = self.config
        b = self.buffer
        assert b.entries is not None
        if p.recency is None:  # only multi_criteria reads recency: not computed for the others
            multi = c.retrieval_strategy == "multi_criteria"
            p.recency = b.recency() if multi else b.relevance
        outcome = self.reweavers[str(layer)](
            hidden,
            b.entries,
            b.valid,
            b.relevance,
            p.recency,
            strategy=c.retrieval_strategy,
            k=c.retrieval_k,
            threshold=c.similarity_threshold,
            hybrid_weight=c.hybrid_weight,
            weights=c.multi_criteria_weights,
        )
        b.mark_accessed(outcome.retrieved.indices)
        p.counts.append(("reconstructions", layer, outcome.scored))
        p.sums.append(("retrieval_queries", outcome.scored))
        p.sums.append(("retrieval_hits", outcome.hits))
        p.sums.append(("best_score_sum", outcome.best_score_sum))
        p.sums.append(("quality_sum", outcome.quality_sum))
        p.sums.append(("gate_sum", outcome.gate_sum))
        p.record.retrieval_s.append(outcome.retrieval_s)
        p.record.reconstruction_s.append(time.perf_counter() - start)
        return outcome.hidden

    def hook_handles(self) -> Iterator[tuple[int, Any]]:
        """The (layer, handle) of each forward hook this model registered."""
        return iter(self._hooks.items())

    def remove_hooks(self) -> None:
        """Remove the forward hooks (the model then runs as its plain backbone)."""
        for handle in self._hooks.values():
            handle.remove()
        self._hooks.clear()
