"""NLPAgent: a conversation with an LLM whose personality and sampling come from a genome.

>>> import asyncio
>>> from allele.genome import ConversationalGenome
>>> config = AgentConfig(provider="synthetic", synthetic={"ttft_s": 0, "per_token_s": 0})
>>> async def demo():
...     async with NLPAgent(ConversationalGenome(), config) as agent:
...         reply = await agent.complete("hello")
...         return len(reply) > 0, agent.get_metrics()["synthetic"]
>>> asyncio.run(demo())
(True, True)

One request per ``chat``/``complete`` call: the rate limiter is asked first, retryable failures
are retried (see :mod:`allele.agent.retry`) only while no text has reached the caller, and the
outcome -- success or the typed error -- is counted and passed to every listener as a
:class:`~allele.agent.metrics.RequestRecord`. Only completed exchanges enter the history.
Failed requests count ``tokens_in = 0`` and the estimated tokens of any text received. A reply
the caller stops reading before its end is recorded with ``error_kind="cancelled"``; a failure
that is not a provider error (a bug) is recorded as ``"unexpected:<ExceptionType>"`` and re-raised.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx

from allele.agent.config import AgentConfig
from allele.agent.errors import AgentStateError, ProviderCallError
from allele.agent.history import ConversationHistory, estimate_tokens, message_tokens
from allele.agent.metrics import AgentMetrics, RequestRecord
from allele.agent.prompt import Sampling, build_system_prompt, sampling_for
from allele.agent.providers import ChatRequest, Provider, Usage, make_provider
from allele.agent.ratelimit import RateLimiter
from allele.agent.retry import RetryPolicy
from allele.errors import ValidationError
from allele.genome import ConversationalGenome

logger = logging.getLogger(__name__)

Listener = Callable[[RequestRecord], object]


class NLPAgent:
    """A genome-shaped chat client over one provider; use ``async with`` or initialize/close."""

    def __init__(
        self,
        genome: ConversationalGenome,
        config: AgentConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        provider: Provider | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        """Build the agent; ``transport`` reaches HTTP providers (tests, proxies), ``sleep`` waits.

        ``provider`` replaces the client ``config.provider`` names (a custom protocol);
        ``sleep`` is awaited for backoff and rate-limit waits.
        """
        if not isinstance(config, AgentConfig):
            raise ValidationError(f"config must be an AgentConfig, got {type(config).__name__}")
        self.config = config
        self.genome = genome
        self._provider = (
            provider if provider is not None else make_provider(config, transport=transport)
        )
        self.history = ConversationHistory(config.history_length, config.context_window)
        self._retry = RetryPolicy(
            config.max_retries, config.backoff_initial, config.backoff_max, config.retry_after_max
        )
        self._limiter = (
            RateLimiter(config.requests_per_minute, config.tokens_per_minute, sleep=sleep)
            if config.requests_per_minute or config.tokens_per_minute
            else None
        )
        self._sleep = sleep
        self._jitter = random.Random()
        self._metrics = AgentMetrics(self._provider.name, config.model, self._provider.synthetic)
        self._listeners: list[Listener] = []
        self._open = False

    # -- genome -----------------------------------------------------------------------------
    @property
    def genome(self) -> ConversationalGenome:
        """The genome that writes the system prompt and nudges sampling (settable)."""
        return self._genome

    @genome.setter
    def genome(self, genome: ConversationalGenome) -> None:
        if not isinstance(genome, ConversationalGenome):
            raise ValidationError(
                f"genome must be a ConversationalGenome, got {type(genome).__name__}"
            )
        self._genome = genome.copy()
        self._system_prompt = build_system_prompt(genome)
        self._sampling = sampling_for(genome, self.config.temperature, self.config.max_tokens)

    @property
    def system_prompt(self) -> str:
        """The system prompt sent with every request."""
        return self._system_prompt

    @property
    def sampling(self) -> Sampling:
        """The temperature and reply budget sent with every request."""
        return self._sampling

    @property
    def provider_name(self) -> str:
        """The provider's name as reported in metrics (``"synthetic"`` for load generation)."""
        return self._provider.name

    @property
    def synthetic(self) -> bool:
        """True when replies come from the synthetic load provider, not a language model."""
        return self._provider.synthetic

    # -- lifecycle --------------------------------------------------------------------------
    async def initialize(self) -> None:
        """Open the provider's connection pool (idempotent)."""
        if not self._open:
            await self._provider.open()
            self._open = True

    async def close(self) -> None:
        """Close the provider's connections; the agent may be initialized again later."""
        if self._open:
            self._open = False
            await self._provider.close()

    async def __aenter__(self) -> NLPAgent:
        await self.initialize()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- observation ------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(record)`` after every request; its exceptions are counted, not raised."""
        if not callable(listener):
            raise ValidationError(f"listener must be callable, got {listener!r}")
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener`` (no error if it was not added)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def get_metrics(self) -> dict[str, Any]:
        """Return request, error, token, latency, TTFT and tokens/s totals as plain values."""
        return self._metrics.snapshot()

    # -- conversation -----------------------------------------------------------------------
    def chat(self, message: str) -> AsyncIterator[str]:
        """Return an async iterator of the reply's chunks (one chunk if ``streaming`` is off)."""
        return self._exchange(message, self.config.streaming)

    async def complete(self, message: str) -> str:
        """Return the whole reply to ``message`` from one non-streaming request."""
        return "".join([chunk async for chunk in self._exchange(message, False)])

    def _request(self, message: str, stream: bool) -> tuple[ChatRequest, int]:
        if not isinstance(message, str) or not message.strip():
            raise ValidationError(f"message must be a non-empty string, got {message!r}")
        if not self._open:
            raise AgentStateError(
                "NLPAgent is not initialized: call 'await agent.initialize()' or use "
                "'async with NLPAgent(...) as agent'"
            )
        sampling = self._sampling
        window = self.history.window(self._system_prompt, message, sampling.max_tokens)
        request = ChatRequest(
            model=self.config.model,
            system=self._system_prompt,
            messages=tuple(m.to_dict() for m in window),
            temperature=sampling.temperature,
            max_tokens=sampling.max_tokens,
            stream=stream,
        )
        prompt_tokens = message_tokens(self._system_prompt) + sum(m.tokens for m in window)
        return request, prompt_tokens

    async def _exchange(self, message: str, stream: bool) -> AsyncIterator[str]:
        request, prompt_tokens = self._request(message, stream)
        started_at = datetime.now(UTC)
        t0 = time.perf_counter()
        parts: list[str] = []
        usage: Usage | None = None
        ttft: float | None = None
        attempts = 0
        error_kind: str | None = "cancelled"
        try:
            while True:
                attempts += 1
                if self._limiter is not None:
                    waited = await self._limiter.acquire(prompt_tokens + request.max_tokens)
                    self._metrics.rate_limit_wait_s += waited
                try:
                    async for item in self._provider.stream(request):
                        if item.__class__ is str:
                            if ttft is None:
                                ttft = time.perf_counter() - t0
                            parts.append(item)
                            yield item
                        else:
                            usage = item  # type: ignore[assignment]
                    break
                except ProviderCallError as exc:
                    # Once text reached the caller a retry would repeat it: fail instead.
                    delay = None if parts else self._retry.delay(attempts - 1, exc, self._jitter)
                    if delay is None:
                        raise
                    logger.info(
                        "%s request failed (%s), retry %d in %.3f s",
                        self._provider.name,
                        exc.kind,
                        attempts,
                        delay,
                    )
                    await self._sleep(delay)
            error_kind = None
        except ProviderCallError as exc:
            error_kind = exc.kind
            exc.attempts = attempts
            raise
        except Exception as exc:
            error_kind = f"unexpected:{type(exc).__name__}"
            raise
        finally:
            self._finish(
                message,
                parts,
                usage,
                prompt_tokens,
                request,
                started_at,
                time.perf_counter() - t0,
                ttft,
                attempts,
                error_kind,
            )

    def _finish(
        self,
        message: str,
        parts: list[str],
        usage: Usage | None,
        prompt_tokens: int,
        request: ChatRequest,
        started_at: datetime,
        latency: float,
        ttft: float | None,
        attempts: int,
        error_kind: str | None,
    ) -> None:
        ok = error_kind is None
        text = "".join(parts)
        reported_in = usage.input_tokens if usage is not None else None
        reported_out = usage.output_tokens if usage is not None else None
        if ok:
            tokens_in = reported_in if reported_in is not None else prompt_tokens
            tokens_out = reported_out if reported_out is not None else estimate_tokens(text)
            source = (
                "provider" if reported_in is not None and reported_out is not None else "estimate"
            )
            self.history.add_turn(message, text)
            if self._limiter is not None:
                self._limiter.settle(prompt_tokens + request.max_tokens, tokens_in + tokens_out)
        else:
            tokens_in, tokens_out, source = 0, estimate_tokens(text), "estimate"
        record = RequestRecord(
            provider=self._provider.name,
            model=request.model,
            latency_s=latency,
            ttft_s=ttft,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            ok=ok,
            error_kind=error_kind,
            usage_source=source,
            synthetic=self._provider.synthetic,
            attempts=attempts,
            started_at=started_at,
            streamed=request.stream,
        )
        self._metrics.add(record)
        for listener in tuple(self._listeners):
            try:
                listener(record)
            except Exception:
                # Observability must never break the conversation it observes.
                self._metrics.listener_errors += 1
                logger.warning("agent listener %r raised; ignored", listener, exc_info=True)
