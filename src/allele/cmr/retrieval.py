"""Retrieval strategies: for every position, a score for every memory entry of its stream.

``retrieval_scores(strategy, queries, keys, relevance, recency, valid)`` returns
``[batch, positions, entries]`` (-inf for empty slots); ``retrieve`` keeps each position's
``k`` best. Queries and keys are the reweaver's learned projections of the hidden states and
of the stored states, so what counts as similar is learned.

* ``similarity``: cosine similarity of the position's query and the entry's key.
* ``contextual``: cosine similarity of the entry's key with the running mean of the queries up
  to and including the position (the context so far, causal), times the entry's relevance.
* ``multi_criteria``: a weighted mean of similarity, relevance and recency (weights
  ``multi_criteria_weights``).
* ``hybrid``: ``w * similarity + (1 - w) * contextual`` (``w`` = ``hybrid_weight``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from allele.cmr.config import STRATEGIES
from allele.errors import ValidationError


@dataclass
class Retrieved:
    """Each position's ``k`` best entries: slot ``indices`` and ``scores`` ``[B, T, k]``
    (-inf where the stream has fewer than ``k`` entries)."""

    indices: Tensor
    scores: Tensor


def _cosine(queries: Tensor, keys: Tensor) -> Tensor:
    return F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).transpose(1, 2)


def causal_context(queries: Tensor) -> Tensor:
    """The mean of the queries up to and including each position ``[B, T, r]``."""
    counts = torch.arange(1, queries.shape[1] + 1, device=queries.device, dtype=queries.dtype)
    return queries.cumsum(dim=1) / counts.view(1, -1, 1)


def retrieval_scores(
    strategy: str,
    queries: Tensor,
    keys: Tensor,
    relevance: Tensor,
    recency: Tensor,
    valid: Tensor,
    *,
    hybrid_weight: float = 0.5,
    weights: tuple[float, float, float] = (0.6, 0.3, 0.1),
) -> Tensor:
    """Scores ``[B, T, N]`` of every entry for every position (see the module docstring)."""
    rel = relevance.to(queries.dtype).unsqueeze(1)  # [B, 1, N]
    if strategy == "similarity":
        scores = _cosine(queries, keys)
    elif strategy == "contextual":
        scores = _cosine(causal_context(queries), keys) * rel
    elif strategy == "multi_criteria":
        w_sim, w_rel, w_rec = weights
        total = max(w_sim + w_rel + w_rec, 1e-12)
        rec = recency.to(queries.dtype).unsqueeze(1)
        scores = (w_sim * _cosine(queries, keys) + w_rel * rel + w_rec * rec) / total
    elif strategy == "hybrid":
        w = hybrid_weight
        context = _cosine(causal_context(queries), keys) * rel
        scores = w * _cosine(queries, keys) + (1.0 - w) * context
    else:
        raise ValidationError(
            f"retrieval strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}"
        )
    return scores.masked_fill(~valid.unsqueeze(1), float("-inf"))


def retrieve(scores: Tensor, k: int) -> Retrieved:
    """Each position's ``k`` highest-scoring entries (fewer when the memory is smaller)."""
    top = scores.topk(min(k, scores.shape[-1]), dim=-1)
    return Retrieved(indices=top.indices, scores=top.values)
