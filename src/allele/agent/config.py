"""AgentConfig: which provider and model an NLPAgent talks to, and how (limits, retries, keys).

The API key never lives in code or logs: it is read from the environment variable named by
``api_key_env`` (``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY`` by default) when the agent starts, or
given explicitly as a ``SecretStr`` whose ``repr`` hides it. Invalid values raise
:class:`allele.errors.ConfigurationError` naming the field and its allowed range.
"""

from __future__ import annotations

import os
import typing
from typing import Any, Literal

import annotated_types
import pydantic
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from allele.errors import ConfigurationError

ProviderName = Literal["openai", "ollama", "anthropic", "synthetic"]
InjectedErrorKind = Literal["rate_limit", "server", "timeout", "connection", "protocol"]

DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "ollama": "http://127.0.0.1:11434",
    "anthropic": "https://api.anthropic.com",
    "synthetic": "synthetic://local",
}
DEFAULT_API_KEY_ENVS: dict[str, str | None] = {
    "openai": "OPENAI_API_KEY",
    "ollama": None,
    "anthropic": "ANTHROPIC_API_KEY",
    "synthetic": None,
}


def _describe_allowed(model: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """Return ``"allowed: ..."`` for the field at ``loc`` from its declared constraints."""
    field = None
    for part in loc:
        fields = model.model_fields
        if not isinstance(part, str) or part not in fields:
            break
        field = fields[part]
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            model = nested
    if field is None:
        return ""
    bounds = []
    for item in field.metadata:
        for attr, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if isinstance(item, getattr(annotated_types, attr.capitalize())):
                bounds.append(f"{symbol} {getattr(item, attr)}")
    if bounds:
        return "allowed: value " + " and ".join(bounds)
    choices = _literal_choices(field.annotation)
    if choices:
        return "allowed: one of " + ", ".join(repr(c) for c in choices)
    return ""


def _literal_choices(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    for arg in typing.get_args(annotation):
        found = _literal_choices(arg)
        if found:
            return found
    return ()


def configuration_error(
    model: type[BaseModel], exc: pydantic.ValidationError
) -> ConfigurationError:
    """Return a ConfigurationError naming each bad field, its value and what is allowed."""
    problems = []
    for err in exc.errors():
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, ConfigurationError):
            # A nested settings model already described its own field.
            problems.append(str(cause))
            continue
        message = err["msg"].removeprefix("Value error, ")
        loc = tuple(err["loc"])
        if not loc:
            # A whole-model check: its message names the fields; the input may hold a secret.
            problems.append(f"{model.__name__}: {message}")
            continue
        name = ".".join(str(p) for p in loc)
        # A literal's own message already lists the choices.
        allowed = "" if err["type"] == "literal_error" else _describe_allowed(model, loc)
        # A secret must not reach an error message, even when it is the invalid value.
        shown = "<hidden>" if loc[0] == "api_key" else repr(err.get("input"))
        detail = f"{model.__name__} field {name!r}: {message} (got {shown}"
        problems.append(detail + (f"; {allowed})" if allowed else ")"))
    return ConfigurationError("; ".join(problems))


class _Validated(BaseModel):
    """A frozen pydantic model whose validation failures are ConfigurationErrors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise configuration_error(type(self), exc) from None

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> typing.Self:
        """Return a validated instance built from a plain mapping (a parsed file or flags)."""
        if not isinstance(data, dict):
            raise ConfigurationError(f"{cls.__name__} must be a mapping, got {data!r}")
        return cls(**data)


class SyntheticConfig(_Validated):
    """How the ``synthetic`` provider generates load: latency model, reply length, injected errors.

    Each reply is ``ttft_s`` before the first token, then ``per_token_s`` per token, each delay
    multiplied by a factor drawn uniformly from ``[1 - jitter, 1 + jitter]``.
    """

    seed: int = 0
    ttft_s: float = Field(default=0.05, ge=0.0, le=60.0)
    per_token_s: float = Field(default=0.005, ge=0.0, le=10.0)
    jitter: float = Field(default=0.1, ge=0.0, le=1.0)
    reply_tokens_min: int = Field(default=16, ge=1, le=100_000)
    reply_tokens_max: int = Field(default=64, ge=1, le=100_000)
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    error_kinds: tuple[InjectedErrorKind, ...] = ("server",)

    @model_validator(mode="after")
    def _check_ranges(self) -> SyntheticConfig:
        if self.reply_tokens_max < self.reply_tokens_min:
            raise ValueError(
                f"reply_tokens_max ({self.reply_tokens_max}) must be >= reply_tokens_min "
                f"({self.reply_tokens_min})"
            )
        if self.error_rate > 0 and not self.error_kinds:
            raise ValueError("error_kinds must name at least one kind when error_rate > 0")
        return self


class AgentConfig(_Validated):
    """Settings of an :class:`~allele.agent.NLPAgent`; every field is validated on creation.

    >>> AgentConfig(provider="ollama", model="llama3.2").base_url
    'http://127.0.0.1:11434'
    """

    provider: ProviderName = "openai"
    model: str = Field(
        default="", max_length=256, description="Model name; required except synthetic."
    )
    base_url: str = Field(default="", description="API root; empty means the provider's default.")
    api_key: SecretStr | None = Field(default=None, description="Explicit key; prefer api_key_env.")
    api_key_env: str | None = Field(default="", description="Environment variable holding the key.")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(default=512, ge=1, le=1_000_000)
    streaming: bool = True
    history_length: int = Field(default=20, ge=0, le=100_000, description="Past messages kept.")
    context_window: int = Field(
        default=8192, ge=256, le=10_000_000, description="Model context, tokens."
    )
    request_timeout: float = Field(
        default=60.0, gt=0.0, le=3600.0, description="Per network operation."
    )
    max_retries: int = Field(default=3, ge=0, le=20)
    backoff_initial: float = Field(default=0.5, ge=0.0, le=60.0)
    backoff_max: float = Field(default=20.0, ge=0.0, le=600.0)
    retry_after_max: float = Field(default=60.0, ge=0.0, le=3600.0)
    requests_per_minute: float | None = Field(default=None, gt=0.0, le=1_000_000.0)
    tokens_per_minute: float | None = Field(default=None, gt=0.0, le=1e12)
    anthropic_version: str = "2023-06-01"
    synthetic: SyntheticConfig = Field(default_factory=lambda: SyntheticConfig())

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _fill_defaults(self) -> AgentConfig:
        # Frozen model: defaults that depend on the provider are set once, here.
        if not self.model:
            if self.provider != "synthetic":
                raise ValueError(f"model is required for provider {self.provider!r}")
            object.__setattr__(self, "model", "synthetic")
        if not self.base_url:
            object.__setattr__(self, "base_url", DEFAULT_BASE_URLS[self.provider])
        if self.api_key_env == "":
            object.__setattr__(self, "api_key_env", DEFAULT_API_KEY_ENVS[self.provider])
        if self.backoff_max < self.backoff_initial:
            raise ValueError(
                f"backoff_max ({self.backoff_max}) must be >= backoff_initial "
                f"({self.backoff_initial})"
            )
        return self

    def resolve_api_key(self) -> str | None:
        """Return the API key: the explicit one, else the ``api_key_env`` variable, else None."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_env:
            return os.environ.get(self.api_key_env) or None
        return None
