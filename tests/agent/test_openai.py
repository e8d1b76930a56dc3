"""The OpenAI-compatible client against a real local Chat Completions server."""

from __future__ import annotations

import pytest

from allele.agent import (
    BadRequestError,
    NLPAgent,
    ProtocolError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from allele.genome import ConversationalGenome

GENOME = ConversationalGenome(traits={"empathy": 0.9, "creativity": 1.0, "conciseness": 0.0})


def agent_for(server, make_config, sleeps, **overrides) -> NLPAgent:
    config = make_config(provider="openai", base_url=server.url, **overrides)
    return NLPAgent(GENOME, config, sleep=sleeps)


async def collect(agent: NLPAgent, message: str) -> list[str]:
    return [chunk async for chunk in agent.chat(message)]


async def test_streamed_reply_sends_system_prompt_sampling_and_key(
    server, wire, make_config, sleeps, monkeypatch
):
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-test-123")
    server.script(wire.sse_reply(wire.openai_stream(["Hel", "lo", " there"], usage=(42, 3))))
    agent = agent_for(
        server, make_config, sleeps, api_key_env="TEST_OPENAI_KEY", temperature=1.0, max_tokens=300
    )
    async with agent:
        chunks = await collect(agent, "hi")
    assert chunks == ["Hel", "lo", " there"]
    (request,) = server.received
    assert (request.method, request.path) == ("POST", "/chat/completions")
    assert request.headers["authorization"] == "Bearer sk-test-123"
    body = request.json
    assert body["model"] == "test-model"
    assert body["messages"][0] == {"role": "system", "content": agent.system_prompt}
    assert "empathy 0.90" in body["messages"][0]["content"]
    assert body["messages"][1:] == [{"role": "user", "content": "hi"}]
    # creativity 1.0 adds 0.3; conciseness 0.0 keeps the whole budget
    assert body["temperature"] == pytest.approx(1.3)
    assert body["max_tokens"] == 300
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    metrics = agent.get_metrics()
    assert metrics["requests"] == 1 and metrics["successes"] == 1
    assert (metrics["tokens_in"], metrics["tokens_out"]) == (42, 3)
    assert metrics["usage_sources"] == {"provider": 1}
    assert metrics["provider"] == "openai" and metrics["synthetic"] is False
    assert metrics["ttft_s"]["p50"] <= metrics["latency_s"]["p50"]


async def test_no_usage_falls_back_to_estimate(server, wire, make_config, sleeps):
    server.script(wire.sse_reply(wire.openai_stream(["abcdefgh"], usage=None)))
    async with agent_for(server, make_config, sleeps) as agent:
        await collect(agent, "hi")
    metrics = agent.get_metrics()
    assert metrics["usage_sources"] == {"estimate": 1}
    assert metrics["tokens_out"] == 2  # ceil(8 chars / 4)
    assert metrics["tokens_in"] > 0


async def test_non_streaming_complete(server, wire, make_config, sleeps):
    server.script(wire.openai_reply("Whole answer.", usage=(5, 2)))
    async with agent_for(server, make_config, sleeps) as agent:
        assert await agent.complete("question") == "Whole answer."
    body = server.received[0].json
    assert body["stream"] is False and "stream_options" not in body
    assert agent.get_metrics()["tokens_out"] == 2


async def test_streaming_off_yields_one_chunk(server, wire, make_config, sleeps):
    server.script(wire.openai_reply("One piece."))
    async with agent_for(server, make_config, sleeps, streaming=False) as agent:
        assert await collect(agent, "q") == ["One piece."]
    assert server.received[0].json["stream"] is False


async def test_history_is_sent_and_trimmed_to_history_length(server, wire, make_config, sleeps):
    for i in range(4):
        server.script(wire.sse_reply(wire.openai_stream([f"answer {i}"])))
    async with agent_for(server, make_config, sleeps, history_length=4) as agent:
        for i in range(4):
            await collect(agent, f"question {i}")
    last = server.received[-1].json["messages"]
    assert [m["content"] for m in last[1:]] == [
        "question 1",
        "answer 1",
        "question 2",
        "answer 2",
        "question 3",
    ]


async def test_retry_after_http_date_is_parsed(server, wire, make_config, sleeps):
    server.script(
        wire.json_reply({"error": "busy"}, 429, **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
        wire.sse_reply(wire.openai_stream(["ok"])),
    )
    async with agent_for(server, make_config, sleeps) as agent:
        await collect(agent, "hi")
    assert sleeps.delays == [0.0]  # a date in the past means "now"


async def test_retry_after_beyond_the_cap_fails_at_once(server, wire, make_config, sleeps):
    server.script(wire.json_reply({"error": "quota"}, 429, **{"Retry-After": "3600"}))
    async with agent_for(server, make_config, sleeps, retry_after_max=10) as agent:
        with pytest.raises(RateLimitError) as info:
            await collect(agent, "hi")
    assert info.value.retry_after == 3600.0 and info.value.status == 429
    assert sleeps.delays == [] and len(server.received) == 1
    assert agent.get_metrics()["errors_by_kind"] == {"rate_limit": 1}


async def test_500_then_success_uses_bounded_backoff(server, wire, make_config, sleeps):
    server.script(
        wire.json_reply({"error": {"message": "boom"}}, 500),
        wire.json_reply({"error": {"message": "boom"}}, 503),
        wire.sse_reply(wire.openai_stream(["fine"])),
    )
    async with agent_for(server, make_config, sleeps, backoff_initial=0.1, backoff_max=1) as agent:
        assert await collect(agent, "hi") == ["fine"]
    assert len(sleeps.delays) == 2
    assert 0.05 <= sleeps.delays[0] <= 0.1  # equal jitter in [base/2, base], base 0.1
    assert 0.1 <= sleeps.delays[1] <= 0.2  # base doubles
    assert agent.get_metrics()["retries"] == 2


async def test_persistent_500_raises_server_error_after_retries(server, wire, make_config, sleeps):
    server.script(*[wire.json_reply({"error": {"message": "down"}}, 502)] * 3)
    async with agent_for(server, make_config, sleeps, max_retries=2) as agent:
        with pytest.raises(ServerError, match="HTTP 502: down"):
            await collect(agent, "hi")
    assert len(server.received) == 3
    metrics = agent.get_metrics()
    assert metrics["errors_by_kind"] == {"server": 1} and metrics["successes"] == 0
    assert len(agent.history) == 0  # a failed exchange is not history


async def test_400_is_a_bad_request(server, wire, make_config, sleeps):
    server.script(wire.json_reply({"error": {"message": "model not found"}}, 404))
    async with agent_for(server, make_config, sleeps) as agent:
        with pytest.raises(BadRequestError, match="model not found"):
            await collect(agent, "hi")
    assert len(server.received) == 1


async def test_malformed_json_body_is_a_protocol_error(server, wire, make_config, sleeps):
    server.script(wire.Reply(200, {"Content-Type": "application/json"}, b"{oops"))
    async with agent_for(server, make_config, sleeps) as agent:
        with pytest.raises(ProtocolError):
            await agent.complete("hi")


async def test_stream_ending_before_finish_reason_is_a_protocol_error(
    server, wire, make_config, sleeps
):
    role_and_text = wire.openai_stream(["partial"], usage=None, done=False)[:2]
    server.script(wire.sse_reply(role_and_text))
    async with agent_for(server, make_config, sleeps) as agent:
        with pytest.raises(ProtocolError, match=r"finish_reason' and 'data: \[DONE\]"):
            await collect(agent, "hi")
    assert len(server.received) == 1


async def test_finished_stream_without_done_marker_is_complete(server, wire, make_config, sleeps):
    # llama.cpp-style servers may close the body after the finish_reason chunk.
    server.script(wire.sse_reply(wire.openai_stream(["whole"], usage=None, done=False)))
    async with agent_for(server, make_config, sleeps) as agent:
        assert await collect(agent, "hi") == ["whole"]
    assert agent.get_metrics()["successes"] == 1


async def test_error_object_inside_stream_is_a_server_error(server, wire, make_config, sleeps):
    server.script(
        wire.sse_reply([b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n']),
        wire.sse_reply(wire.openai_stream(["recovered"])),
    )
    async with agent_for(server, make_config, sleeps) as agent:
        assert await collect(agent, "hi") == ["recovered"]
    assert len(server.received) == 2


async def test_stall_after_text_times_out_without_a_retry(server, wire, make_config, sleeps):
    chunks = wire.openai_stream(["a", "b", "c"])
    server.script(wire.sse_reply(chunks, stall_after=2, stall_s=1.0))  # after role, "a"
    async with agent_for(server, make_config, sleeps, request_timeout=0.2) as agent:
        got: list[str] = []
        with pytest.raises(ProviderTimeoutError):
            async for chunk in agent.chat("hi"):
                got.append(chunk)
    # Retrying would repeat "a" to the caller: the timeout is raised instead.
    assert got == ["a"] and len(server.received) == 1 and sleeps.delays == []


async def test_dropped_connection_before_reply_is_retried(server, wire, make_config, sleeps):
    server.script(wire.Reply(drop=True), wire.sse_reply(wire.openai_stream(["back"])))
    async with agent_for(server, make_config, sleeps) as agent:
        assert await collect(agent, "hi") == ["back"]
    assert len(sleeps.delays) == 1
