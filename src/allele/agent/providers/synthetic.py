"""The ``synthetic`` provider: offline, deterministic replies for load generation and benchmarks.

It is not a language model and never stands in for one silently: its name is ``"synthetic"``
and ``synthetic = True`` travels into every metric and RequestRecord it produces.

Determinism
    The reply text depends only on the seed and the request (system prompt and messages): the
    same seed and prompt give the same words and the same latency draws. Injected errors depend
    on the seed and the request's sequence number, so a run of N requests fails the same ones
    every time while repeated prompts can still fail or succeed.
Latency model
    First token after ``ttft_s``, each further token ``per_token_s`` later, every delay scaled by
    a uniform factor in ``[1 - jitter, 1 + jitter]``; delays are scheduled against the monotonic
    clock so they do not drift.
Error injection
    With probability ``error_rate`` a request fails with one of ``error_kinds``: ``rate_limit``,
    ``server``, ``timeout`` and ``connection`` before the first token; ``protocol`` after half
    the reply has streamed (a stream cut mid-way).
Usage
    Reported as provider usage: output tokens are the generated words, input tokens the
    ``ceil(chars / 4)`` estimate of the prompt -- the synthetic model's own tokenizer.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from allele.agent.config import AgentConfig
from allele.agent.errors import (
    ProtocolError,
    ProviderCallError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from allele.agent.history import message_tokens
from allele.agent.providers.base import ChatRequest, Provider, StreamItem, Usage

_WORDS = """
the a of to and in is that it for on with as this be by are was at from or an can we you
will model agent trait genome memory signal context answer question system reply token
stream latency value result test data idea plan step next good clear simple because when
then also more than each new first last small large fast slow
"""
_VOCABULARY: tuple[str, ...] = tuple(_WORDS.split())

_BEFORE_FIRST_TOKEN: dict[str, type[ProviderCallError]] = {
    "rate_limit": RateLimitError,
    "server": ServerError,
    "timeout": ProviderTimeoutError,
    "connection": ProviderConnectionError,
}


class SyntheticProvider(Provider):
    """Deterministic offline load generator with a latency model and injected errors."""

    name = "synthetic"
    synthetic = True

    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        """``clock`` and ``sleep`` schedule the latency model (a test may drive them by hand)."""
        self.config = config
        self.settings = config.synthetic
        self._clock = clock
        self._sleep = sleep
        self._requests = 0

    def _text_rng(self, request: ChatRequest) -> random.Random:
        digest = hashlib.blake2b(digest_size=16)
        digest.update(str(self.settings.seed).encode())
        for part in (request.system, *(f"{m['role']}:{m['content']}" for m in request.messages)):
            digest.update(b"\x00" + part.encode())
        return random.Random(digest.digest())

    def _scale(self, rng: random.Random, delay: float) -> float:
        jitter = self.settings.jitter
        return delay * rng.uniform(1.0 - jitter, 1.0 + jitter) if jitter else delay

    def _fault(self) -> str | None:
        # Seeded by (seed, sequence number): the same run fails the same requests.
        rng = random.Random(f"{self.settings.seed}:fault:{self._requests}")
        self._requests += 1
        if self.settings.error_rate and rng.random() < self.settings.error_rate:
            return rng.choice(self.settings.error_kinds)
        return None

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        fault = self._fault()
        rng = self._text_rng(request)
        s = self.settings
        count = min(request.max_tokens, rng.randint(s.reply_tokens_min, s.reply_tokens_max))
        words = [rng.choice(_VOCABULARY) for _ in range(count)]
        delays = [self._scale(rng, s.ttft_s)]
        delays += [self._scale(rng, s.per_token_s) for _ in range(count - 1)]
        tokens_in = message_tokens(request.system) + sum(
            message_tokens(m["content"]) for m in request.messages
        )
        start = self._clock()
        due = 0.0

        async def wait(index: int) -> None:
            nonlocal due
            due += delays[index]
            remaining = start + due - self._clock()
            if remaining > 0:
                await self._sleep(remaining)

        await wait(0)
        if fault in _BEFORE_FIRST_TOKEN:
            raise _BEFORE_FIRST_TOKEN[fault](
                f"synthetic injected {fault} error (seed {s.seed})", provider=self.name
            )
        cut = count // 2 if fault == "protocol" else None
        if not request.stream:
            for i in range(1, count):
                await wait(i)
            if cut is not None:
                raise ProtocolError("synthetic injected a malformed reply", provider=self.name)
            yield " ".join(words)
        else:
            for i, word in enumerate(words):
                if i:
                    await wait(i)
                if i == cut:
                    raise ProtocolError(
                        f"synthetic injected a stream cut after {i} of {count} tokens",
                        provider=self.name,
                    )
                yield word if i == 0 else " " + word
        yield Usage(tokens_in, count)
