"""The API key reaches the server's auth header and nowhere else: not logs, reprs or errors."""

from __future__ import annotations

import logging

import pytest

from allele.agent import AuthenticationError, NLPAgent, ProviderConnectionError, RequestRecord
from allele.genome import ConversationalGenome

KEY = "sk-secret-4f9a1c77e2b0"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_key_is_sent_but_never_logged_or_shown(
    provider, server, wire, make_config, sleeps, refused_url, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)  # httpx, httpcore and allele at their most verbose
    monkeypatch.setenv("SECRET_TEST_KEY", KEY)
    # A careless server echoes the rejected key in its error message.
    server.script(
        wire.json_reply({"error": {"message": "slow down"}}, 429, **{"Retry-After": "0"}),
        wire.json_reply({"error": {"message": f"Incorrect API key provided: {KEY}"}}, 401),
    )
    records: list[RequestRecord] = []
    shown: list[str] = []
    for url, expected in (
        (server.url, AuthenticationError),
        (refused_url, ProviderConnectionError),
    ):
        config = make_config(
            provider=provider, model="m", base_url=url, api_key_env="SECRET_TEST_KEY"
        )
        agent = NLPAgent(ConversationalGenome(), config, sleep=sleeps)
        agent.add_listener(records.append)
        async with agent:
            with pytest.raises(expected) as info:
                await agent.complete("hi")
            shown += [str(info.value), repr(info.value), repr(agent), repr(agent.config)]
            shown += [str(agent.config), str(agent.get_metrics())]
    sent = server.received[0].headers
    assert KEY in sent.get("authorization", "") + sent.get("x-api-key", "")
    assert "<redacted>" in shown[0]
    shown += [str(r.to_dict()) for r in records]
    assert caplog.records, "the retry should have logged something"
    for text in [caplog.text, *shown]:
        assert KEY not in text
