"""Causal transformer backbones the CMR model wraps: a small GPT-2-style model built from a
``GPTConfig``, and an adapter for a Hugging Face ``transformers`` causal LM already on disk.

A backbone exposes what the memory needs and nothing more: ``blocks`` (the transformer blocks,
in order, where the forward hooks go), ``n_layers``, ``d_model`` and ``forward(input_ids) ->
logits``. A block's output may be a tensor (ours) or a tuple whose first element is the hidden
states (Hugging Face's); ``hidden_of`` and ``replace_hidden`` handle both.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from allele.cmr.config import GPTConfig
from allele.errors import ValidationError, require


def hidden_of(output: Any) -> Tensor:
    """The hidden states ``[batch, positions, d_model]`` of a block's output."""
    return output[0] if isinstance(output, tuple) else output


def replace_hidden(output: Any, hidden: Tensor) -> Any:
    """A block output like ``output`` with its hidden states replaced."""
    return (hidden, *output[1:]) if isinstance(output, tuple) else hidden


class Block(nn.Module):
    """One pre-LayerNorm transformer block: causal self-attention, then a 4x MLP."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.dropout = config.dropout
        self.ln_1 = nn.LayerNorm(config.d_model)
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.ln_2 = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, 4 * config.d_model),
            nn.GELU(approximate="tanh"),
            nn.Linear(4 * config.d_model, config.d_model),
        )

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln_1(x)).split(d, dim=2)
        shape = (b, t, self.n_heads, d // self.n_heads)
        q, k, v = (z.view(shape).transpose(1, 2) for z in (q, k, v))
        attended = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )
        x = x + self.proj(attended.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln_2(x))


class TinyGPT(nn.Module):
    """A GPT-2-style causal language model built from a ``GPTConfig`` (random weights, or
    weights you train or load with ``load_state_dict``; nothing is downloaded)."""

    def __init__(self, config: GPTConfig | None = None) -> None:
        super().__init__()
        self.config = config or GPTConfig()
        c = self.config
        self.wte = nn.Embedding(c.vocab_size, c.d_model)
        self.wpe = nn.Embedding(c.n_positions, c.d_model)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.head.weight = self.wte.weight  # tied, as in GPT-2
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2's scaled init of residual projections
            if name.endswith(("proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * c.n_layers))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, 0.0, 0.02)

    @property
    def n_layers(self) -> int:
        return self.config.n_layers

    @property
    def d_model(self) -> int:
        return self.config.d_model

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    def forward(self, input_ids: Tensor) -> Tensor:
        """Logits ``[batch, positions, vocab]`` of ``input_ids`` ``[batch, positions]``."""
        t = input_ids.shape[1]
        if t > self.config.n_positions:
            raise ValidationError(
                f"input has {t} positions; this backbone allows at most "
                f"n_positions={self.config.n_positions}"
            )
        positions = torch.arange(t, device=input_ids.device)
        x = self.drop(self.wte(input_ids) + self.wpe(positions))
        for block in self.blocks:
            x = block(x)
        logits: Tensor = self.head(self.ln_f(x))
        return logits


class HuggingFaceBackbone(nn.Module):
    """A Hugging Face causal LM (GPT-2, Llama, Mistral, ... families) as a CMR backbone.

    ``HuggingFaceBackbone(model)`` wraps a loaded model; ``from_pretrained(path)`` loads one from
    a local directory only (``local_files_only=True``: nothing is downloaded).
    """

    # Where the decoder blocks live in the model families transformers ships.
    _BLOCK_PATHS = ("transformer.h", "model.layers", "gpt_neox.layers", "model.decoder.layers")

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.blocks = self._find_blocks(model)
        config = getattr(model, "config", None)
        self._d_model = int(getattr(config, "hidden_size", 0) or getattr(config, "n_embd", 0) or 0)
        self._vocab = int(getattr(config, "vocab_size", 0) or 0)
        if not self._d_model:
            raise ValidationError("the model's config names no hidden_size / n_embd")

    @classmethod
    def _find_blocks(cls, model: nn.Module) -> nn.ModuleList:
        for path in cls._BLOCK_PATHS:
            node: Any = model
            for part in path.split("."):
                node = getattr(node, part, None)
                if node is None:
                    break
            if isinstance(node, nn.ModuleList) and len(node) > 0:
                return node
        raise ValidationError(
            f"cannot find the decoder blocks of {type(model).__name__}; looked for "
            f"{', '.join(cls._BLOCK_PATHS)}"
        )

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs: Any) -> HuggingFaceBackbone:
        """Load the causal LM saved in directory ``path`` (never from the network)."""
        transformers: Any = require("transformers", "transformers")
        directory = Path(path)
        if not directory.is_dir():
            raise ValidationError(f"model path {str(path)!r} is not a directory")
        model = transformers.AutoModelForCausalLM.from_pretrained(
            directory, local_files_only=True, **kwargs
        )
        return cls(model)

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @property
    def d_model(self) -> int:
        return self._d_model

    @property
    def vocab_size(self) -> int:
        return self._vocab

    def forward(self, input_ids: Tensor) -> Tensor:
        logits: Tensor = self.model(input_ids=input_ids, use_cache=False).logits
        return logits


Backbone = TinyGPT | HuggingFaceBackbone


def as_backbone(backbone: nn.Module | GPTConfig | None) -> Backbone:
    """A backbone from a ``GPTConfig`` (a fresh ``TinyGPT``), a ``transformers`` model
    (wrapped) or a module that already is one."""
    if backbone is None or isinstance(backbone, GPTConfig):
        return TinyGPT(backbone)
    if isinstance(backbone, TinyGPT | HuggingFaceBackbone):
        return backbone
    if isinstance(backbone, nn.Module) and hasattr(backbone, "config"):
        return HuggingFaceBackbone(backbone)
    raise ValidationError(
        f"backbone must be a GPTConfig, a TinyGPT, a HuggingFaceBackbone or a transformers "
        f"model; got {type(backbone).__name__}"
    )
