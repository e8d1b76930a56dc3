"""Reweaving: blend retrieved memory into a layer's hidden states through a learned gate.

For each position with query ``q = W_q LN(h)``, the ``k`` retrieved entries -- keys
``W_k LN(m_j)`` of stored states ``m_j`` and values ``W_v LN(s_j)`` of their successors
``s_j`` (what followed the stored state), written by the target layer's ``MemoryWriter`` --
and a null slot (logit 0, value 0: the position may take nothing) are attended over; the
result is projected back and added through a per-position gate::

    a = softmax([q . k_j / sqrt(r)]_j ++ [0])
    h' = h + sigmoid(W_g LN(h) + b_g) * W_o (sum_j a_j v_j)

Everything is differentiable except which ``k`` entries are retrieved, so a loss after the
layer trains the gate, the projections and -- through the stored states when they keep their
graph -- what the earlier segment wrote into memory.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from allele.cmr.retrieval import Retrieved, retrieval_scores, retrieve


@dataclass
class ReweaveOutcome:
    """What one reweave did, as 0-d tensors (read once per forward pass, not per position)."""

    hidden: Tensor
    retrieved: Retrieved
    hits: Tensor  # positions whose best score reached the similarity threshold
    best_score_sum: Tensor  # sum of the finite best scores
    scored: Tensor  # positions with at least one entry
    quality_sum: Tensor  # sum over positions of cos(h', h)
    gate_sum: Tensor
    retrieval_s: float  # ranking the memory and picking the k best


def _cosine_rows(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity of ``a`` and ``b`` along the last axis ``[B, T]``, in [-1, 1].

    Dot products and norms as batched matrix products: no ``[B, T, d]`` temporaries (which
    ``F.cosine_similarity`` makes several of).
    """
    dot = torch.einsum("btd,btd->bt", a, b)
    norms = torch.linalg.vector_norm(a, dim=-1) * torch.linalg.vector_norm(b, dim=-1)
    return (dot / norms.clamp_min(1e-8)).clamp(-1.0, 1.0)


class MemoryWriter(nn.Module):
    """What a target layer writes: each captured state's key ``W_k LN(m)`` and its successor's
    value ``W_v LN(s)``, ``[B, n, 2, memory_dim]``.

    Projected once, when captured, rather than at every later pass that reads the memory:
    the memory then holds ``2 * memory_dim`` numbers per entry instead of ``2 * d_model``, and
    a pass's cost grows with its own length, not with the memory's size.
    """

    def __init__(self, d_model: int, memory_dim: int) -> None:
        super().__init__()
        # Residual-stream states are small and unnormalised (as in GPT-2); like the backbone's
        # own attention, the memory reads them through a LayerNorm.
        self.norm = nn.LayerNorm(d_model)
        self.key = nn.Linear(d_model, memory_dim, bias=False)
        self.value = nn.Linear(d_model, memory_dim, bias=False)

    def forward(self, states: Tensor, successors: Tensor) -> Tensor:
        return torch.stack([self.key(self.norm(states)), self.value(self.norm(successors))], 2)

    def segment(self, states: Tensor) -> Tensor:
        """``forward(states, successors)`` where each position's successor is the next
        position of the segment (the last position's is its own state: not known yet).

        The successors' values are the states' values shifted by one position, so the
        segment is normalised and projected once rather than twice, and the successors are
        never copied out of the states.
        """
        normed = self.norm(states)
        values = self.value(normed)
        successors = torch.cat([values[:, 1:], values[:, -1:]], dim=1)
        return torch.stack([self.key(normed), successors], 2)


class Reweaver(nn.Module):
    """The learned blend of one intervention layer (see the module docstring)."""

    def __init__(self, d_model: int, memory_dim: int) -> None:
        super().__init__()
        self.memory_dim = memory_dim
        self.norm_hidden = nn.LayerNorm(d_model)
        self.query = nn.Linear(d_model, memory_dim, bias=False)
        self.out = nn.Linear(memory_dim, d_model)
        self.gate = nn.Linear(d_model, 1)
        nn.init.normal_(self.out.weight, 0.0, 0.02)
        nn.init.zeros_(self.out.bias)
        nn.init.zeros_(self.gate.bias)  # half open at the start: the blend gets gradients

    def forward(
        self,
        hidden: Tensor,
        memory: Tensor,
        valid: Tensor,
        relevance: Tensor,
        recency: Tensor,
        *,
        strategy: str,
        k: int,
        threshold: float,
        hybrid_weight: float,
        weights: tuple[float, float, float],
    ) -> ReweaveOutcome:
        """Reweave ``hidden`` ``[B, T, d]`` with ``memory`` ``[B, N, 2, r]``: each entry's key
        (matched against) and value (read from), as a ``MemoryWriter`` wrote them."""
        normed = self.norm_hidden(hidden)
        queries = self.query(normed)  # [B, T, r]
        memory = memory.to(hidden.dtype)
        keys = memory[:, :, 0]  # [B, N, r]
        start = time.perf_counter()
        scores = retrieval_scores(
            strategy,
            queries,
            keys,
            relevance,
            recency,
            valid,
            hybrid_weight=hybrid_weight,
            weights=weights,
        )
        found = retrieve(scores.detach(), k)
        retrieval_s = time.perf_counter() - start
        b, n = memory.shape[:2]
        # The k entries of every position in one row gather of the flattened [B * N] store
        # (keys and values together): much cheaper than advanced indexing with a broadcast
        # row index, which copies element by element.
        flat = found.indices + (torch.arange(b, device=hidden.device) * n).view(b, 1, 1)
        picked = memory.reshape(b * n, 2, self.memory_dim).index_select(0, flat.reshape(-1))
        picked = picked.view(*found.indices.shape, 2, self.memory_dim)  # [B, T, k, 2, r]
        sel_keys, sel_values = picked[..., 0, :], picked[..., 1, :]
        logits = torch.einsum("btkr,btr->btk", sel_keys, queries) / math.sqrt(self.memory_dim)
        logits = logits.masked_fill(~torch.isfinite(found.scores), float("-inf"))
        null = logits.new_zeros((*logits.shape[:-1], 1))
        weights_ = torch.softmax(torch.cat([logits, null], dim=-1), dim=-1)[..., :-1]
        read = torch.einsum("btk,btkr->btr", weights_, sel_values)  # [B, T, r]
        gate = torch.sigmoid(self.gate(normed))  # [B, T, 1]
        new = torch.addcmul(hidden, gate, self.out(read))
        with torch.no_grad():
            best = found.scores[..., 0]
            finite = torch.isfinite(best)
            outcome = ReweaveOutcome(
                hidden=new,
                retrieved=found,
                hits=(finite & (best >= threshold)).sum(),
                best_score_sum=torch.where(finite, best, torch.zeros_like(best)).sum(),
                scored=finite.sum(),
                quality_sum=_cosine_rows(new.detach(), hidden.detach()).sum(),
                gate_sum=gate.detach().sum(),
                retrieval_s=retrieval_s,
            )
        return outcome
