"""The provider contract, and the HTTP plumbing every real provider shares.

A provider turns one :class:`ChatRequest` into an async stream of reply text pieces (``str``)
and at most one :class:`Usage`. A non-streaming request yields the whole text once, then usage.
HTTP providers run over one ``httpx.AsyncClient``; a custom ``transport`` (httpx's seam for
tests and proxies) may be injected. Transport failures become the typed errors of
:mod:`allele.agent.errors`; nothing is swallowed.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from allele.agent.config import AgentConfig
from allele.agent.errors import (
    ProtocolError,
    ProviderCallError,
    ProviderConnectionError,
    ProviderTimeoutError,
    error_for_status,
)
from allele.agent.retry import parse_retry_after

_SNIPPET = 200


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One request: the system prompt kept apart, then user/assistant messages, then sampling."""

    model: str
    system: str
    messages: tuple[dict[str, str], ...]
    temperature: float
    max_tokens: int
    stream: bool


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage reported by the provider; None where it did not report a figure."""

    input_tokens: int | None
    output_tokens: int | None


StreamItem = str | Usage


class Provider(ABC):
    """A client of one LLM wire protocol."""

    name: str = ""
    synthetic: bool = False

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Prepare connections; called by ``NLPAgent.initialize``."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called by ``NLPAgent.close``."""

    @abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        """Yield the reply's text pieces, and the provider's usage when it reports one."""


def loads_object(payload: str | bytes, provider: str) -> dict[str, Any]:
    """Return ``payload`` parsed as a JSON object, or raise ProtocolError quoting its start."""
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise ProtocolError(
            f"{provider} sent malformed JSON ({exc}): {payload[:_SNIPPET]!r}", provider=provider
        ) from None
    if not isinstance(data, dict):
        raise ProtocolError(
            f"{provider} sent JSON that is not an object: {payload[:_SNIPPET]!r}", provider=provider
        )
    return data


def int_or_none(value: object) -> int | None:
    """Return ``value`` if it is a non-negative integer token count, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _error_message(response: httpx.Response) -> str:
    """Return the most useful human-readable part of an error response body."""
    text = response.text
    try:
        data = json.loads(text)
    except ValueError:
        return text[:_SNIPPET] or response.reason_phrase
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)[:_SNIPPET]
    return text[:_SNIPPET]


class HTTPProvider(Provider):
    """A provider that POSTs JSON to ``{base_url}{path}`` and parses SSE / NDJSON / JSON replies."""

    path: str = ""

    def __init__(
        self, config: AgentConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._api_key: str | None = None

    def headers(self, api_key: str | None) -> dict[str, str]:
        """Return the request headers (authentication included)."""
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    @abstractmethod
    def body(self, request: ChatRequest) -> dict[str, Any]:
        """Return the JSON request body in this provider's dialect."""

    @abstractmethod
    def parse_stream(self, response: httpx.Response) -> AsyncIterator[StreamItem]:
        """Yield text and usage from a streamed reply; raise ProtocolError if it ends early."""

    @abstractmethod
    def parse_reply(self, data: dict[str, Any]) -> tuple[str, Usage]:
        """Return the text and usage of a non-streamed reply."""

    async def open(self) -> None:
        if self._client is None:
            self._api_key = self.config.resolve_api_key()
            self._client = httpx.AsyncClient(
                base_url=self.config.base_url,
                headers=self.headers(self._api_key),
                timeout=httpx.Timeout(self.config.request_timeout),
                transport=self._transport,
            )

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _http_error(self, response: httpx.Response) -> ProviderCallError:
        headers = response.headers
        retry_after = None
        if "retry-after-ms" in headers:  # OpenAI's finer-grained variant
            ms = parse_retry_after(headers["retry-after-ms"])
            retry_after = None if ms is None else ms / 1000.0
        if retry_after is None:
            retry_after = parse_retry_after(headers.get("retry-after"))
        message = _error_message(response)
        if self._api_key:
            # Some servers echo the key they rejected; it must not reach logs or tracebacks.
            message = message.replace(self._api_key, "<redacted>")
        return error_for_status(
            response.status_code,
            message,
            provider=self.name,
            retry_after=retry_after,
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        if self._client is None:
            raise ProviderConnectionError(
                f"{self.name} client is not open; call NLPAgent.initialize() first",
                provider=self.name,
            )
        started = False
        try:
            async with self._client.stream("POST", self.path, json=self.body(request)) as response:
                if response.status_code >= 300:
                    await response.aread()
                    raise self._http_error(response)
                if request.stream:
                    async for item in self.parse_stream(response):
                        started = True
                        yield item
                else:
                    data = loads_object(await response.aread(), self.name)
                    text, usage = self.parse_reply(data)
                    started = True
                    yield text
                    yield usage
        except httpx.TimeoutException as exc:
            raise ProviderTimeoutError(
                f"{self.name} did not answer within {self.config.request_timeout} s "
                f"({type(exc).__name__})",
                provider=self.name,
            ) from exc
        except httpx.ConnectError as exc:
            raise ProviderConnectionError(
                f"cannot connect to {self.name} at {self.config.base_url}: {exc}",
                provider=self.name,
            ) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            if started:
                raise ProtocolError(
                    f"{self.name} stream was cut mid-reply: {exc}", provider=self.name
                ) from exc
            raise ProviderConnectionError(
                f"{self.name} dropped the connection before replying: {exc}", provider=self.name
            ) from exc
        except httpx.HTTPError as exc:
            raise ProtocolError(f"{self.name} request failed: {exc!r}", provider=self.name) from exc


async def iter_sse(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    """Yield ``(event, data)`` for each Server-Sent Event (event defaults to ``"message"``)."""
    event = ""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield event or "message", "\n".join(data)
            event, data = "", []
        elif line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
        elif line.startswith("event:"):
            event = line[6:].strip()
        # Comments (":") and id/retry fields carry nothing a chat client needs.
    if data:
        yield event or "message", "\n".join(data)
