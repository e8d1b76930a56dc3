"""Conversation history, trimmed to a message count and to the model's context window.

Token estimate: ``ceil(len(text) / 4)`` per message plus ``MESSAGE_OVERHEAD`` (4) tokens for its
role and separators -- the usual rule of thumb for English with BPE tokenizers. It is only used
to decide what fits; usage reported by the provider is what the metrics count when available.

The window sent with a request is: the system prompt, then the newest past messages that fit in
``context_window - reply_budget - tokens(system) - tokens(new message)`` and within
``history_length`` messages, then the new user message. It never starts with an assistant message,
because Anthropic's Messages API requires the first message to come from the user.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from allele.errors import ValidationError

MESSAGE_OVERHEAD = 4


def estimate_tokens(text: str) -> int:
    """Return the estimated token count of ``text``: ``ceil(len(text) / 4)``."""
    return (len(text) + 3) // 4


def message_tokens(content: str) -> int:
    """Return the estimated tokens one message costs in a request (content plus overhead)."""
    return estimate_tokens(content) + MESSAGE_OVERHEAD


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message: ``role`` is ``"user"`` or ``"assistant"``."""

    role: str
    content: str
    tokens: int

    def to_dict(self) -> dict[str, str]:
        """Return the ``{"role", "content"}`` mapping used on the wire."""
        return {"role": self.role, "content": self.content}


class ConversationHistory:
    """Past messages of one conversation, newest last, bounded to ``max_messages``."""

    def __init__(self, max_messages: int, context_window: int) -> None:
        if max_messages < 0:
            raise ValidationError(f"max_messages must be >= 0, got {max_messages!r}")
        if context_window < 1:
            raise ValidationError(f"context_window must be >= 1, got {context_window!r}")
        self.max_messages = max_messages
        self.context_window = context_window
        self._messages: deque[Message] = deque(maxlen=max_messages)

    def __len__(self) -> int:
        return len(self._messages)

    @property
    def messages(self) -> list[Message]:
        """A copy of the stored messages, oldest first."""
        return list(self._messages)

    def add_turn(self, user: str, assistant: str) -> None:
        """Store one completed exchange (only completed ones: a failed reply is not history)."""
        self._messages.append(Message("user", user, message_tokens(user)))
        self._messages.append(Message("assistant", assistant, message_tokens(assistant)))

    def clear(self) -> None:
        """Forget the conversation."""
        self._messages.clear()

    def window(self, system: str, user: str, reply_budget: int) -> list[Message]:
        """Return the messages to send: the newest past ones that fit, then ``user``.

        Raises ValidationError when the system prompt, ``user`` and the reply budget alone
        exceed the context window.
        """
        fixed = message_tokens(system) + message_tokens(user) + reply_budget
        room = self.context_window - fixed
        if room < 0:
            raise ValidationError(
                f"message too long for the context window: system prompt + message + reply "
                f"budget is ~{fixed} tokens, context_window is {self.context_window}"
            )
        kept: list[Message] = []
        for message in reversed(self._messages):
            if message.tokens > room:
                break
            room -= message.tokens
            kept.append(message)
        kept.reverse()
        while kept and kept[0].role != "user":
            kept.pop(0)
        kept.append(Message("user", user, message_tokens(user)))
        return kept
