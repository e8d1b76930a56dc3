"""The layered memory buffer: captured hidden states per sequence, per layer, bounded.

Each batch row is a stream with its own memory (a later segment of row ``b`` sees only what
earlier segments of row ``b`` stored). The entries of every layer live in one dense store,
``[streams, slots, d_model]`` with a ``valid`` mask and per-entry metadata (layer, relevance,
insertion order, last access step, access count), so that capture, eviction, retrieval and
access tracking are a few tensor operations whatever the number of entries.

Capacities are per stream: ``layer_capacity`` entries per layer and ``buffer_size`` over all
layers. When an insertion overflows either, the entries with the lowest keep score go:

* ``lru``: least recently accessed (retrieved, or inserted when never retrieved) first,
  the older insertion first among equals;
* ``relevance``: lowest relevance first, the older insertion first among equals;
* ``lru_relevance``: lowest ``w * recency + (1 - w) * relevance`` first, where recency is the
  last access rank scaled to [0, 1] within the stream and ``w`` is ``lru_weight``.

New entries compete with the old ones: an entry may be evicted in the insertion that offered
it (it then counts as captured but not stored).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from allele.cmr.config import EVICTIONS
from allele.errors import ValidationError

#: The per-entry metadata columns, each ``[B, N]``.
_COLUMNS = ("valid", "layer", "relevance", "inserted", "born", "last_access", "access_count")


@dataclass
class BufferCounters:
    """What the buffer has done since it was created or reset."""

    offered: int = 0  # valid entries given to insert()
    stored: int = 0  # of those, still present right after their insertion
    evicted: int = 0  # previously stored entries removed to make room
    offered_per_layer: dict[int, int] = field(default_factory=dict)
    stored_per_layer: dict[int, int] = field(default_factory=dict)
    evicted_per_layer: dict[int, int] = field(default_factory=dict)


class LayeredMemoryBuffer:
    """Bounded memory of hidden states per stream and layer (see the module docstring)."""

    def __init__(
        self,
        layers: tuple[int, ...],
        *,
        buffer_size: int,
        layer_capacity: int,
        eviction: str = "lru_relevance",
        lru_weight: float = 0.5,
    ) -> None:
        if eviction not in EVICTIONS:
            raise ValidationError(
                f"eviction strategy must be one of {', '.join(EVICTIONS)}; got {eviction!r}"
            )
        self.layers = tuple(layers)
        self.buffer_size = buffer_size
        self.layer_capacity = min(layer_capacity, buffer_size)
        self.eviction = eviction
        self.lru_weight = lru_weight
        self.counters = BufferCounters()
        self.step = 0  # advanced once per forward pass by the model
        self.version = 0  # bumped on every change, for caches of derived tensors
        self._sequence = 0  # insertion order across all layers
        self.clear()

    def clear(self) -> None:
        """Forget every entry (the counters stay; see ``reset_counters``)."""
        self.states: Tensor | None = None  # [B, N, d]: the captured states
        self.successors: Tensor | None = None  # [B, N, d]: the state of the next position
        self.valid = torch.zeros(0, 0, dtype=torch.bool)
        self.layer = torch.zeros(0, 0, dtype=torch.long)
        self.relevance = torch.zeros(0, 0)
        self.inserted = torch.zeros(0, 0, dtype=torch.long)
        self.born = torch.zeros(0, 0, dtype=torch.long)  # step of the insertion
        self.last_access = torch.zeros(0, 0, dtype=torch.long)
        self.access_count = torch.zeros(0, 0, dtype=torch.long)
        self.version += 1

    def reset_counters(self) -> None:
        self.counters = BufferCounters()

    @property
    def streams(self) -> int | None:
        """Batch rows the memory holds (None while empty)."""
        return None if self.states is None else self.states.shape[0]

    def __len__(self) -> int:
        """Valid entries over every stream and layer."""
        return int(self.valid.sum())

    def entries_per_layer(self) -> dict[int, int]:
        """Valid entries of each layer, summed over streams."""
        if self.states is None:
            return {layer: 0 for layer in self.layers}
        counts = ((self.layer.unsqueeze(-1) == self._layer_ids()) & self.valid.unsqueeze(-1)).sum(
            dim=(0, 1)
        )
        return dict(zip(self.layers, counts.tolist(), strict=True))

    def _layer_ids(self) -> Tensor:
        return torch.tensor(self.layers, dtype=torch.long)

    def capacity(self) -> int:
        """Entries the memory can hold over its streams (0 while empty)."""
        streams = self.streams or 0
        return streams * min(self.buffer_size, self.layer_capacity * len(self.layers))

    def nbytes(self) -> int:
        """Bytes of the tensors the memory holds."""
        if self.states is None:
            return 0
        assert self.successors is not None
        tensors = (self.states, self.successors)
        extra = [getattr(self, name) for name in _COLUMNS]
        return sum(t.numel() * t.element_size() for t in (*tensors, *extra))

    # insertion and eviction ---------------------------------------------------------------------

    def insert(
        self, layer: int, states: Tensor, successors: Tensor, relevance: Tensor, valid: Tensor
    ) -> None:
        """Add ``states`` ``[B, n, d]`` of ``layer`` with the ``successors`` (the states of the
        positions that followed them), ``relevance`` and ``valid`` ``[B, n]``, then evict down
        to the capacities."""
        if layer not in self.layers:
            raise ValidationError(f"layer {layer} is not a memory layer; layers: {self.layers}")
        b, n, _ = states.shape
        if self.states is not None and self.states.shape[0] != b:
            raise ValidationError(
                f"the memory holds {self.states.shape[0]} streams (batch rows); a batch of {b} "
                "cannot use it: call reset_memory() first"
            )
        order = torch.arange(self._sequence, self._sequence + b * n, dtype=torch.long).view(b, n)
        self._sequence += b * n
        new = {
            "valid": valid,
            "layer": torch.full((b, n), layer, dtype=torch.long),
            "relevance": relevance.to(torch.float32),
            "inserted": order,
            "born": torch.full((b, n), self.step, dtype=torch.long),
            "last_access": torch.full((b, n), self.step, dtype=torch.long),
            "access_count": torch.zeros(b, n, dtype=torch.long),
        }
        offered = int(valid.sum())
        if self.states is None or self.successors is None:
            self.states, self.successors = states, successors
            for name, value in new.items():
                setattr(self, name, value)
        else:
            self.states = torch.cat([self.states, states.to(self.states.dtype)], dim=1)
            self.successors = torch.cat(
                [self.successors, successors.to(self.successors.dtype)], dim=1
            )
            for name, value in new.items():
                setattr(self, name, torch.cat([getattr(self, name), value], dim=1))
        fresh = torch.zeros_like(self.valid)
        fresh[:, -n:] = valid
        evicted_by_layer = self._evict()
        stored = int((self.valid & fresh).sum())
        c = self.counters
        c.offered += offered
        c.stored += stored
        c.offered_per_layer[layer] = c.offered_per_layer.get(layer, 0) + offered
        c.stored_per_layer[layer] = c.stored_per_layer.get(layer, 0) + stored
        # Evictions of entries offered in this very insertion are not evictions of the memory.
        evicted_by_layer[layer] = evicted_by_layer.get(layer, 0) - (offered - stored)
        for key, count in evicted_by_layer.items():
            if count:
                c.evicted += count
                c.evicted_per_layer[key] = c.evicted_per_layer.get(key, 0) + count
        self._compact()
        self.version += 1

    def keep_scores(self) -> Tensor:
        """Per entry ``[B, N]``: higher is kept longer by the eviction strategy; -inf for
        empty slots."""
        order = self.inserted.to(torch.float64)
        if self.eviction == "lru":
            score = self.last_access.to(torch.float64) * 2.0**32 + order
        elif self.eviction == "relevance":
            rank = order.argsort(dim=1).argsort(dim=1).to(torch.float64)
            score = self.relevance.to(torch.float64) + rank * 1e-9
        else:
            w = self.lru_weight
            score = w * self._recency() + (1.0 - w) * self.relevance.to(torch.float64)
            score = score + order * 1e-15  # the newer insertion among equals
        return score.masked_fill(~self.valid, float("-inf"))

    def _recency(self) -> Tensor:
        """Last access scaled to [0, 1] within each stream (1 = most recent)."""
        access = self.last_access.to(torch.float64)
        low = access.masked_fill(~self.valid, float("inf")).amin(dim=1, keepdim=True)
        high = access.masked_fill(~self.valid, float("-inf")).amax(dim=1, keepdim=True)
        span = (high - low).clamp_min(1.0)
        return ((access - low) / span).clamp(0.0, 1.0).nan_to_num(0.0)

    def _evict(self) -> dict[int, int]:
        """Invalidate the entries over capacity; return how many each layer lost."""
        before = self.entries_per_layer()
        score = self.keep_scores()
        for layer in self.layers:
            mine = self.valid & (self.layer == layer)
            if int(mine.sum(dim=1).max()) > self.layer_capacity:
                self.valid &= ~mine | self._top(score.masked_fill(~mine, float("-inf")), mine)
        if int(self.valid.sum(dim=1).max()) > self.buffer_size:
            score = score.masked_fill(~self.valid, float("-inf"))
            self.valid &= self._top_n(score, self.buffer_size)
        after = self.entries_per_layer()
        return {layer: before[layer] - after[layer] for layer in self.layers}

    def _top(self, score: Tensor, candidates: Tensor) -> Tensor:
        return self._top_n(score, self.layer_capacity) & candidates

    @staticmethod
    def _top_n(score: Tensor, n: int) -> Tensor:
        """Mask of each row's ``n`` highest finite scores."""
        k = min(n, score.shape[1])
        keep = torch.zeros_like(score, dtype=torch.bool)
        top = score.topk(k, dim=1)
        keep.scatter_(1, top.indices, top.values > float("-inf"))
        return keep

    def _compact(self) -> None:
        """Move valid entries first in each row and drop columns no stream uses."""
        assert self.states is not None and self.successors is not None
        width = int(self.valid.sum(dim=1).max())
        if width == self.valid.shape[1]:
            return
        order = self.valid.to(torch.int8).argsort(dim=1, descending=True, stable=True)[:, :width]
        index = order.unsqueeze(-1).expand(-1, -1, self.states.shape[-1])
        self.states = self.states.gather(1, index)
        self.successors = self.successors.gather(1, index)
        for name in _COLUMNS:
            setattr(self, name, getattr(self, name).gather(1, order))

    # access ------------------------------------------------------------------------------------

    def mark_accessed(self, indices: Tensor) -> None:
        """Note that the entries at ``indices`` ``[B, ...]`` (slot numbers) were retrieved now."""
        if self.states is None or indices.numel() == 0:
            return
        flat = indices.reshape(indices.shape[0], -1)
        self.last_access.scatter_(1, flat, self.step)
        self.access_count.scatter_add_(1, flat, torch.ones_like(flat))

    def detach(self) -> None:
        """Cut the autograd graph of the stored states (their values stay)."""
        if self.states is not None and self.successors is not None:
            self.states = self.states.detach()
            self.successors = self.successors.detach()
            self.version += 1
