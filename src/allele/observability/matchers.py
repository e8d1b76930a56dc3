"""Label matchers, as Alertmanager and Prometheus write them: ``name="value"``, ``name!="value"``,
``name=~"regex"``, ``name!~"regex"``.

Routes, inhibition rules and silences all select alerts by their labels with these. A label an
alert does not have counts as the empty string (so ``team=""`` matches alerts without ``team``);
regular expressions are anchored at both ends, as in Alertmanager.

>>> Matcher.parse('severity=~"critical|error"').matches({"severity": "error"})
True
>>> Matcher.parse("component_id!=llm").matches({})
True
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from allele.errors import ValidationError

OPERATORS = ("=~", "!~", "!=", "=")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_MATCHER = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Matcher:
    """One condition on one label."""

    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _LABEL_NAME.fullmatch(self.name):
            raise ValidationError(
                f"matcher label name {self.name!r} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"
            )
        if self.op not in OPERATORS:
            raise ValidationError(
                f"matcher operator {self.op!r} is unknown; allowed: {', '.join(OPERATORS)}"
            )
        if not isinstance(self.value, str):
            raise ValidationError(f"matcher value {self.value!r} must be a string")
        if self.op in ("=~", "!~"):
            try:
                compiled = re.compile(f"(?:{self.value})")
            except re.error as exc:
                raise ValidationError(
                    f"matcher {self.name}{self.op}{self.value!r}: invalid regular expression: {exc}"
                ) from None
            object.__setattr__(self, "_regex", compiled)

    @classmethod
    def parse(cls, text: str | Matcher) -> Matcher:
        """Read ``name<op>"value"`` (the quotes may be left out)."""
        if isinstance(text, Matcher):
            return text
        if not isinstance(text, str):
            raise ValidationError(
                f"matcher {text!r} must be a string such as 'severity=\"critical\"'"
            )
        found = _MATCHER.match(text)
        if found is None:
            raise ValidationError(
                f'matcher {text!r} is not name<op>"value" with op one of {", ".join(OPERATORS)}'
            )
        name, op, value = found.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1].replace('\\"', '"')
        elif value[:1] in ("=", "~") or '"' in value:
            raise ValidationError(
                f'matcher {text!r}: the value {value!r} is malformed; write name<op>"value" '
                f"with op one of {', '.join(OPERATORS)}"
            )
        return cls(name, op, value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this matcher (a missing label is the empty string)."""
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        escaped = self.value.replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


def parse_matchers(items: Iterable[str | Matcher]) -> list[Matcher]:
    """Parse every matcher of ``items``."""
    if isinstance(items, str):
        raise ValidationError(f"matchers must be a list of strings, got the string {items!r}")
    return [Matcher.parse(item) for item in items]


def all_match(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy every matcher (an empty list matches everything)."""
    return all(m.matches(labels) for m in matchers)
