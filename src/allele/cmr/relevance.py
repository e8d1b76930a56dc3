"""How relevant each position's hidden state is, as a score in [0, 1] per position.

* ``attention``: the attention the segment's mean state pays each position,
  ``softmax_t(h_t . mean(h) / sqrt(d))``, scaled so the most attended position scores 1 --
  what the segment as a whole is about.
* ``variance``: the variance of the state over its channels, scaled so the largest scores 1 --
  states far from the LayerNorm-flat average carry more.
* ``hybrid``: ``w * attention + (1 - w) * variance``.

Every score is computed for all positions of all sequences at once (``[batch, positions]``);
the scores decide what is stored, so a score that looks at the whole segment leaks nothing
into the current forward pass.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from allele.cmr.config import SCORERS
from allele.errors import ValidationError


def _scaled(scores: Tensor) -> Tensor:
    top = scores.amax(dim=1, keepdim=True).clamp_min(torch.finfo(scores.dtype).tiny)
    return scores / top


def attention_relevance(hidden: Tensor) -> Tensor:
    """Attention of the segment's mean state over its positions, max-scaled to [0, 1]."""
    query = hidden.mean(dim=1, keepdim=True)  # [B, 1, d]
    # A matrix product, not an elementwise product and a sum: no [B, T, d] temporary.
    logits = (hidden @ query.transpose(1, 2)).squeeze(-1) / math.sqrt(hidden.shape[-1])
    return _scaled(torch.softmax(logits, dim=1))


def variance_relevance(hidden: Tensor) -> Tensor:
    """Per-position variance over channels, max-scaled to [0, 1]."""
    return _scaled(hidden.var(dim=-1, unbiased=False))


def relevance_scores(hidden: Tensor, method: str, hybrid_weight: float = 0.5) -> Tensor:
    """Scores ``[batch, positions]`` in [0, 1] of ``hidden`` ``[batch, positions, d]``,
    computed without gradients (they rank, they are not trained)."""
    with torch.no_grad():
        # A non-finite state is not stored (the model rejects it); it must not turn its
        # neighbours' scores into NaN too.
        h = torch.nan_to_num(hidden.detach().float(), nan=0.0, posinf=0.0, neginf=0.0)
        if method == "attention":
            return attention_relevance(h)
        if method == "variance":
            return variance_relevance(h)
        if method == "hybrid":
            w = hybrid_weight
            return w * attention_relevance(h) + (1.0 - w) * variance_relevance(h)
    raise ValidationError(f"scoring method must be one of {', '.join(SCORERS)}; got {method!r}")
