"""AgentConfig validation: clear errors naming the field and range, and a hidden API key."""

from __future__ import annotations

import pytest

from allele.agent import AgentConfig, SyntheticConfig
from allele.errors import ConfigurationError, ValidationError


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("temperature", 2.5, "<= 2.0"),
        ("temperature", -0.1, ">= 0.0"),
        ("max_tokens", 0, ">= 1"),
        ("request_timeout", 0, "> 0.0"),
        ("context_window", 10, ">= 256"),
        ("max_retries", -1, ">= 0"),
        ("requests_per_minute", 0, "> 0.0"),
        ("provider", "cohere", "'openai', 'ollama', 'anthropic' or 'synthetic'"),
    ],
)
def test_invalid_field_names_field_and_allowed_range(field, value, allowed):
    with pytest.raises(ConfigurationError) as info:
        AgentConfig(model="m", **{field: value})
    message = str(info.value)
    assert f"'{field}'" in message and allowed in message and repr(value) in message
    assert isinstance(info.value, ValidationError)  # callers may catch the broader class


def test_model_is_required_except_for_synthetic():
    with pytest.raises(ConfigurationError, match="model is required for provider 'ollama'"):
        AgentConfig(provider="ollama")
    assert AgentConfig(provider="synthetic").model == "synthetic"


def test_unknown_field_is_rejected():
    with pytest.raises(ConfigurationError, match="'temprature'"):
        AgentConfig(model="m", temprature=1.0)


def test_nested_synthetic_settings_are_validated():
    with pytest.raises(ConfigurationError, match=r"'error_rate'.*<= 1\.0"):
        AgentConfig(provider="synthetic", synthetic={"error_rate": 1.5})
    with pytest.raises(ConfigurationError, match="reply_tokens_max"):
        SyntheticConfig(reply_tokens_min=10, reply_tokens_max=5)


def test_provider_defaults():
    assert AgentConfig(provider="openai", model="m").api_key_env == "OPENAI_API_KEY"
    assert AgentConfig(provider="anthropic", model="m").base_url == "https://api.anthropic.com"
    ollama = AgentConfig(provider="ollama", model="m")
    assert (ollama.base_url, ollama.api_key_env) == ("http://127.0.0.1:11434", None)
    assert AgentConfig(model="m", base_url="http://h:1/v1/").base_url == "http://h:1/v1"


def test_api_key_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert AgentConfig(model="m").resolve_api_key() == "sk-env"
    monkeypatch.delenv("OPENAI_API_KEY")
    assert AgentConfig(model="m").resolve_api_key() is None


def test_api_key_never_shows_in_repr_or_errors():
    config = AgentConfig(model="m", api_key="sk-secret-value")
    assert "sk-secret-value" not in repr(config) and "sk-secret-value" not in str(config)
    assert config.resolve_api_key() == "sk-secret-value"
    with pytest.raises(ConfigurationError) as info:
        AgentConfig(model="m", api_key=12345, temperature=9)
    assert "12345" not in str(info.value) and "<hidden>" in str(info.value)


def test_config_is_frozen():
    config = AgentConfig(model="m")
    with pytest.raises(Exception, match="frozen"):
        config.temperature = 1.5  # type: ignore[misc]


def test_backoff_bounds_are_checked_together():
    with pytest.raises(ConfigurationError, match="backoff_max"):
        AgentConfig(model="m", backoff_initial=5, backoff_max=1)
