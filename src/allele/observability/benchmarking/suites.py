"""Benchmark suites: what to measure (a component, a parameter matrix) and how (runs, timeouts).

A suite is written in TOML or built in Python::

    from allele.observability.benchmarking.suites import Suite
    suite = Suite(name="evo", component="evolution",
                  matrix={"population_size": [50, 100], "mutation_rate": [0.1, 0.2]},
                  params={"generations": 3}, runs=2)
    suite.cells()   # 4 parameter dicts

The TOML form has the same keys at the top level, ``[params]``, ``[matrix]``, ``[[exclude]]`` and
``[quick]`` tables (see the built-in suites in ``suites/*.toml``). A malformed file is rejected
with a ConfigurationError naming the file, the line and the reason, one line per problem.

A suite is checked whole when it is loaded, before any worker starts: every cell's parameters
go through the component's own checks (a misspelt name gets a "did you mean"), NaN values and
repeated matrix values are refused, run settings are bounded (``MAX_*``), and a matrix may not
expand to more than ``max_cells`` cells (10,000 unless the suite or ``--max-cells`` says more).

``runs``, ``timeout``, ``workers`` and ``measure_memory`` left unset take their values from
``MatrixBenchmarkSettings`` (the ``ALLELE_BENCHMARK_*`` variables); a value written in the suite
wins over the environment, a command-line flag wins over both.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from allele.errors import ConfigurationError
from allele.observability.benchmarking.matrix import MatrixError, check_matrix, count_cells, expand
from allele.observability.benchmarking.model import cell_key
from allele.observability.benchmarking.workloads import (
    COMPONENTS,
    check_params,
    unknown_parameters,
)

if TYPE_CHECKING:
    from allele.observability.benchmarking.config import MatrixBenchmarkSettings

Scalar = StrictBool | StrictInt | StrictFloat | StrictStr
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"

# Upper bounds of the run settings: far beyond any real suite, low enough that a typo (an extra
# three zeros) is an error at load time instead of a run that never ends.
MAX_RUNS = 1000  # worker processes per cell
MAX_SAMPLES = 100_000  # samples (and warmup samples) per process
MAX_MIN_TIME = 60.0  # seconds one sample lasts at least
MAX_TIMEOUT = 7 * 24 * 3600.0  # seconds one process run may take
MAX_INNER_LOOPS = 1_000_000_000
#: Cells a suite may expand to unless it sets ``max_cells`` (``--max-cells``) higher: a grid
#: of a million cells is a 200-byte file, and expanding it alone takes seconds and gigabytes.
DEFAULT_MAX_CELLS = 10_000
MAX_CELLS_LIMIT = 10_000_000


class QuickOverrides(BaseModel):
    """The reduced variant of a suite (``--quick``, the demo): fewer runs, samples, values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runs: int = Field(default=1, ge=1, le=MAX_RUNS)
    samples: int = Field(default=3, ge=1, le=MAX_SAMPLES)
    warmup: int = Field(default=0, ge=0, le=MAX_SAMPLES)
    min_time: float = Field(default=0.005, ge=0.0, le=MAX_MIN_TIME, allow_inf_nan=False)
    timeout: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT, allow_inf_nan=False)
    params: dict[str, Scalar] = Field(default_factory=dict)
    matrix: dict[str, list[Scalar]] = Field(default_factory=dict)


