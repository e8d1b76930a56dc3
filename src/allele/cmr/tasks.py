"""Key-value recall across segments: a task whose answer lies beyond the context window.

Each stream is two segments. The first lists ``pairs`` random key -> value pairs
(``k1 v1 k2 v2 ...``); the second asks ``queries`` distinct keys of them, each followed by its
value (``k v k v ...``). A model is scored on predicting each queried value from its key
(at the key's position). The backbone sees one segment at a time, so without memory the
value is unknowable (chance: ``1 / values``); a memory of the first segment can answer.

Tokens: keys ``0 .. keys-1``, values ``keys .. keys+values-1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from allele.errors import ValidationError, check_int


@dataclass(frozen=True)
class RecallTask:
    """Shapes of the key-value recall task (see the module docstring)."""

    keys: int = 16
    values: int = 16
    pairs: int = 16
    queries: int = 8

    def __post_init__(self) -> None:
        check_int("keys", self.keys, 1, 100_000)
        check_int("values", self.values, 2, 100_000)
        check_int("pairs", self.pairs, 1, self.keys)
        check_int("queries", self.queries, 1, self.pairs)

    @property
    def vocab_size(self) -> int:
        return self.keys + self.values

    @property
    def segment_length(self) -> int:
        return 2 * self.pairs

    def batch(self, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """``(context, query, answers)``: ``[size, 2*pairs]``, ``[size, 2*queries]`` token
        ids, and ``[size, queries]`` the value of each queried key."""
        if size < 1:
            raise ValidationError(f"batch size must be at least 1, got {size}")
        keys = torch.rand(size, self.keys, generator=generator).argsort(dim=1)[:, : self.pairs]
        values = torch.randint(
            self.keys, self.keys + self.values, (size, self.pairs), generator=generator
        )
        context = torch.stack([keys, values], dim=2).reshape(size, -1)
        pick = torch.rand(size, self.pairs, generator=generator).argsort(dim=1)[:, : self.queries]
        asked, answers = keys.gather(1, pick), values.gather(1, pick)
        query = torch.stack([asked, answers], dim=2).reshape(size, -1)
        return context, query, answers

    def answer_logits(self, logits: Tensor) -> Tensor:
        """The logits of each answer ``[B, queries, vocab]``: those at the key positions."""
        return logits[:, 0::2, :]

    def loss(self, logits: Tensor, answers: Tensor) -> Tensor:
        """Cross-entropy of the answers."""
        picked = self.answer_logits(logits)
        return F.cross_entropy(picked.reshape(-1, picked.shape[-1]), answers.reshape(-1))

    def errors(self, logits: Tensor, answers: Tensor) -> Tensor:
        """Wrong answers, as a 0/1 tensor ``[B, queries]``."""
        return (self.answer_logits(logits).argmax(-1) != answers).float()
