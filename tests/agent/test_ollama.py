"""The Ollama client against a real local /api/chat server speaking NDJSON."""

from __future__ import annotations

import pytest

from allele.agent import BadRequestError, NLPAgent, ProtocolError, ServerError
from allele.genome import ConversationalGenome

GENOME = ConversationalGenome(traits={"creativity": 0.0, "conciseness": 1.0})


def agent_for(server, make_config, sleeps, **overrides) -> NLPAgent:
    config = make_config(provider="ollama", model="llama3.2", base_url=server.url, **overrides)
    return NLPAgent(GENOME, config, sleep=sleeps)


async def test_streamed_ndjson_reply_with_options_and_counts(server, wire, make_config, sleeps):
    server.script(
        wire.Reply(
            200,
            {"Content-Type": "application/x-ndjson"},
            chunks=wire.ollama_stream(["Bon", "jour"], counts=(31, 4)),
        )
    )
    async with agent_for(server, make_config, sleeps, temperature=0.2, max_tokens=100) as agent:
        chunks = [c async for c in agent.chat("salut")]
    assert chunks == ["Bon", "jour"]
    (request,) = server.received
    assert request.path == "/api/chat"
    body = request.json
    assert body["model"] == "llama3.2" and body["stream"] is True
    assert body["messages"][0] == {"role": "system", "content": agent.system_prompt}
    assert body["messages"][1] == {"role": "user", "content": "salut"}
    # creativity 0 takes 0.3 off (clipped at 0); conciseness 1 halves the budget
    assert body["options"] == {"temperature": 0.0, "num_predict": 50}
    metrics = agent.get_metrics()
    assert (metrics["tokens_in"], metrics["tokens_out"]) == (31, 4)
    assert metrics["usage_sources"] == {"provider": 1}


async def test_non_streaming_reply(server, wire, make_config, sleeps):
    server.script(
        wire.json_reply(
            {
                "message": {"role": "assistant", "content": "Entier."},
                "done": True,
                "prompt_eval_count": 8,
                "eval_count": 2,
            }
        )
    )
    async with agent_for(server, make_config, sleeps) as agent:
        assert await agent.complete("q") == "Entier."
    assert server.received[0].json["stream"] is False
    assert agent.get_metrics()["tokens_out"] == 2


async def test_stream_without_done_is_a_protocol_error(server, wire, make_config, sleeps):
    server.script(wire.Reply(chunks=wire.ollama_stream(["half"], counts=None)))
    async with agent_for(server, make_config, sleeps) as agent:
        with pytest.raises(ProtocolError, match="done: true"):
            [c async for c in agent.chat("q")]


async def test_error_line_is_a_server_error_and_is_retried(server, wire, make_config, sleeps):
    server.script(
        wire.Reply(chunks=[b'{"error": "model is loading"}\n']),
        wire.Reply(chunks=wire.ollama_stream(["ready"])),
    )
    async with agent_for(server, make_config, sleeps) as agent:
        assert [c async for c in agent.chat("q")] == ["ready"]
    assert len(server.received) == 2


async def test_error_line_after_text_is_not_retried(server, wire, make_config, sleeps):
    chunks = [*wire.ollama_stream(["some"], counts=None), b'{"error": "out of memory"}\n']
    server.script(wire.Reply(chunks=chunks))
    async with agent_for(server, make_config, sleeps) as agent:
        with pytest.raises(ServerError, match="out of memory"):
            [c async for c in agent.chat("q")]
    assert len(server.received) == 1


async def test_unknown_model_is_a_bad_request_quoting_ollama(server, wire, make_config, sleeps):
    missing = {"error": "model 'llama3.2' not found, try pulling it first"}
    server.script(wire.json_reply(missing, 404))
    async with agent_for(server, make_config, sleeps) as agent:
        with pytest.raises(BadRequestError, match="not found, try pulling it first"):
            [c async for c in agent.chat("q")]
    assert len(server.received) == 1 and sleeps.delays == []
