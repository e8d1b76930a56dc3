"""The layered memory buffer: capacities, eviction order, counters, stream isolation."""

from __future__ import annotations

import pytest
import torch

from allele.cmr.buffer import LayeredMemoryBuffer
from allele.errors import ValidationError


def _buffer(eviction: str, size: int = 3, layers: tuple[int, ...] = (0,), **kw: object):
    return LayeredMemoryBuffer(
        layers,
        buffer_size=size,
        layer_capacity=kw.pop("layer_capacity", size),  # type: ignore[arg-type]
        eviction=eviction,
        **kw,  # type: ignore[arg-type]
    )


def _insert(buf: LayeredMemoryBuffer, values: list[float], relevance: list[float], layer=0):
    n = len(values)
    states = torch.tensor(values).view(1, n, 1).expand(1, n, 2).contiguous()
    pairs = torch.stack([states, states + 100], dim=2)  # key, value
    buf.insert(layer, pairs, torch.tensor([relevance]), torch.ones(1, n, dtype=torch.bool))


def _kept(buf: LayeredMemoryBuffer) -> list[float]:
    assert buf.keys is not None
    return sorted(buf.keys[0, buf.valid[0], 0].tolist())


def test_lru_evicts_the_least_recently_used_first() -> None:
    buf = _buffer("lru")
    _insert(buf, [1.0, 2.0, 3.0], [0.5, 0.5, 0.5])
    buf.step = 1
    slot = int((buf.keys[0, :, 0] == 1.0).nonzero())  # type: ignore[index]
    buf.mark_accessed(torch.tensor([[slot]]))  # 1 is used: 2 is now the oldest
    buf.step = 2
    _insert(buf, [4.0], [0.5])
    assert _kept(buf) == [1.0, 3.0, 4.0]
    assert buf.counters.evicted == 1 and buf.counters.stored == 4


def test_relevance_evicts_the_least_relevant_even_if_new() -> None:
    buf = _buffer("relevance")
    _insert(buf, [1.0, 2.0, 3.0], [0.9, 0.2, 0.8])
    _insert(buf, [4.0, 5.0], [0.95, 0.1])
    assert _kept(buf) == [1.0, 3.0, 4.0]
    c = buf.counters
    # 5 was offered and dropped at once (captured, not stored); 2 was evicted.
    assert (c.offered, c.stored, c.evicted) == (5, 4, 1)


def test_lru_relevance_weighs_recency_against_relevance() -> None:
    buf = _buffer("lru_relevance", lru_weight=0.5)
    _insert(buf, [1.0, 2.0], [0.9, 0.1])  # step 0
    buf.step = 10
    _insert(buf, [3.0, 4.0], [0.1, 0.6])  # recency 1: scores 0.55 and 0.8 vs 0.45 and 0.05
    assert _kept(buf) == [1.0, 3.0, 4.0]


def test_per_layer_and_total_capacity() -> None:
    buf = LayeredMemoryBuffer((0, 1), buffer_size=5, layer_capacity=3, eviction="relevance")
    _insert(buf, [1.0, 2.0, 3.0, 4.0], [0.1, 0.2, 0.3, 0.4], layer=0)
    assert buf.entries_per_layer() == {0: 3, 1: 0}
    _insert(buf, [5.0, 6.0, 7.0], [0.9, 0.8, 0.05], layer=1)
    per_layer = buf.entries_per_layer()
    assert sum(per_layer.values()) == 5 and per_layer[1] <= 3
    assert _kept(buf) == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert buf.counters.evicted_per_layer == {}
    assert buf.counters.stored_per_layer == {0: 3, 1: 2}


def test_values_travel_with_their_keys() -> None:
    buf = _buffer("relevance")
    _insert(buf, [1.0, 2.0, 3.0, 4.0], [0.4, 0.1, 0.3, 0.2])
    assert buf.values is not None and buf.keys is not None
    assert torch.equal(buf.values[buf.valid], buf.keys[buf.valid] + 100)


def test_a_batch_of_another_size_is_refused() -> None:
    buf = _buffer("lru")
    _insert(buf, [1.0], [0.5])
    with pytest.raises(ValidationError, match="1 streams"):
        buf.insert(
            0,
            torch.zeros(2, 1, 2, 2),
            torch.zeros(2, 1),
            torch.ones(2, 1, dtype=torch.bool),
        )


def test_unknown_eviction_is_refused() -> None:
    with pytest.raises(ValidationError, match="lru, relevance, lru_relevance"):
        _buffer("fifo")
