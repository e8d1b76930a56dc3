"""The cells of a parameter matrix: cartesian product, ``zip`` groups and ``exclude`` rules.

A matrix maps parameter names to lists of values. By default every combination is a cell (the
cartesian product, in the order the parameters are written). A ``zip`` group names parameters
whose lists advance together (equal lengths: the i-th values form one axis point), like asv's
paired params. An ``exclude`` rule maps parameter names to a value or a list of values; a cell
matching every entry of a rule is dropped.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from allele.errors import ConfigurationError


class MatrixError(ConfigurationError):
    """A matrix, zip group or exclude rule is inconsistent; ``loc`` is the path of the culprit."""

    def __init__(self, message: str, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.loc = loc


def check_matrix(
    matrix: Mapping[str, Sequence[Any]],
    zip_groups: Sequence[Sequence[str]] = (),
    exclude: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Raise a MatrixError naming the first inconsistency, else return None."""
    for name, values in matrix.items():
        if len(values) == 0:
            raise MatrixError(
                f"matrix parameter {name!r} has no values; give at least one", ("matrix", name)
            )
        # A set of identities: linear in the number of values (8,000 values in milliseconds).
        seen: set[tuple[str, Any]] = set()
        for i, value in enumerate(values):
            if isinstance(value, float) and math.isnan(value):
                raise MatrixError(
                    f"matrix parameter {name!r} has the value nan at position {i}; NaN equals "
                    "nothing, not even itself, so it cannot name a cell",
                    ("matrix", name, i),
                )
            identity = _identity(value)
            if identity in seen:
                raise MatrixError(
                    f"matrix parameter {name!r} repeats the value {value!r}", ("matrix", name, i)
                )
            seen.add(identity)
    grouped: dict[str, int] = {}
    for g, group in enumerate(zip_groups):
        if len(group) < 2:
            raise MatrixError(
                f"zip group {list(group)!r} needs at least two parameters", ("zip", g)
            )
        for i, name in enumerate(group):
            if name not in matrix:
                raise MatrixError(
                    f"zip group {list(group)!r} names {name!r}, which is not in the matrix "
                    f"(known: {sorted(matrix)})",
                    ("zip", g, i),
                )
            if name in grouped:
                raise MatrixError(
                    f"parameter {name!r} is in two zip groups ({grouped[name]} and {g})",
                    ("zip", g, i),
                )
            grouped[name] = g
        lengths = {name: len(matrix[name]) for name in group}
        if len(set(lengths.values())) != 1:
            raise MatrixError(
                f"zip group {list(group)!r} pairs lists of different lengths {lengths}", ("zip", g)
            )
    for r, rule in enumerate(exclude):
        if not rule:
            raise MatrixError("an exclude rule is empty; it would drop every cell", ("exclude", r))
        for name in rule:
            if name not in matrix:
                raise MatrixError(
                    f"exclude rule names {name!r}, which is not in the matrix "
                    f"(known: {sorted(matrix)})",
                    ("exclude", r, name),
                )


def count_cells(
    matrix: Mapping[str, Sequence[Any]], zip_groups: Sequence[Sequence[str]] = ()
) -> int:
    """The number of cells before ``exclude`` rules, without expanding the grid."""
    grouped = {name for group in zip_groups for name in group}
    total = 1
    for name, values in matrix.items():
        if name not in grouped:
            total *= len(values)
    for group in zip_groups:
        total *= len(matrix[group[0]]) if group and group[0] in matrix else 1
    return total


def expand(
    matrix: Mapping[str, Sequence[Any]],
    zip_groups: Sequence[Sequence[str]] = (),
    exclude: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Every cell of the matrix as a parameter dict, in a stable order (first parameter slowest).

    >>> expand({"a": [1, 2], "b": ["x", "y"]}, zip_groups=[["a", "b"]])
    [{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'y'}]
    """
    check_matrix(matrix, zip_groups, exclude)
    group_of = {name: tuple(group) for group in zip_groups for name in group}
    # One axis per free parameter or zip group, placed where its first parameter is written.
    axes: list[tuple[tuple[str, ...], list[tuple[Any, ...]]]] = []
    placed: set[tuple[str, ...]] = set()
    for name in matrix:
        names = group_of.get(name, (name,))
        if names in placed:
            continue
        placed.add(names)
        points = list(zip(*(matrix[n] for n in names), strict=True))
        axes.append((names, points))
    cells: list[dict[str, Any]] = []
    for combo in itertools.product(*(points for _, points in axes)):
        cell: dict[str, Any] = {}
        for (names, _), point in zip(axes, combo, strict=True):
            cell.update(zip(names, point, strict=True))
        ordered = {name: cell[name] for name in matrix}
        if not any(_matches(ordered, rule) for rule in exclude):
            cells.append(ordered)
    return cells


def _matches(cell: Mapping[str, Any], rule: Mapping[str, Any]) -> bool:
    for name, wanted in rule.items():
        options = wanted if isinstance(wanted, list | tuple) else [wanted]
        if not any(_same(cell[name], option) for option in options):
            return False
    return True


def _identity(value: Any) -> tuple[str, Any]:
    # Hashable and equal exactly when _same() holds: numbers compare across int and float
    # (1 == 1.0), booleans only with booleans, strings with strings.
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    return (type(value).__name__, value)


def _same(a: Any, b: Any) -> bool:
    # True == 1 in Python; in a matrix a boolean and a number are different values.
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b
