"""allele.errors: the exception hierarchy, ``require`` and the shared argument checks."""

from __future__ import annotations

import math
import sys

import pytest

from allele import errors
from allele.errors import (
    AlleleError,
    BenchmarkError,
    ConfigurationError,
    DependencyError,
    ProviderError,
    StoreError,
    ValidationError,
    check_int,
    check_real,
    require,
)


@pytest.mark.parametrize(
    ("error", "bases"),
    [
        (ValidationError, (AlleleError, ValueError)),
        (ConfigurationError, (ValidationError, AlleleError, ValueError)),
        (DependencyError, (AlleleError, ImportError)),
        (StoreError, (AlleleError,)),
        (BenchmarkError, (AlleleError,)),
        (ProviderError, (AlleleError,)),
    ],
)
def test_hierarchy_lets_callers_catch_either_family(
    error: type[Exception], bases: tuple[type[Exception], ...]
) -> None:
    assert all(issubclass(error, base) for base in bases)
    with pytest.raises(bases[-1], match="boom"):
        raise error("boom")


def test_unrelated_errors_stay_apart() -> None:
    assert not issubclass(StoreError, ValueError)
    assert not issubclass(ValidationError, ImportError)
    assert not issubclass(DependencyError, ValueError)


def test_require_returns_an_installed_module() -> None:
    assert require("json", "core") is sys.modules["json"]


def test_require_names_the_module_and_the_extra_to_install() -> None:
    with pytest.raises(DependencyError) as caught:
        require("allele_no_such_module_xyz", "mlflow")
    message = str(caught.value)
    assert "'allele_no_such_module_xyz' is not installed" in message
    assert "pip install 'allele[mlflow]'" in message
    assert isinstance(caught.value, ImportError)
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)


def test_require_reports_a_broken_submodule_too() -> None:
    with pytest.raises(DependencyError, match=r"allele\[tracking\]"):
        require("json.no_such_part", "tracking")


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (0, r"size must be an integer in \[1, 10\], got 0"),
        (11, r"size must be an integer in \[1, 10\], got 11"),
        (True, r"size must be an integer in \[1, 10\], got bool True"),
        (2.0, r"size must be an integer in \[1, 10\], got float 2.0"),
        ("3", r"size must be an integer in \[1, 10\], got str '3'"),
    ],
)
def test_check_int_names_the_value_and_the_range(value: object, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        check_int("size", value, 1, 10)


def test_check_int_returns_a_plain_int() -> None:
    import numpy as np

    value = check_int("size", np.int64(4), 1, 10)
    assert value == 4 and type(value) is int
    assert check_int("size", 1, 1, 10) == 1 and check_int("size", 10, 1, 10) == 10


@pytest.mark.parametrize(
    ("value", "kwargs", "match"),
    [
        (0.0, {"low_open": True}, r"rate must be a number in \(0, 1\], got 0.0"),
        (1.0, {"high_open": True}, r"rate must be a number in \[0, 1\), got 1.0"),
        (-0.1, {}, r"rate must be a number in \[0, 1\], got -0.1"),
        (math.nan, {}, r"rate must be a number in \[0, 1\], got nan"),
        (False, {}, r"rate must be a number in \[0, 1\], got bool False"),
        (None, {}, r"rate must be a number in \[0, 1\], got NoneType None"),
    ],
)
def test_check_real_names_the_value_and_the_interval(
    value: object, kwargs: dict[str, bool], match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        check_real("rate", value, 0.0, 1.0, **kwargs)


def test_check_real_bounds_and_infinity() -> None:
    assert check_real("rate", 0, 0.0, 1.0) == 0.0 and check_real("rate", 1, 0.0, 1.0) == 1.0
    assert check_real("scale", 1e300, 0.0, math.inf, high_open=True) == 1e300
    with pytest.raises(ValidationError, match=r"scale must be a number in \[0, inf\), got inf"):
        check_real("scale", math.inf, 0.0, math.inf, high_open=True)


def test_every_error_is_exported() -> None:
    names = {n for n in dir(errors) if n.endswith("Error")}
    assert names == {
        "AlleleError",
        "ValidationError",
        "ConfigurationError",
        "DependencyError",
        "StoreError",
        "BenchmarkError",
        "ProviderError",
    }
