"""The same scenarios against each real client and a local server speaking its wire protocol.

Every provider (OpenAI-compatible SSE, Ollama NDJSON, Anthropic event stream) gets: streamed and
whole replies, the system prompt / history / sampling on the wire, 429 with ``Retry-After``,
500 then success, malformed JSON, a stream cut mid-way, a slow server hitting the timeout,
connection refused and a wrong API key. Provider-specific details live in test_<provider>.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from allele.agent import (
    AuthenticationError,
    NLPAgent,
    ProtocolError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RequestRecord,
)
from allele.genome import ConversationalGenome

from .conftest import (
    Reply,
    anthropic_stream,
    json_reply,
    ollama_stream,
    openai_reply,
    openai_stream,
    sse_reply,
)

KEY = "sk-protocol-test-0123456789"
GENOME = ConversationalGenome(traits={"empathy": 0.9, "creativity": 0.75, "conciseness": 0.5})
# temperature 0.5 + 0.6 * (0.75 - 0.5) = 0.65; conciseness 0.5 keeps 75 % of max_tokens 400.
EXPECTED_SAMPLING = (0.65, 300)
TEXTS = ["alpha", " beta", " gamma", " delta"]


@dataclass(frozen=True)
class Dialect:
    """How one provider's server answers, and where its request keeps each field."""

    provider: str
    model: str

    def stream(self, texts: list[str], usage: tuple[int, int] = (21, 4)) -> list[bytes]:
        if self.provider == "openai":
            return openai_stream(texts, usage)
        if self.provider == "ollama":
            return ollama_stream(texts, usage)
        return anthropic_stream(texts, usage)

    def streamed(self, chunks: list[bytes], **kwargs: Any) -> Reply:
        if self.provider == "ollama":
            return Reply(200, {"Content-Type": "application/x-ndjson"}, chunks=chunks, **kwargs)
        return sse_reply(chunks, **kwargs)

    def whole(self, text: str, usage: tuple[int, int] = (8, 2)) -> Reply:
        if self.provider == "openai":
            return openai_reply(text, usage)
        if self.provider == "ollama":
            return json_reply(
                {
                    "model": self.model,
                    "message": {"role": "assistant", "content": text},
                    "done": True,
                    "prompt_eval_count": usage[0],
                    "eval_count": usage[1],
                }
            )
        return json_reply(
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "text", "text": text}],
                "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
            }
        )

    def error(self, status: int, message: str, **headers: str) -> Reply:
        """The provider's documented error body for an HTTP error."""
        body: dict[str, Any]
        if self.provider == "openai":
            body = {"error": {"message": message, "type": "error", "code": None}}
        elif self.provider == "ollama":
            body = {"error": message}
        else:
            kind = {401: "authentication_error", 429: "rate_limit_error"}.get(status, "api_error")
            body = {"type": "error", "error": {"type": kind, "message": message}}
        return json_reply(body, status, **headers)

    def malformed(self) -> bytes:
        if self.provider == "ollama":
            return b"{not json\n"
        if self.provider == "anthropic":
            return b"event: content_block_delta\ndata: {not json\n\n"
        return b"data: {not json\n\n"

    def path(self) -> str:
        return {"openai": "/chat/completions", "ollama": "/api/chat"}.get(
            self.provider, "/v1/messages"
        )

    def system(self, body: dict[str, Any]) -> str:
        if self.provider == "anthropic":
            assert all(m["role"] != "system" for m in body["messages"])
            return str(body["system"])
        first = body["messages"][0]
        assert first["role"] == "system"
        return str(first["content"])

    def turns(self, body: dict[str, Any]) -> list[tuple[str, str]]:
        messages = body["messages"] if self.provider == "anthropic" else body["messages"][1:]
        return [(m["role"], m["content"]) for m in messages]

    def sampling(self, body: dict[str, Any]) -> tuple[float, int]:
        if self.provider == "ollama":
            return body["options"]["temperature"], body["options"]["num_predict"]
        return body["temperature"], body["max_tokens"]

    def key_sent(self, headers: dict[str, str]) -> bool:
        if self.provider == "anthropic":
            return headers.get("x-api-key") == KEY and "anthropic-version" in headers
        return headers.get("authorization") == f"Bearer {KEY}"


DIALECTS = [
    Dialect("openai", "gpt-test"),
    Dialect("ollama", "llama3.2"),
    Dialect("anthropic", "claude-test"),
]


