"""The Anthropic Messages client against a real local /v1/messages SSE server."""

from __future__ import annotations

import pytest

from allele.agent import NLPAgent, ProtocolError, RateLimitError, ServerError
from allele.errors import ConfigurationError
from allele.genome import ConversationalGenome

GENOME = ConversationalGenome(traits={"creativity": 1.0, "conciseness": 0.5})


def agent_for(server, make_config, sleeps, **overrides) -> NLPAgent:
    config = make_config(
        provider="anthropic",
        model="claude-test",
        base_url=server.url,
        api_key_env="TEST_ANTHROPIC_KEY",
        **overrides,
    )
    return NLPAgent(GENOME, config, sleep=sleeps)


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", "ant-key-1")


async def test_streamed_events_with_top_level_system(server, wire, make_config, sleeps):
    server.script(wire.sse_reply(wire.anthropic_stream(["Hi", " you"], usage=(25, 6))))
    async with agent_for(server, make_config, sleeps, temperature=0.9, max_tokens=400) as agent:
        chunks = [c async for c in agent.chat("hello")]
    assert chunks == ["Hi", " you"]
    (request,) = server.received
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == "ant-key-1"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    body = request.json
    assert body["system"] == agent.system_prompt
    assert body["messages"] == [{"role": "user", "content": "hello"}]
    assert all(m["role"] != "system" for m in body["messages"])
    assert body["temperature"] == 1.0  # 0.9 + 0.3 = 1.2, clipped to Anthropic's [0, 1]
    assert body["max_tokens"] == 300  # conciseness 0.5 -> 75 % of 400
    assert body["stream"] is True
    metrics = agent.get_metrics()
    assert (metrics["tokens_in"], metrics["tokens_out"]) == (25, 6)


async def test_non_streaming_reply(server, wire, make_config, sleeps):
    server.script(
        wire.json_reply(
            {
                "type": "message",
                "content": [{"type": "text", "text": "Done."}],
                "usage": {"input_tokens": 9, "output_tokens": 2},
            }
        )
    )
    async with agent_for(server, make_config, sleeps) as agent:
        assert await agent.complete("q") == "Done."
    assert agent.get_metrics()["usage_sources"] == {"provider": 1}


async def test_overloaded_error_event_is_retried(server, wire, make_config, sleeps):
    error = (
        b'event: error\ndata: {"type": "error", "error": '
        b'{"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    )
    server.script(wire.sse_reply([error]), wire.sse_reply(wire.anthropic_stream(["ok"])))
    async with agent_for(server, make_config, sleeps) as agent:
        assert [c async for c in agent.chat("q")] == ["ok"]
    assert len(server.received) == 2 and len(sleeps.delays) == 1


async def test_rate_limit_error_event_is_typed(server, wire, make_config, sleeps):
    error = (
        b'event: error\ndata: {"type": "error", "error": '
        b'{"type": "rate_limit_error", "message": "too many"}}\n\n'
    )
    server.script(wire.sse_reply([error]))
    async with agent_for(server, make_config, sleeps, max_retries=0) as agent:
        with pytest.raises(RateLimitError, match="too many"):
            [c async for c in agent.chat("q")]


async def test_stream_without_message_stop_is_a_protocol_error(server, wire, make_config, sleeps):
    server.script(wire.sse_reply(wire.anthropic_stream(["cut"])[:-1]))
    async with agent_for(server, make_config, sleeps) as agent:
        with pytest.raises(ProtocolError, match="message_stop"):
            [c async for c in agent.chat("q")]


async def test_missing_key_is_a_configuration_error_naming_the_variable(
    server, make_config, sleeps, monkeypatch
):
    monkeypatch.delenv("TEST_ANTHROPIC_KEY")
    agent = agent_for(server, make_config, sleeps)
    with pytest.raises(ConfigurationError, match="TEST_ANTHROPIC_KEY"):
        await agent.initialize()
    assert server.received == []


async def test_http_529_overloaded_is_retried_after_retry_after(server, wire, make_config, sleeps):
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    server.script(
        wire.json_reply(overloaded, 529, **{"retry-after": "3"}),
        wire.sse_reply(wire.anthropic_stream(["back"])),
    )
    async with agent_for(server, make_config, sleeps) as agent:
        assert [c async for c in agent.chat("q")] == ["back"]
    assert sleeps.delays == [3.0] and agent.get_metrics()["retries"] == 1


async def test_error_event_after_text_is_raised_not_retried(server, wire, make_config, sleeps):
    error = (
        b'event: error\ndata: {"type": "error", "error": '
        b'{"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    )
    events = [*wire.anthropic_stream(["partial"])[:4], error]
    server.script(wire.sse_reply(events))
    got: list[str] = []
    async with agent_for(server, make_config, sleeps) as agent:
        with pytest.raises(ServerError, match="overloaded_error: Overloaded"):
            async for chunk in agent.chat("q"):
                got.append(chunk)
    assert got == ["partial"] and len(server.received) == 1
    assert agent.get_metrics()["errors_by_kind"] == {"server": 1}
