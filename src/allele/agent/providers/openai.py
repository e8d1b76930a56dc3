"""OpenAI-compatible Chat Completions client (OpenAI, vLLM, llama.cpp server, LM Studio...).

``POST {base_url}/chat/completions`` with the system prompt as the first ``role: system``
message. Streaming replies are Server-Sent Events ``data: {chunk}`` ending with
``data: [DONE]``; ``stream_options.include_usage`` asks for a final chunk carrying ``usage``
with an empty ``choices`` list (servers that ignore it leave the agent to estimate tokens).
A body that ends cleanly after a ``finish_reason`` but without ``[DONE]`` is accepted (some
compatible servers omit it); one that ends before any ``finish_reason`` raises ProtocolError.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from allele.agent.errors import ProtocolError, ProviderCallError, RateLimitError, ServerError
from allele.agent.providers.base import (
    ChatRequest,
    HTTPProvider,
    StreamItem,
    Usage,
    int_or_none,
    iter_sse,
    loads_object,
)


class OpenAIProvider(HTTPProvider):
    """Client of the OpenAI Chat Completions protocol."""

    name = "openai"
    path = "/chat/completions"

    def body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": "system", "content": request.system}, *request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "stream": request.stream,
        }
        if request.stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _stream_error(self, error: object) -> ProviderCallError:
        # Some servers (vLLM, OpenAI itself) report failures inside a 200 stream.
        detail = error if isinstance(error, dict) else {"message": error}
        message = f"{self.name} stream error: {detail.get('message', detail)}"
        code = str(detail.get("code") or detail.get("type") or "")
        if "rate_limit" in code:
            return RateLimitError(message, provider=self.name)
        return ServerError(message, provider=self.name)

    async def parse_stream(self, response: httpx.Response) -> AsyncIterator[StreamItem]:
        finished = False
        async for _event, data in iter_sse(response.aiter_lines()):
            if data == "[DONE]":
                return
            chunk = loads_object(data, self.name)
            if chunk.get("error") is not None:
                raise self._stream_error(chunk["error"])
            choices = chunk.get("choices")
            if choices:
                finished = finished or bool(
                    isinstance(choices[0], dict) and choices[0].get("finish_reason")
                )
                delta = choices[0].get("delta") if isinstance(choices[0], dict) else None
                if not isinstance(delta, dict):
                    raise ProtocolError(
                        f"{self.name} chunk has no choices[0].delta: {data[:200]!r}",
                        provider=self.name,
                    )
                content = delta.get("content")
                if content:
                    yield content
            usage = chunk.get("usage")
            if isinstance(usage, dict):
                yield Usage(
                    int_or_none(usage.get("prompt_tokens")),
                    int_or_none(usage.get("completion_tokens")),
                )
        if finished:
            # Some compatible servers close a complete stream without 'data: [DONE]'; the
            # body ended cleanly (a cut connection raises in the transport) after finish_reason.
            return
        raise ProtocolError(
            f"{self.name} stream ended before 'finish_reason' and 'data: [DONE]'",
            provider=self.name,
        )

    def parse_reply(self, data: dict[str, Any]) -> tuple[str, Usage]:
        if data.get("error") is not None:
            raise self._stream_error(data["error"])
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ProtocolError(
                f"{self.name} reply has no choices[0].message.content: {str(data)[:200]}",
                provider=self.name,
            ) from None
        usage = data.get("usage")
        if not isinstance(usage, dict):
            usage = {}
        return str(content or ""), Usage(
            int_or_none(usage.get("prompt_tokens")), int_or_none(usage.get("completion_tokens"))
        )
