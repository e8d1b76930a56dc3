"""Retrieval strategies rank memory entries as documented."""

from __future__ import annotations

import pytest
import torch

from allele.cmr.retrieval import causal_context, retrieval_scores, retrieve
from allele.errors import ValidationError

KEYS = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [-1.0, 0.0]]])  # [1, 4, 2]
RELEVANCE = torch.tensor([[0.1, 1.0, 0.5, 0.9]])
RECENCY = torch.tensor([[0.0, 0.2, 1.0, 0.5]])
VALID = torch.ones(1, 4, dtype=torch.bool)


def _rank(strategy: str, queries: torch.Tensor, **kw: object) -> list[list[int]]:
    scores = retrieval_scores(strategy, queries, KEYS, RELEVANCE, RECENCY, VALID, **kw)  # type: ignore[arg-type]
    return retrieve(scores, 4).indices[0].tolist()


def test_similarity_ranks_by_cosine() -> None:
    queries = torch.tensor([[[2.0, 0.0], [0.0, 3.0]]])
    assert _rank("similarity", queries) == [[0, 2, 1, 3], [1, 2, 0, 3]]


def test_contextual_uses_the_causal_mean_times_relevance() -> None:
    queries = torch.tensor([[[1.0, 0.0], [-1.0, 2.0]]])
    context = causal_context(queries)
    assert torch.allclose(context, torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]))
    # position 0: cos with (1,0) = [1, 0, .707, -1] * relevance = [.1, 0, .354, -.9]
    assert _rank("contextual", queries)[0] == [2, 0, 1, 3]
    # position 1: context (0, 1): [0, 1, .707, 0] * relevance = [0, 1, .354, 0]
    assert _rank("contextual", queries)[1][:2] == [1, 2]


def test_multi_criteria_weights_recency() -> None:
    queries = torch.tensor([[[1.0, 0.0]]])
    assert _rank("multi_criteria", queries, weights=(1.0, 0.0, 0.0))[0][0] == 0
    assert _rank("multi_criteria", queries, weights=(0.0, 0.0, 1.0))[0][0] == 2
    assert _rank("multi_criteria", queries, weights=(0.0, 1.0, 0.0))[0][0] == 1


def test_hybrid_interpolates_similarity_and_context() -> None:
    queries = torch.tensor([[[1.0, 0.0]]])
    assert _rank("hybrid", queries, hybrid_weight=1.0) == _rank("similarity", queries)
    assert _rank("hybrid", queries, hybrid_weight=0.0) == _rank("contextual", queries)


def test_empty_slots_are_never_ranked_first() -> None:
    valid = torch.tensor([[False, True, True, True]])
    scores = retrieval_scores(
        "similarity", torch.tensor([[[1.0, 0.0]]]), KEYS, RELEVANCE, RECENCY, valid
    )
    found = retrieve(scores, 4)
    assert found.indices[0, 0, 0].item() == 2 and found.scores[0, 0, -1].item() == float("-inf")


def test_unknown_strategy() -> None:
    with pytest.raises(ValidationError, match="similarity, contextual"):
        retrieval_scores("nearest", KEYS, KEYS, RELEVANCE, RECENCY, VALID)