@pytest.fixture(params=DIALECTS, ids=lambda d: d.provider)
def dialect(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Dialect:
    monkeypatch.setenv("PROTOCOL_TEST_KEY", KEY)
    return request.param  # type: ignore[no-any-return]


def make_agent(dialect: Dialect, base_url: str, make_config, sleeps, **overrides) -> NLPAgent:
    settings = {
        "provider": dialect.provider,
        "model": dialect.model,
        "base_url": base_url,
        "api_key_env": "PROTOCOL_TEST_KEY",
        "temperature": 0.5,
        "max_tokens": 400,
        **overrides,
    }
    return NLPAgent(GENOME, make_config(**settings), sleep=sleeps)


async def read_all(agent: NLPAgent, message: str, got: list[str] | None = None) -> list[str]:
    chunks = [] if got is None else got
    async for chunk in agent.chat(message):
        chunks.append(chunk)
    return chunks


async def test_streamed_reply_carries_prompt_sampling_key_and_usage(
    dialect, server, make_config, sleeps
):
    server.script(dialect.streamed(dialect.stream(TEXTS, usage=(21, 4))))
    records: list[RequestRecord] = []
    async with make_agent(dialect, server.url, make_config, sleeps) as agent:
        agent.add_listener(records.append)
        assert await read_all(agent, "hello") == TEXTS
    (request,) = server.received
    assert (request.method, request.path) == ("POST", dialect.path())
    assert dialect.key_sent(request.headers)
    body = request.json
    assert body["model"] == dialect.model and body["stream"] is True
    assert dialect.system(body) == agent.system_prompt
    assert "empathy 0.90" in agent.system_prompt
    assert dialect.turns(body) == [("user", "hello")]
    assert dialect.sampling(body) == pytest.approx(EXPECTED_SAMPLING)
    (record,) = records
    assert record.ok and (record.tokens_in, record.tokens_out) == (21, 4)
    assert record.usage_source == "provider" and record.provider == dialect.provider
    metrics = agent.get_metrics()
    assert metrics["requests"] == 1 and metrics["successes"] == 1 and metrics["errors"] == 0
    assert (metrics["tokens_in"], metrics["tokens_out"]) == (21, 4)
    assert metrics["synthetic"] is False
    assert record.ttft_s is not None and 0 < record.ttft_s <= record.latency_s
    assert metrics["tokens_per_second"]["p50"] == pytest.approx(record.tokens_per_second)


async def test_whole_reply_without_streaming(dialect, server, make_config, sleeps):
    server.script(dialect.whole("All at once.", usage=(8, 2)))
    async with make_agent(dialect, server.url, make_config, sleeps) as agent:
        assert await agent.complete("q") == "All at once."
    body = server.received[0].json
    assert body["stream"] is False and dialect.system(body) == agent.system_prompt
    assert (agent.get_metrics()["tokens_in"], agent.get_metrics()["tokens_out"]) == (8, 2)


async def test_history_is_sent_and_trimmed_to_the_context_window(
    dialect, server, make_config, sleeps
):
    long_answer = "x" * 2400  # ~600 tokens per answer
    for _ in range(3):
        server.script(dialect.streamed(dialect.stream([long_answer])))
    # room for history: 1400 - system (~180) - q (5) - reply budget 300 = ~900 tokens: one turn.
    overrides = {"history_length": 100, "context_window": 1400}
    async with make_agent(dialect, server.url, make_config, sleeps, **overrides) as agent:
        for i in range(3):
            await read_all(agent, f"q{i}")
    first, second, third = (r.json for r in server.received)
    assert dialect.turns(first) == [("user", "q0")]
    assert dialect.turns(second) == [("user", "q0"), ("assistant", long_answer), ("user", "q1")]
    assert dialect.turns(third) == [("user", "q1"), ("assistant", long_answer), ("user", "q2")]
    assert all(dialect.system(r.json) == agent.system_prompt for r in server.received)


async def test_429_with_retry_after_is_waited_then_succeeds(dialect, server, make_config, sleeps):
    server.script(
        dialect.error(429, "slow down", **{"Retry-After": "2"}),
        dialect.streamed(dialect.stream(["ok"])),
    )
    async with make_agent(dialect, server.url, make_config, sleeps) as agent:
        assert await read_all(agent, "hi") == ["ok"]
    assert sleeps.delays == [2.0] and len(server.received) == 2
    metrics = agent.get_metrics()
    assert metrics["retries"] == 1 and metrics["errors"] == 0 and metrics["successes"] == 1


@pytest.mark.parametrize("status", [500, 503])
async def test_5xx_then_success_after_jittered_backoff(
    dialect, server, make_config, sleeps, status
):
    server.script(
        dialect.error(status, "internal failure"), dialect.streamed(dialect.stream(["fine"]))
    )
    overrides = {"backoff_initial": 0.4, "backoff_max": 1.0}
    async with make_agent(dialect, server.url, make_config, sleeps, **overrides) as agent:
        assert await read_all(agent, "hi") == ["fine"]
    (delay,) = sleeps.delays
    assert 0.2 <= delay <= 0.4  # equal jitter: uniform in [base / 2, base]
    assert len(server.received) == 2 and server.received[0].body == server.received[1].body


async def test_malformed_json_mid_stream_is_a_protocol_error_never_retried(
    dialect, server, make_config, sleeps
):
    chunks = dialect.stream(TEXTS)
    at = next(i for i, chunk in enumerate(chunks) if b"gamma" in chunk)
    chunks.insert(at, dialect.malformed())
    server.script(dialect.streamed(chunks))
    got: list[str] = []
    async with make_agent(dialect, server.url, make_config, sleeps) as agent:
        with pytest.raises(ProtocolError, match="malformed JSON") as info:
            await read_all(agent, "hi", got)
    assert info.value.provider == dialect.provider
    assert got == ["alpha", " beta"] and len(server.received) == 1 and sleeps.delays == []
    assert agent.get_metrics()["errors_by_kind"] == {"protocol": 1}
    assert len(agent.history) == 0


async def test_stream_cut_mid_way_is_a_protocol_error_with_partial_counts(
    dialect, server, make_config, sleeps
):
    chunks = dialect.stream(TEXTS)
    cut = next(i for i, chunk in enumerate(chunks) if b"gamma" in chunk)
    server.script(dialect.streamed(chunks, cut_after=cut))
    records: list[RequestRecord] = []
    got: list[str] = []
    async with make_agent(dialect, server.url, make_config, sleeps) as agent:
        agent.add_listener(records.append)
        with pytest.raises(ProtocolError, match="cut mid-reply"):
            await read_all(agent, "hi", got)
    assert got == ["alpha", " beta"] and len(server.received) == 1 and sleeps.delays == []
    (record,) = records
    assert not record.ok and record.error_kind == "protocol"
    assert record.tokens_out == 3  # estimate of "alpha beta" (10 chars)
    assert agent.get_metrics()["errors_by_kind"] == {"protocol": 1}


async def test_slow_server_hits_the_timeout_on_every_attempt(dialect, server, make_config, sleeps):
    server.script(*[Reply(delay_s=1.0, body=b"{}")] * 2)
    overrides = {"request_timeout": 0.2, "max_retries": 1}
    async with make_agent(dialect, server.url, make_config, sleeps, **overrides) as agent:
        with pytest.raises(ProviderTimeoutError, match=r"within 0\.2 s") as info:
            await read_all(agent, "hi")
    assert info.value.attempts == 2 and len(server.received) == 2 and len(sleeps.delays) == 1
    assert agent.get_metrics()["errors_by_kind"] == {"timeout": 1}


async def test_connection_refused_is_retried_then_raised(dialect, refused_url, make_config, sleeps):
    async with make_agent(dialect, refused_url, make_config, sleeps, max_retries=2) as agent:
        with pytest.raises(ProviderConnectionError, match="cannot connect") as info:
            await read_all(agent, "hi")
    assert refused_url in str(info.value) and info.value.attempts == 3
    assert len(sleeps.delays) == 2
    metrics = agent.get_metrics()
    assert metrics["errors_by_kind"] == {"connection": 1} and metrics["retries"] == 2


async def test_wrong_api_key_is_an_authentication_error_without_retry(
    dialect, server, make_config, sleeps
):
    server.script(dialect.error(401, "invalid api key"))
    async with make_agent(dialect, server.url, make_config, sleeps) as agent:
        with pytest.raises(AuthenticationError, match="invalid api key") as info:
            await read_all(agent, "hi")
    assert info.value.status == 401 and info.value.attempts == 1
    assert len(server.received) == 1 and sleeps.delays == []
    assert agent.get_metrics()["errors_by_kind"] == {"auth": 1}


def test_dialects_build_valid_json_lines():
    # Guard for the builders above: every data line the fake servers send parses.
    for dialect in DIALECTS:
        for chunk in dialect.stream(TEXTS):
            for line in chunk.decode().splitlines():
                payload = line.removeprefix("data: ")
                if line and not line.startswith("event:") and payload != "[DONE]":
                    json.loads(payload)
