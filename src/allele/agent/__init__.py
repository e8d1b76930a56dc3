"""LLM agents whose personality comes from a genome: NLPAgent, AgentConfig, provider errors.

Providers: ``openai`` (any OpenAI-compatible Chat Completions server), ``ollama``, ``anthropic``,
and ``synthetic`` (offline deterministic load, always reported as synthetic).
"""

from __future__ import annotations

from allele.agent.agent import NLPAgent
from allele.agent.config import AgentConfig, SyntheticConfig
from allele.agent.errors import (
    ERROR_KINDS,
    AgentStateError,
    AuthenticationError,
    BadRequestError,
    ProtocolError,
    ProviderCallError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from allele.agent.metrics import RequestRecord
from allele.agent.prompt import Sampling, build_system_prompt, sampling_for
from allele.agent.providers import ChatRequest, Provider, Usage, make_provider

__all__ = [
    "ERROR_KINDS",
    "AgentConfig",
    "AgentStateError",
    "AuthenticationError",
    "BadRequestError",
    "ChatRequest",
    "NLPAgent",
    "ProtocolError",
    "Provider",
    "ProviderCallError",
    "ProviderConnectionError",
    "ProviderTimeoutError",
    "RateLimitError",
    "RequestRecord",
    "Sampling",
    "ServerError",
    "SyntheticConfig",
    "Usage",
    "build_system_prompt",
    "make_provider",
    "sampling_for",
]
