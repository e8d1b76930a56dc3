"""A parameter space: the values each parameter may take, and their place in the unit cube.

The space is the language of a suite's matrix (a name -> list of values), so the optimizer and
the recommender search exactly the cells a suite could measure. Numbers are placed by value on
[0, 1] (by log value when they are positive and span a factor of ten or more, as population
sizes and learning rates do); other values (strings, booleans) are categories, one-hot, so two
different categories are as far apart as the two ends of a numeric axis.

>>> space = ParameterSpace({"population_size": [50, 100, 200], "selection": ["rank", "tour"]})
>>> len(space)
6
>>> space.encode({"population_size": 100, "selection": "tour"}).round(2).tolist()
[0.33, 0.0, 0.71]
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from allele.errors import ValidationError

# A grid larger than this is not a grid to enumerate: say so rather than allocate gigabytes.
MAX_CELLS = 200_000


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Axis:
    """One parameter: its values and their coordinates (one column, or one per category)."""

    def __init__(self, name: str, values: Sequence[Any]) -> None:
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise ValidationError(
                f"parameter {name!r} needs a non-empty list of values, got {values!r}"
            )
        seen: set[Any] = set()
        for value in values:
            if _is_number(value) and not math.isfinite(value):
                raise ValidationError(f"parameter {name!r} has a non-finite value {value!r}")
            if not isinstance(value, int | float | str | bool):
                raise ValidationError(
                    f"parameter {name!r} value {value!r} is not a number, string or boolean"
                )
            marker = (type(value) is bool, value)
            if marker in seen:
                raise ValidationError(f"parameter {name!r} repeats the value {value!r}")
            seen.add(marker)
        self.name = name
        self.numeric = all(_is_number(v) for v in values)
        self.values: list[Any] = sorted(values) if self.numeric else list(values)
        if self.numeric:
            v = np.asarray(self.values, dtype=float)
            if len(v) == 1:
                coords = np.zeros(1)
            else:
                log = bool(v.min() > 0 and v.max() / v.min() >= 10.0)
                t = np.log(v) if log else v
                coords = (t - t.min()) / (t.max() - t.min())
            self.columns = 1
            self._coords = coords[:, None]
        else:
            # One-hot scaled so that any two categories are at distance 1.
            self.columns = len(self.values)
            self._coords = np.eye(len(self.values)) / math.sqrt(2.0)
        self._index = {(type(v) is bool, v): i for i, v in enumerate(self.values)}

    def index(self, value: Any) -> int:
        i = self._index.get((type(value) is bool, value))
        if i is None and _is_number(value):
            # 100 and 100.0 are the same cell.
            i = next((j for j, v in enumerate(self.values) if _is_number(v) and v == value), None)
        if i is None:
            raise ValidationError(
                f"parameter {self.name!r} has no value {value!r}; allowed: {self.values}"
            )
        return i

    def coords(self, i: int) -> np.ndarray:
        return self._coords[i]


class ParameterSpace:
    """The cartesian grid of ``space`` (name -> values), with cells placed in the unit cube."""

    def __init__(self, space: Mapping[str, Sequence[Any]]) -> None:
        if not isinstance(space, Mapping) or not space:
            raise ValidationError(f"a parameter space needs at least one parameter, got {space!r}")
        self.axes = [_Axis(str(name), values) for name, values in space.items()]
        self.names = [a.name for a in self.axes]
        size = math.prod(len(a.values) for a in self.axes)
        if size > MAX_CELLS:
            raise ValidationError(
                f"the parameter space has {size:,} cells; at most {MAX_CELLS:,} are allowed"
            )
        self.dims = sum(a.columns for a in self.axes)
        self._cells: list[dict[str, Any]] | None = None
        self._points: np.ndarray | None = None

    def __len__(self) -> int:
        return math.prod(len(a.values) for a in self.axes)

    def cells(self) -> list[dict[str, Any]]:
        """Every cell of the grid, in the order of the parameters' values."""
        if self._cells is None:
            self._cells = [
                dict(zip(self.names, combo, strict=True))
                for combo in itertools.product(*(a.values for a in self.axes))
            ]
        return self._cells

    def points(self) -> np.ndarray:
        """The coordinates of every cell (``len(self) x dims``), rows in ``cells()`` order."""
        if self._points is None:
            self._points = np.array([self.encode(c) for c in self.cells()]).reshape(
                len(self), self.dims
            )
        return self._points

    def position(self, params: Mapping[str, Any]) -> int:
        """The row of ``params`` in ``cells()`` (ValidationError for an unknown name or value)."""
        self._check_names(params)
        position = 0
        for axis in self.axes:
            position = position * len(axis.values) + axis.index(params[axis.name])
        return position

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """The coordinates of one cell."""
        self._check_names(params)
        return np.concatenate([a.coords(a.index(params[a.name])) for a in self.axes])

    def _check_names(self, params: Mapping[str, Any]) -> None:
        missing = [n for n in self.names if n not in params]
        extra = [n for n in params if n not in self.names]
        if missing or extra:
            raise ValidationError(
                f"parameters {dict(params)!r} do not match the space {self.names}"
                + (f"; missing {missing}" if missing else "")
                + (f"; unknown {extra}" if extra else "")
            )