class _SuiteSchema(BaseModel):
    """The fields and checks of a suite; ``Suite`` adds the error translation of its __init__."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, max_length=200)
    component: str
    description: str = ""
    target: str | None = None
    params: dict[str, Scalar] = Field(default_factory=dict)
    matrix: dict[str, list[Scalar]] = Field(default_factory=dict)
    zip: list[list[str]] = Field(default_factory=list)
    exclude: list[dict[str, Scalar | list[Scalar]]] = Field(default_factory=list)
    runs: int | None = Field(default=None, ge=1, le=MAX_RUNS, description="processes per cell")
    # 20 samples of 5 ms per process, each sample the median of ~0.1 ms rounds (see measure):
    # a preempted round is an outlier the sample's median ignores, where a 5 ms loop nearly
    # always holds a preemption on a busy machine. On the project's shared 2-core machine a
    # cell (3 processes, about 0.45 s) then reproduces within 1 to 1.5 %; beyond that the
    # machine's own drift over seconds dominates, and more samples buy little per second spent.
    samples: int = Field(default=20, ge=1, le=MAX_SAMPLES, description="samples per process")
    warmup: int = Field(default=1, ge=0, le=MAX_SAMPLES, description="discarded samples")
    timeout: float | None = Field(
        default=None, gt=0, le=MAX_TIMEOUT, allow_inf_nan=False, description="s per process run"
    )
    workers: int | None = Field(default=None, ge=1, le=4096, description="processes at once")
    measure_memory: bool | None = None
    min_time: float = Field(
        default=0.005, ge=0.0, le=MAX_MIN_TIME, allow_inf_nan=False, description="s per sample"
    )
    max_inner_loops: int = Field(default=1_000_000, ge=1, le=MAX_INNER_LOOPS)
    max_cells: int = Field(
        default=DEFAULT_MAX_CELLS, ge=1, le=MAX_CELLS_LIMIT, description="cells allowed at most"
    )
    quick: QuickOverrides = Field(default_factory=lambda: QuickOverrides())

    @pydantic.field_validator("component")
    @classmethod
    def _known_component(cls, value: str) -> str:
        if value not in COMPONENTS:
            raise ValueError(f"unknown component {value!r}; known: {', '.join(COMPONENTS)}")
        return value

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> _SuiteSchema:
        for name, value in self.params.items():
            if isinstance(value, float) and math.isnan(value):
                raise MatrixError(f"parameter {name!r} is nan; give a number", ("params", name))
        check_matrix(self.matrix, self.zip, self.exclude)
        count = count_cells(self.matrix, self.zip)
        if count > self.max_cells:
            raise MatrixError(
                f"the matrix has {count:,} cells (before exclude rules), more than max_cells = "
                f"{self.max_cells:,}; shrink it, or set max_cells (--max-cells) to run it anyway",
                ("matrix",),
            )
        if self.component == "function" and not self.target:
            raise MatrixError(
                "component 'function' needs target = 'module:callable'", ("component",)
            )
        if self.target is not None and self.component != "function":
            raise MatrixError(
                f"target is only used by component 'function', not {self.component!r}",
                ("target",),
            )
        if self.target is not None and not re.fullmatch(r"[\w.]+:[\w.]+", self.target):
            raise MatrixError(
                f"target {self.target!r} is not of the form 'module:callable'", ("target",)
            )
        overlap = sorted(set(self.params) & set(self.matrix))
        if overlap:
            raise MatrixError(f"parameters {overlap} are both fixed and in the matrix", ("params",))
        unknown = sorted(set(self.quick.matrix) - set(self.matrix))
        if unknown:
            raise MatrixError(
                f"quick.matrix names {unknown}, which are not in the matrix", ("quick", "matrix")
            )
        problems = self.parameter_problems()
        if problems:
            raise SuiteProblems(problems)
        return self

    def parameter_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Every cell's parameters put through the component's own checks, before any run.

        ``(location, problem)`` pairs: an unknown parameter name once (with a "did you mean"),
        a bad value once per distinct problem with the number of cells it spoils.
        """
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for section, names in (("params", self.params), ("matrix", self.matrix)):
            for name, problem in unknown_parameters(self.component, names):
                problems.append(((section, name), problem))
        if problems:
            return problems  # the values of a misnamed parameter mean nothing yet
        spoiled: dict[str, list[dict[str, Any]]] = {}
        every = self.cells()
        for cell in every:
            verdict = check_params(self.component, self.cell_params(cell))
            if verdict is not None:
                spoiled.setdefault(verdict, []).append(cell)
        total = len(every)
        for problem, cells in spoiled.items():
            location = self._location_of(problem)
            share = f"{len(cells)} of {total} cells" if total > 1 else "the only cell"
            example = f", e.g. {cell_key(cells[0])}" if cells[0] and total > 1 else ""
            problems.append((location, f"{problem} ({share}{example})"))
        return problems

    def _location_of(self, problem: str) -> tuple[str | int, ...]:
        # The component's checks name the parameter ("population_size must be ..."): point at
        # the matrix entry or fixed parameter of that name.
        for name in sorted([*self.matrix, *self.params], key=len, reverse=True):
            if re.search(rf"\b{re.escape(name)}\b", problem):
                return ("matrix", name) if name in self.matrix else ("params", name)
        return ("matrix",) if self.matrix else ("params",)

    def cells(self) -> list[dict[str, Any]]:
        """The parameter dict of every cell (matrix parameters only), in a stable order."""
        return expand(self.matrix, self.zip, self.exclude)

    def cell_params(self, cell: dict[str, Any]) -> dict[str, Any]:
        """What the workload receives for ``cell``: the fixed params, then the cell's."""
        return {**self.params, **cell}

    def quick_variant(self) -> Suite:
        """The reduced suite ``<name>-quick`` of the ``[quick]`` table (``--quick``, the demo)."""
        q = self.quick
        matrix = {**self.matrix, **q.matrix}
        data = self.model_dump()
        data.update(
            # A reduced run measures different params: its history and baselines stay apart.
            name=self.name if self.name.endswith("-quick") else f"{self.name}-quick",
            runs=q.runs,
            samples=q.samples,
            warmup=q.warmup,
            min_time=q.min_time,
            timeout=q.timeout if q.timeout is not None else self.timeout,
            params={**self.params, **q.params},
            matrix=matrix,
            # Exclude rules may name values that the quick matrix dropped; that is harmless.
            exclude=self.exclude,
        )
        return Suite(**data)

    def resolved(self, settings: MatrixBenchmarkSettings | None = None, **overrides: Any) -> Suite:
        """This suite with every unset setting filled from ``settings`` then ``overrides``."""
        from allele.observability.benchmarking.config import get_matrix_benchmark_settings

        settings = settings or get_matrix_benchmark_settings()
        data = self.model_dump()
        for key in ("runs", "timeout", "workers", "measure_memory"):
            if data[key] is None:
                data[key] = getattr(settings, key)
        data.update({k: v for k, v in overrides.items() if v is not None})
        return Suite(**data)

    def to_config(self) -> dict[str, Any]:
        """The suite as a JSON-ready dict (stored with every run)."""
        return self.model_dump(mode="json")

    def fingerprint(self) -> str:
        """A hash of what the cells measure: resuming a run requires the same fingerprint."""
        keys = (
            "component",
            "target",
            "params",
            "matrix",
            "zip",
            "exclude",
            "runs",
            "samples",
            "warmup",
            "min_time",
            "max_inner_loops",
            "measure_memory",
        )
        config = self.to_config()
        blob = json.dumps({k: config[k] for k in keys}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class SuiteProblems(MatrixError):
    """Several problems of one suite, each with its location (one line each when reported)."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__("; ".join(p for _, p in problems), problems[0][0])
        self.problems = problems


class Suite(_SuiteSchema):
    """A benchmark suite: component, fixed params, parameter matrix and run settings.

    Invalid values raise a ConfigurationError naming each bad field and what is allowed.
    """

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise ConfigurationError(_describe(exc, where=f"suite {data.get('name')!r}")) from exc


def load_suite_text(text: str, source: str = "<string>", max_cells: int | None = None) -> Suite:
    """The suite described by TOML ``text``; errors name ``source``, the line and the reason.

    ``max_cells`` (``--max-cells``) overrides the file's own limit on its number of cells.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _syntax_error_line(str(exc), text)
        raise ConfigurationError(f"{source}:{line}: invalid TOML: {exc}") from exc
    if max_cells is not None:
        data["max_cells"] = max_cells
    try:
        # Validated through the schema class, whose errors keep their locations (Suite's own
        # __init__ turns them into one message), then built: the second pass cannot fail.
        _SuiteSchema.model_validate(data)
    except pydantic.ValidationError as exc:
        lines = _key_lines(text)
        problems = _problems(exc)
        if not any(isinstance(e.get("ctx", {}).get("error"), SuiteProblems) for e in exc.errors()):
            # The field errors stopped validation before the parameters were checked: report
            # misspelt parameter names now too, rather than one fix-and-retry later.
            problems += _raw_unknown_parameters(data)
        located = [(_line_of(loc, lines), loc, message) for loc, message in problems]
        report = []
        # One line per problem, in file order, so that an editor can jump to each.
        for at, loc, message in sorted(located, key=lambda p: p[0] if p[0] is not None else 0):
            where = f"{source}:{at}" if at is not None else source
            report.append(f"{where}: {_dotted(loc)}: {message}")
        raise ConfigurationError("\n".join(report)) from exc
    return Suite(**data)


def _raw_unknown_parameters(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    component = data.get("component")
    if not isinstance(component, str):
        return []
    out: list[tuple[tuple[str | int, ...], str]] = []
    for section in ("params", "matrix"):
        names = data.get(section)
        if isinstance(names, dict):
            out += [((section, n), p) for n, p in unknown_parameters(component, list(names))]
    return out


def load_suite_file(path: str | Path, max_cells: int | None = None) -> Suite:
    """The suite in TOML file ``path`` (ConfigurationError with the line when malformed)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read suite file {str(path)!r}: {exc.strerror}") from exc
    return load_suite_text(text, source=str(path), max_cells=max_cells)


def builtin_suite_names() -> list[str]:
    """Names of the suites shipped with Allele (``suites/*.toml``), sorted."""
    folder = resources.files(__package__ or __name__).joinpath("suites")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def builtin_suite(name: str) -> Suite:
    """The built-in suite called ``name`` (ConfigurationError listing the names when unknown)."""
    if name not in builtin_suite_names():
        raise ConfigurationError(
            f"no built-in suite {name!r}; built-in suites: {', '.join(builtin_suite_names())}"
        )
    resource = resources.files(__package__ or __name__).joinpath("suites", f"{name}.toml")
    return load_suite_text(resource.read_text(encoding="utf-8"), source=f"<builtin {name}.toml>")


def resolve_suite(name_or_path: str, max_cells: int | None = None) -> Suite:
    """A built-in suite by name, or the suite in a TOML file path."""
    if name_or_path in builtin_suite_names():
        suite = builtin_suite(name_or_path)
        return (
            suite if max_cells is None else Suite(**{**suite.model_dump(), "max_cells": max_cells})
        )
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        return load_suite_file(path, max_cells=max_cells)
    close = difflib.get_close_matches(name_or_path, builtin_suite_names(), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigurationError(
        f"{name_or_path!r} is neither a built-in suite ({', '.join(builtin_suite_names())}) "
        f"nor a suite file{hint}"
    )


# --- error locations ----------------------------------------------------------------------


def _describe(exc: pydantic.ValidationError, where: str | None = None) -> str:
    """One line per problem: ``[where: ]location: problem``."""
    prefix = f"{where}: " if where else ""
    return "\n".join(f"{prefix}{_dotted(loc)}: {message}" for loc, message in _problems(exc))


def _dotted(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in loc) or "suite"


def _problems(exc: pydantic.ValidationError) -> list[tuple[tuple[str | int, ...], str]]:
    """Every problem of a failed validation with its location, one entry each."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    for error in exc.errors():
        original = error.get("ctx", {}).get("error")
        if isinstance(original, SuiteProblems):
            out.extend(original.problems)
            continue
        loc = _error_loc(error)
        message = str(original) if isinstance(original, MatrixError) else error["msg"]
        if error["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc)
            close = difflib.get_close_matches(str(loc[-1]) if loc else "", allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            message = f"unknown key; {hint}allowed: " + ", ".join(allowed)
        elif not isinstance(original, MatrixError) and not isinstance(
            error.get("input", {}), dict | list
        ):
            message = f"{message} (got {error['input']!r})"
        out.append((loc, message))
    return out


def _allowed_keys(loc: tuple[str | int, ...]) -> list[str]:
    model: type[BaseModel] = QuickOverrides if loc[:1] == ("quick",) else _SuiteSchema
    return sorted(model.model_fields)


def _error_loc(error: Any) -> tuple[str | int, ...]:
    original = error.get("ctx", {}).get("error")
    if isinstance(original, MatrixError) and original.loc:
        return original.loc
    # Pydantic adds the union member's type name to the path ("...", "int", ...); drop those.
    return tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith(_TAGS)))


_TAGS = ("bool", "int", "float", "str", "list[", "function-")


def _syntax_error_line(message: str, text: str) -> int:
    match = re.search(r"at line (\d+)", message)
    if match:
        return int(match.group(1))
    return max(1, text.count("\n") + (0 if text.endswith("\n") else 1))


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+))*)\s*="""
)


def _split_dotted(key: str) -> tuple[str, ...]:
    parts = re.findall(r""""([^"]*)"|'([^']*)'|([A-Za-z0-9_\-]+)""", key)
    return tuple(a or b or c for a, b, c in parts)


def _key_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """The line (1-based) where each key path of a TOML document is written."""
    lines: dict[tuple[str | int, ...], int] = {}
    table: tuple[str | int, ...] = ()
    array_counts: dict[tuple[str | int, ...], int] = {}
    depth = 0  # open brackets of a multi-line array or inline table
    in_string = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw
        if in_string:
            if '"""' in line or "'''" in line:
                in_string = False
            continue
        if depth > 0:
            depth += _bracket_balance(line)
            continue
        header = _HEADER.match(line)
        if header:
            path: tuple[str | int, ...] = _split_dotted(header.group(2))
            if header.group(1) == "[[":
                index = array_counts.get(path, 0)
                array_counts[path] = index + 1
                path = (*path, index)
            table = path
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            full = (*table, *_split_dotted(key.group(1)))
            lines.setdefault(full, number)
            value = line[key.end() :]
            if value.count('"""') % 2 == 1 or value.count("'''") % 2 == 1:
                in_string = True
            depth = max(0, _bracket_balance(value))
    return lines


def _bracket_balance(fragment: str) -> int:
    # Strip simple strings first so that brackets inside them do not count.
    stripped = re.sub(r'"(?:\\.|[^"\\])*"|\'[^\']*\'', "", fragment.split("#", 1)[0])
    return stripped.count("[") + stripped.count("{") - stripped.count("]") - stripped.count("}")


def _line_of(loc: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]) -> int | None:
    for end in range(len(loc), 0, -1):
        line = lines.get(loc[:end])
        if line is not None:
            return line
    return None
