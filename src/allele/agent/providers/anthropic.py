"""Anthropic Messages API client: ``POST {base_url}/v1/messages`` with an SSE event stream.

The system prompt goes in the top-level ``system`` field (the API has no system role);
authentication is the ``x-api-key`` header with ``anthropic-version``. The stream is
``message_start`` (input token usage), ``content_block_delta`` events whose ``text_delta``
carries the text, ``message_delta`` (output token usage) and ``message_stop``; an ``error``
event reports a failure mid-stream. Anthropic accepts temperatures in [0, 1] only, so the
genome-nudged temperature is clipped to that range here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from allele.agent.errors import (
    AuthenticationError,
    BadRequestError,
    ProtocolError,
    ProviderCallError,
    RateLimitError,
    ServerError,
)
from allele.agent.providers.base import (
    ChatRequest,
    HTTPProvider,
    StreamItem,
    Usage,
    int_or_none,
    iter_sse,
    loads_object,
)
from allele.errors import ConfigurationError

_ERROR_TYPES: dict[str, type[ProviderCallError]] = {
    "authentication_error": AuthenticationError,
    "permission_error": AuthenticationError,
    "invalid_request_error": BadRequestError,
    "not_found_error": BadRequestError,
    "request_too_large": BadRequestError,
    "rate_limit_error": RateLimitError,
    "api_error": ServerError,
    "overloaded_error": ServerError,
}


class AnthropicProvider(HTTPProvider):
    """Client of the Anthropic Messages API."""

    name = "anthropic"
    path = "/v1/messages"

    async def open(self) -> None:
        if self.config.resolve_api_key() is None:
            raise ConfigurationError(
                f"anthropic needs an API key: set the environment variable "
                f"{self.config.api_key_env or 'ANTHROPIC_API_KEY'!s} or AgentConfig.api_key"
            )
        await super().open()

    def headers(self, api_key: str | None) -> dict[str, str]:
        return {"x-api-key": api_key or "", "anthropic-version": self.config.anthropic_version}

    def body(self, request: ChatRequest) -> dict[str, Any]:
        return {
            "model": request.model,
            "system": request.system,
            "messages": list(request.messages),
            "max_tokens": request.max_tokens,
            "temperature": min(1.0, request.temperature),
            "stream": request.stream,
        }

    def _event_error(self, data: dict[str, Any]) -> ProviderCallError:
        error = data.get("error")
        if not isinstance(error, dict):
            error = {"message": str(error)}
        kind = str(error.get("type", ""))
        cls = _ERROR_TYPES.get(kind, ServerError)
        return cls(f"{self.name} {kind or 'error'}: {error.get('message', '')}", provider=self.name)

    async def parse_stream(self, response: httpx.Response) -> AsyncIterator[StreamItem]:
        input_tokens: int | None = None
        async for event, payload in iter_sse(response.aiter_lines()):
            if event == "ping":
                continue
            data = loads_object(payload, self.name)
            kind = data.get("type", event)
            if kind == "content_block_delta":
                delta = data.get("delta")
                if isinstance(delta, dict) and delta.get("type") == "text_delta":
                    text = delta.get("text")
                    if text:
                        yield str(text)
            elif kind == "message_start":
                message = data.get("message")
                usage = message.get("usage") if isinstance(message, dict) else None
                if isinstance(usage, dict):
                    input_tokens = int_or_none(usage.get("input_tokens"))
            elif kind == "message_delta":
                usage = data.get("usage")
                if isinstance(usage, dict):
                    yield Usage(input_tokens, int_or_none(usage.get("output_tokens")))
            elif kind == "message_stop":
                return
            elif kind == "error":
                raise self._event_error(data)
        raise ProtocolError(f"{self.name} stream ended before 'message_stop'", provider=self.name)

    def parse_reply(self, data: dict[str, Any]) -> tuple[str, Usage]:
        if data.get("type") == "error":
            raise self._event_error(data)
        content = data.get("content")
        if not isinstance(content, list):
            raise ProtocolError(
                f"{self.name} reply has no content list: {str(data)[:200]}", provider=self.name
            )
        text = "".join(
            str(block.get("text", ""))
            for block in content
            if isinstance(block, dict) and block.get("type") == "text"
        )
        usage = data.get("usage")
        if not isinstance(usage, dict):
            usage = {}
        return text, Usage(
            int_or_none(usage.get("input_tokens")), int_or_none(usage.get("output_tokens"))
        )
