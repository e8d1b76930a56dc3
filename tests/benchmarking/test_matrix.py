"""Matrix expansion: cartesian product, zip groups and exclude rules, exactly."""

from __future__ import annotations

import pytest

from allele.errors import ConfigurationError
from allele.observability.benchmarking.matrix import MatrixError, expand


def test_cartesian_product_in_written_order_first_parameter_slowest() -> None:
    cells = expand({"population_size": [50, 100], "mutation_rate": [0.1, 0.2, 0.3]})
    assert cells == [
        {"population_size": 50, "mutation_rate": 0.1},
        {"population_size": 50, "mutation_rate": 0.2},
        {"population_size": 50, "mutation_rate": 0.3},
        {"population_size": 100, "mutation_rate": 0.1},
        {"population_size": 100, "mutation_rate": 0.2},
        {"population_size": 100, "mutation_rate": 0.3},
    ]


def test_zip_group_advances_together_and_crosses_the_rest() -> None:
    cells = expand(
        {"size": [10, 20, 30], "kernel": ["a", "b"], "loops": [1, 2, 3]},
        zip_groups=[["size", "loops"]],
    )
    assert cells == [
        {"size": 10, "kernel": "a", "loops": 1},
        {"size": 10, "kernel": "b", "loops": 1},
        {"size": 20, "kernel": "a", "loops": 2},
        {"size": 20, "kernel": "b", "loops": 2},
        {"size": 30, "kernel": "a", "loops": 3},
        {"size": 30, "kernel": "b", "loops": 3},
    ]


def test_exclude_rules_with_single_values_and_value_lists() -> None:
    cells = expand(
        {"n": [1, 2, 3], "m": ["x", "y"]},
        exclude=[{"n": 3, "m": "y"}, {"n": [1, 2], "m": "x"}],
    )
    assert cells == [{"n": 1, "m": "y"}, {"n": 2, "m": "y"}, {"n": 3, "m": "x"}]


def test_exclude_distinguishes_booleans_from_numbers() -> None:
    cells = expand({"flag": [True, False], "n": [1, 0]}, exclude=[{"n": True}])
    assert {"flag": True, "n": 1} in cells
    assert len(cells) == 4


def test_zip_and_exclude_together() -> None:
    cells = expand(
        {"a": [1, 2], "b": [10, 20], "c": ["p", "q"]},
        zip_groups=[["a", "b"]],
        exclude=[{"a": 2, "c": "q"}],
    )
    assert cells == [
        {"a": 1, "b": 10, "c": "p"},
        {"a": 1, "b": 10, "c": "q"},
        {"a": 2, "b": 20, "c": "p"},
    ]


@pytest.mark.parametrize(
    ("matrix", "zip_groups", "exclude", "message", "loc"),
    [
        ({"a": []}, [], [], "has no values", ("matrix", "a")),
        ({"a": [1, 1]}, [], [], "repeats the value 1", ("matrix", "a", 1)),
        ({"a": [1], "b": [1, 2]}, [["a", "b"]], [], "different lengths", ("zip", 0)),
        ({"a": [1]}, [["a", "z"]], [], "'z', which is not in the matrix", ("zip", 0, 1)),
        ({"a": [1]}, [], [{"z": 1}], "'z', which is not in the matrix", ("exclude", 0, "z")),
        ({"a": [1]}, [], [{}], "exclude rule is empty", ("exclude", 0)),
    ],
)
def test_inconsistent_matrices_are_rejected_with_their_location(
    matrix: dict, zip_groups: list, exclude: list, message: str, loc: tuple
) -> None:
    with pytest.raises(MatrixError, match=message) as info:
        expand(matrix, zip_groups, exclude)
    assert info.value.loc == loc
    assert isinstance(info.value, ConfigurationError)
