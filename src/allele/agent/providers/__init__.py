"""LLM provider clients: OpenAI-compatible, Ollama, Anthropic, and the offline synthetic one."""

from __future__ import annotations

import httpx

from allele.agent.config import AgentConfig
from allele.agent.providers.anthropic import AnthropicProvider
from allele.agent.providers.base import ChatRequest, HTTPProvider, Provider, StreamItem, Usage
from allele.agent.providers.ollama import OllamaProvider
from allele.agent.providers.openai import OpenAIProvider
from allele.agent.providers.synthetic import SyntheticProvider

__all__ = [
    "AnthropicProvider",
    "ChatRequest",
    "HTTPProvider",
    "OllamaProvider",
    "OpenAIProvider",
    "Provider",
    "StreamItem",
    "SyntheticProvider",
    "Usage",
    "make_provider",
]

_HTTP_PROVIDERS: dict[str, type[HTTPProvider]] = {
    "openai": OpenAIProvider,
    "ollama": OllamaProvider,
    "anthropic": AnthropicProvider,
}


def make_provider(
    config: AgentConfig, *, transport: httpx.AsyncBaseTransport | None = None
) -> Provider:
    """Return the provider client ``config.provider`` names (``transport`` is for HTTP ones)."""
    if config.provider == "synthetic":
        return SyntheticProvider(config)
    return _HTTP_PROVIDERS[config.provider](config, transport=transport)
