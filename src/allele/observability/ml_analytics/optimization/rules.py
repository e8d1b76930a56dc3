"""Rule files: the user's own knowledge as recommendations, checked against measured series.

A rule file (TOML or JSON) holds a list of rules; a rule fires when a statistic of a matching
series meets its condition over the analysis window::

    [[rule]]
    name = "slow-agent"
    component = "nlp_agent"        # a component key, id or type; "*" for any
    metric = "latency_ms"
    statistic = "p95"              # mean, median, min, max, last, p0..p100
    operator = ">"
    threshold = 2000
    category = "performance_tuning"
    title = "Agent latency above 2 s at p95"
    description = "Lower max_tokens or move to a faster model."
    recommended_value = 512
    expected_improvement = 20.0    # percent, the rule author's estimate
    confidence = 0.8
    steps = ["Set max_tokens = 512 in the agent config"]

A malformed file raises a ConfigurationError with one line per problem.
"""

from __future__ import annotations

import json
import operator
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from allele.errors import ConfigurationError
from allele.observability.ml_analytics.optimization.history import MetricSeries
from allele.observability.ml_analytics.types import OptimizationCategory

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


class Rule(BaseModel):
    """One rule of a rule file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    component: str = "*"
    metric: str = Field(min_length=1)
    statistic: str = "mean"
    operator: Literal[">", ">=", "<", "<=", "==", "!="]
    threshold: float = Field(allow_inf_nan=False)
    category: OptimizationCategory
    title: str = Field(min_length=1)
    description: str = ""
    recommended_value: Any = None
    expected_improvement: float = Field(ge=0, le=100, allow_inf_nan=False)
    confidence: float = Field(ge=0, le=1, allow_inf_nan=False)
    estimated_effort: Literal["low", "medium", "high"] = "low"
    risk_level: Literal["low", "medium", "high"] = "low"
    steps: list[str] = Field(default_factory=list)

    @pydantic.field_validator("statistic")
    @classmethod
    def _known_statistic(cls, value: str) -> str:
        if value in ("mean", "median", "min", "max", "last"):
            return value
        if value.startswith("p"):
            try:
                if 0 <= float(value[1:]) <= 100:
                    return value
            except ValueError:
                pass
        raise ValueError("must be one of mean, median, min, max, last, p0..p100")

    def matches(self, series: MetricSeries) -> bool:
        return series.metric_name == self.metric and self.component in (
            "*",
            series.component,
            series.component_id,
            str(series.component_type),
        )

    def fires(self, series: MetricSeries) -> tuple[bool, float]:
        value = series.statistic(self.statistic)
        return _OPS[self.operator](value, self.threshold), value


class _RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: list[Rule] = Field(default_factory=list)


def load_rules(path: str | Path) -> list[Rule]:
    """The rules in ``path`` (``.toml`` or ``.json``); one line per problem when malformed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read rule file {str(path)!r}: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(
            f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'TOML'}: {exc}"
        ) from exc
    if isinstance(data, list):  # a JSON file may be a bare list of rules
        data = {"rule": data}
    try:
        return _RuleFile.model_validate(data).rule
    except pydantic.ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ConfigurationError("\n".join(lines)) from exc


def fired(
    rules: Sequence[Rule], series: Sequence[MetricSeries]
) -> list[tuple[Rule, MetricSeries, float]]:
    """Each (rule, series, measured statistic) whose condition holds."""
    hits = []
    for rule in rules:
        for s in series:
            if rule.matches(s):
                hit, value = rule.fires(s)
                if hit:
                    hits.append((rule, s, value))
    return hits
