"""The layered memory buffer: what captured hidden states wrote, per sequence and layer, bounded.

An entry is a captured state as its target layer's writer projected it: a key (the state) and
a value (the state that followed it), ``[2, memory_dim]``. Each batch row is a stream with its
own memory (a later segment of row ``b`` sees only what earlier segments of row ``b`` stored).
The entries of every layer live in one dense store, ``[streams, slots, 2, memory_dim]``, with a
``valid`` mask and per-entry metadata (layer, relevance, insertion order and step, last access
step, access count), so that capture, eviction, retrieval and access tracking are a few tensor
operations whatever the number of entries. An insertion copies only the new entries it keeps,
into free slots.

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

#: The integer metadata of an entry, in the order of ``LayeredMemoryBuffer.meta``'s last axis.
_META = ("layer", "inserted", "born", "last_access", "access_count")


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
    """Bounded memory of captured states per stream and layer (see the module docstring)."""

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
        # Packed so that an insertion or a compaction is a few tensor operations, not one per
        # column: entries [B, N, 2, r] (key and value), meta [B, N, 5] int64.
        self.entries: Tensor | None = None
        self.meta = torch.zeros(0, 0, len(_META), dtype=torch.long)
        self.relevance = torch.zeros(0, 0)
        self.valid = torch.zeros(0, 0, dtype=torch.bool)
        self.version += 1

    def reset_counters(self) -> None:
        self.counters = BufferCounters()

    @property
    def keys(self) -> Tensor | None:
        """What each entry is matched by ``[B, N, r]`` (None while empty)."""
        return None if self.entries is None else self.entries[:, :, 0]

    @property
    def values(self) -> Tensor | None:
        """What each entry gives when read ``[B, N, r]``."""
        return None if self.entries is None else self.entries[:, :, 1]

    @property
    def layer(self) -> Tensor:
        return self.meta[..., 0]

    @property
    def inserted(self) -> Tensor:
        """Insertion order over all layers and streams."""
        return self.meta[..., 1]

    @property
    def born(self) -> Tensor:
        """Step (forward pass) of the insertion."""
        return self.meta[..., 2]

    @property
    def last_access(self) -> Tensor:
        """Step of the latest retrieval (of the insertion when never retrieved)."""
        return self.meta[..., 3]

    @property
    def access_count(self) -> Tensor:
        return self.meta[..., 4]

    @property
    def streams(self) -> int | None:
        """Batch rows the memory holds (None while empty)."""
        return None if self.entries is None else self.entries.shape[0]

    def __len__(self) -> int:
        """Valid entries over every stream and layer."""
        return int(self.valid.sum())

    def entries_per_layer(self) -> dict[int, int]:
        """Valid entries of each layer, summed over streams."""
        if self.entries is None:
            return {layer: 0 for layer in self.layers}
        return self._per_layer(self.valid)

    def _per_layer(self, mask: Tensor) -> dict[int, int]:
        if len(self.layers) == 1:
            return {self.layers[0]: int(mask.sum())}
        ids = torch.tensor(self.layers, dtype=torch.long)
        counts = ((self.layer.unsqueeze(-1) == ids) & mask.unsqueeze(-1)).sum(dim=(0, 1))
        return dict(zip(self.layers, counts.tolist(), strict=True))

    def capacity(self) -> int:
        """Entries the memory can hold over its streams (0 while empty)."""
        streams = self.streams or 0
        return streams * min(self.buffer_size, self.layer_capacity * len(self.layers))

    def nbytes(self) -> int:
        """Bytes of the tensors the memory holds."""
        if self.entries is None:
            return 0
        tensors = (self.entries, self.meta, self.relevance, self.valid)
        return sum(t.numel() * t.element_size() for t in tensors)

    # insertion and eviction ---------------------------------------------------------------------

    def insert(self, layer: int, pairs: Tensor, relevance: Tensor, valid: Tensor) -> None:
        """Add ``pairs`` ``[B, n, 2, r]`` of ``layer`` (each captured state's key and its
        successor's value), ``relevance`` and ``valid`` ``[B, n]``, then evict down to the
        capacities."""
        if layer not in self.layers:
            raise ValidationError(f"layer {layer} is not a memory layer; layers: {self.layers}")
        b, n = pairs.shape[:2]
        if self.entries is not None and self.entries.shape[0] != b:
            raise ValidationError(
                f"the memory holds {self.entries.shape[0]} streams (batch rows); a batch of {b} "
                "cannot use it: call reset_memory() first"
            )
        meta = torch.empty(b, n, len(_META), dtype=torch.long)
        meta[..., 0] = layer
        meta[..., 1] = torch.arange(self._sequence, self._sequence + b * n).view(b, n)
        meta[..., 2:4] = self.step
        meta[..., 4] = 0
        self._sequence += b * n
        relevance = relevance.to(torch.float32)
        if self.entries is None:
            self.entries, self.meta, self.relevance, self.valid = pairs, meta, relevance, valid
            self._evict()
            old = torch.zeros_like(valid)
            kept = self.valid
        else:
            # Eviction is decided on the metadata of the old and the new entries together
            # (small arrays); only the new entries that stay are then copied, into the slots
            # of the evicted (or never used) ones. Copying the whole store on every insertion
            # would cost more than the rest of the capture.
            store = (self.meta, self.relevance, self.valid)
            width = self.valid.shape[1]
            self.meta = torch.cat([self.meta, meta], dim=1)
            self.relevance = torch.cat([self.relevance, relevance], dim=1)
            self.valid = torch.cat([self.valid, valid], dim=1)
            self._evict()
            keep = self.valid
            self.meta, self.relevance, self.valid = store
            old = self.valid & ~keep[:, :width]  # stored before, evicted now
            kept = keep[:, width:]
            self._place(pairs, meta, relevance, kept, keep[:, :width])
        offered, stored, evicted = torch.stack([valid.sum(), kept.sum(), old.sum()]).tolist()
        c = self.counters
        c.offered += offered
        c.stored += stored
        c.offered_per_layer[layer] = c.offered_per_layer.get(layer, 0) + offered
        c.stored_per_layer[layer] = c.stored_per_layer.get(layer, 0) + stored
        if evicted:
            # Entries offered by this very insertion and not kept are not evictions.
            c.evicted += evicted
            by_layer = {layer: evicted} if len(self.layers) == 1 else self._per_layer(old)
            for key, count in by_layer.items():
                c.evicted_per_layer[key] = c.evicted_per_layer.get(key, 0) + count
        if self.valid.shape[1] > self._slots():
            self._compact()  # a first insertion larger than the memory
        self.version += 1

    def _slots(self) -> int:
        """Slots one stream needs at most."""
        return min(self.buffer_size, self.layer_capacity * len(self.layers))

    def _place(
        self, pairs: Tensor, meta: Tensor, relevance: Tensor, kept: Tensor, still: Tensor
    ) -> None:
        """Write the ``kept`` new entries into the slots that ``still`` does not hold."""
        assert self.entries is not None
        b, n = kept.shape
        free = ~still
        need = kept.sum(dim=1)
        shortfall = int((need - free.sum(dim=1)).max())
        if shortfall > 0:  # grow the store (at most to the memory's size)
            self._grow(shortfall)
            free = torch.cat([free, torch.ones(b, shortfall, dtype=torch.bool)], dim=1)
        span = min(n, free.shape[1])
        slots = free.to(torch.int8).argsort(dim=1, descending=True, stable=True)[:, :span]
        sources = kept.to(torch.int8).argsort(dim=1, descending=True, stable=True)[:, :span]
        write = torch.arange(span).unsqueeze(0) < need.unsqueeze(1)
        rows = torch.arange(b).unsqueeze(1).expand(b, span)[write]
        slot, source = slots[write], sources[write]
        self.valid = still.clone() if shortfall <= 0 else free.logical_not()
        self.valid[rows, slot] = True
        values = pairs[rows, source].to(self.entries.dtype)
        if self.entries.requires_grad or values.requires_grad:
            # Out of place: an earlier pass may have saved the store for its backward.
            self.entries = self.entries.index_put((rows, slot), values)
        else:
            self.entries[rows, slot] = values
        self.meta[rows, slot] = meta[rows, source]
        self.relevance[rows, slot] = relevance[rows, source]

    def _grow(self, slots: int) -> None:
        assert self.entries is not None
        b = self.entries.shape[0]
        self.entries = torch.cat(
            [self.entries, self.entries.new_zeros(b, slots, *self.entries.shape[2:])], dim=1
        )
        self.meta = torch.cat([self.meta, self.meta.new_zeros(b, slots, len(_META))], dim=1)
        self.relevance = torch.cat([self.relevance, self.relevance.new_zeros(b, slots)], dim=1)
        self.valid = torch.cat([self.valid, self.valid.new_zeros(b, slots)], dim=1)

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
            score = w * self.recency().to(torch.float64) + (1.0 - w) * self.relevance.to(
                torch.float64
            )
            score = score + order * 1e-15  # the newer insertion among equals
        return score.masked_fill(~self.valid, float("-inf"))

    def recency(self) -> Tensor:
        """Last access scaled to [0, 1] within each stream ``[B, N]`` (1 = most recent)."""
        access = self.last_access.to(torch.float32)
        low = access.masked_fill(~self.valid, float("inf")).amin(dim=1, keepdim=True)
        high = access.masked_fill(~self.valid, float("-inf")).amax(dim=1, keepdim=True)
        span = (high - low).clamp_min(1.0)
        return ((access - low) / span).clamp(0.0, 1.0).nan_to_num(0.0)

    def _evict(self) -> None:
        """Invalidate the entries over capacity."""
        per_stream = self.valid.sum(dim=1)
        single = len(self.layers) == 1
        limit = min(self.layer_capacity, self.buffer_size) if single else self.buffer_size
        over_total = int(per_stream.max()) > limit
        if not single:
            score = self.keep_scores()
            for layer in self.layers:
                mine = self.valid & (self.layer == layer)
                if int(mine.sum(dim=1).max()) > self.layer_capacity:
                    kept = self._top_n(score.masked_fill(~mine, float("-inf")), self.layer_capacity)
                    self.valid &= ~mine | kept
            over_total = int(self.valid.sum(dim=1).max()) > limit
        if over_total:
            self.valid &= self._top_n(self.keep_scores(), limit)

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
        assert self.entries is not None
        width = int(self.valid.sum(dim=1).max())
        if width == self.valid.shape[1]:
            return
        order = self.valid.to(torch.int8).argsort(dim=1, descending=True, stable=True)[:, :width]
        b, n = self.valid.shape
        # Rows of the flattened [B * N] store: plain row indexing copies whole entries, much
        # faster than a gather with an index expanded over the state's channels.
        rows = (order + torch.arange(b).unsqueeze(1) * n).reshape(-1)
        e = self.entries
        self.entries = e.reshape(b * n, *e.shape[2:])[rows].view(b, width, *e.shape[2:])
        self.meta = self.meta.reshape(b * n, len(_META))[rows].view(b, width, len(_META))
        self.relevance = self.relevance.reshape(-1)[rows].view(b, width)
        self.valid = self.valid.reshape(-1)[rows].view(b, width)

    # access ------------------------------------------------------------------------------------

    def mark_accessed(self, indices: Tensor) -> None:
        """Note that the entries at ``indices`` ``[B, ...]`` (slot numbers) were retrieved now."""
        if self.entries is None or indices.numel() == 0:
            return
        flat = indices.reshape(indices.shape[0], -1)
        self.meta[..., 3].scatter_(1, flat, self.step)
        self.meta[..., 4].scatter_add_(1, flat, torch.ones_like(flat))

    def detach(self) -> None:
        """Cut the autograd graph of the stored entries (their values stay)."""
        if self.entries is not None:
            self.entries = self.entries.detach()
            self.version += 1
