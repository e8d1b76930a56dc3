"""Ollama client: ``POST {base_url}/api/chat`` with newline-delimited JSON streaming.

The system prompt is the first ``role: system`` message; sampling goes in
``options.temperature`` and ``options.num_predict``. Each streamed line is a JSON object with
``message.content``; the last has ``done: true`` and the token counts ``prompt_eval_count`` and
``eval_count``. A stream that ends without ``done: true`` was cut and raises ProtocolError.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from allele.agent.errors import ProtocolError, ServerError
from allele.agent.providers.base import (
    ChatRequest,
    HTTPProvider,
    StreamItem,
    Usage,
    int_or_none,
    loads_object,
)


class OllamaProvider(HTTPProvider):
    """Client of Ollama's native chat API."""

    name = "ollama"
    path = "/api/chat"

    def body(self, request: ChatRequest) -> dict[str, Any]:
        return {
            "model": request.model,
            "messages": [{"role": "system", "content": request.system}, *request.messages],
            "stream": request.stream,
            "options": {"temperature": request.temperature, "num_predict": request.max_tokens},
        }

    def _content(self, data: dict[str, Any]) -> str:
        if "error" in data:
            raise ServerError(f"{self.name} error: {data['error']}", provider=self.name)
        message = data.get("message")
        if message is None and data.get("done"):
            return ""
        if not isinstance(message, dict):
            raise ProtocolError(
                f"{self.name} reply has no message object: {str(data)[:200]}", provider=self.name
            )
        return str(message.get("content") or "")

    @staticmethod
    def _usage(data: dict[str, Any]) -> Usage:
        return Usage(
            int_or_none(data.get("prompt_eval_count")), int_or_none(data.get("eval_count"))
        )

    async def parse_stream(self, response: httpx.Response) -> AsyncIterator[StreamItem]:
        async for line in response.aiter_lines():
            if not line.strip():
                continue
            data = loads_object(line, self.name)
            content = self._content(data)
            if content:
                yield content
            if data.get("done"):
                yield self._usage(data)
                return
        raise ProtocolError(f"{self.name} stream ended before 'done: true'", provider=self.name)

    def parse_reply(self, data: dict[str, Any]) -> tuple[str, Usage]:
        return self._content(data), self._usage(data)
