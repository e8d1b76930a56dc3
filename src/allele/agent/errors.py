"""Typed failures of an LLM provider call, each with the ``kind`` under which metrics count it.

Every class subclasses :class:`allele.errors.ProviderError`. ``retryable`` says whether the agent's
retry loop may try the request again (only while nothing has been streamed to the caller yet).
"""

from __future__ import annotations

from allele.errors import AlleleError, ProviderError


class ProviderCallError(ProviderError):
    """A provider request failed; ``kind`` names the failure, ``status`` the HTTP code if any.

    ``retry_after`` is the wait in seconds the server asked for (``Retry-After``), if it did;
    ``attempts`` is how many times the agent sent the request before giving up.
    """

    kind = "provider"
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        provider: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.provider = provider
        self.retry_after = retry_after
        self.attempts = 1


class AuthenticationError(ProviderCallError):
    """The provider rejected the API key (HTTP 401 or 403)."""

    kind = "auth"


class BadRequestError(ProviderCallError):
    """The provider rejected the request itself (HTTP 400, 404, 422...); retrying won't help."""

    kind = "bad_request"


class RateLimitError(ProviderCallError):
    """The provider is throttling us (HTTP 429 or a rate-limit error event)."""

    kind = "rate_limit"
    retryable = True


class ServerError(ProviderCallError):
    """The provider failed on its side (HTTP 5xx, or an overload/error event in a stream)."""

    kind = "server"
    retryable = True


class ProviderTimeoutError(ProviderCallError):
    """Connecting, sending or waiting for the next bytes took longer than the request timeout."""

    kind = "timeout"
    retryable = True


class ProviderConnectionError(ProviderCallError):
    """The connection was refused or dropped before any reply text arrived."""

    kind = "connection"
    retryable = True


class ProtocolError(ProviderCallError):
    """The reply broke the wire protocol: malformed JSON, unknown shape, or a stream cut mid-way.

    Never retried: once chunks have reached the caller a retry would duplicate output, and a
    server that sends malformed data is not expected to heal by itself.
    """

    kind = "protocol"


ERROR_KINDS: tuple[str, ...] = (
    AuthenticationError.kind,
    BadRequestError.kind,
    RateLimitError.kind,
    ServerError.kind,
    ProviderTimeoutError.kind,
    ProviderConnectionError.kind,
    ProtocolError.kind,
)


def error_for_status(
    status: int, message: str, *, provider: str, retry_after: float | None = None
) -> ProviderCallError:
    """Return the typed error for an HTTP error ``status``."""
    cls: type[ProviderCallError]
    if status in (401, 403):
        cls = AuthenticationError
    elif status == 429:
        cls = RateLimitError
    elif status == 408:
        cls = ProviderTimeoutError
    elif status >= 500:
        cls = ServerError
    elif status >= 400:
        cls = BadRequestError
    else:
        cls = ProtocolError
    return cls(
        f"{provider} returned HTTP {status}: {message}",
        status=status,
        provider=provider,
        retry_after=retry_after,
    )


class AgentStateError(AlleleError, RuntimeError):
    """The agent was used before ``initialize()`` or after ``close()``."""
