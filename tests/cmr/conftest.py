"""Tiny CMR models for the tests (CPU, a few milliseconds per forward pass)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the CMR tests need the torch extra")

from allele.cmr import FullCMRModel, GPTConfig  # noqa: E402

TINY = GPTConfig(vocab_size=48, n_positions=64, d_model=32, n_layers=3, n_heads=2)


def tiny_model(**cmr: object) -> FullCMRModel:
    """A 3-layer model capturing layer 0 and reweaving layer 1 (overridable)."""
    torch.manual_seed(0)
    config = {"target_layers": [0], "intervention_layers": [1], "buffer_size": 64, **cmr}
    return FullCMRModel(TINY, config).eval()


@pytest.fixture
def ids() -> torch.Tensor:
    return torch.randint(0, TINY.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))
