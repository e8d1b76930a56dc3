"""Suites are checked whole before any process starts: parameters, values, limits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from allele.errors import ConfigurationError
from allele.observability.benchmarking.matrix import MatrixError, check_matrix, count_cells
from allele.observability.benchmarking.suites import Suite, load_suite_text, resolve_suite

EVOLUTION = """\
name = "evo"
component = "evolution"

[params]
generations = 2

[matrix]
population_size = [50, 100]
mutation_rate = [0.1, 0.2]
"""


def _error(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigurationError) as info:
        load_suite_text(text, source="s.toml", **kwargs)  # type: ignore[arg-type]
    return str(info.value).splitlines()


def test_misspelt_parameters_get_one_line_each_with_did_you_mean() -> None:
    text = EVOLUTION.replace("generations = 2", "generatons = 2").replace(
        "population_size", "populaton_size"
    )
    lines = _error(text)
    assert lines == [
        "s.toml:5: params.generatons: component 'evolution' has no parameter 'generatons'; "
        "did you mean 'generations'? its parameters: generations, mutation_rate, "
        "population_size, seed",
        "s.toml:8: matrix.populaton_size: component 'evolution' has no parameter "
        "'populaton_size'; did you mean 'population_size'? its parameters: generations, "
        "mutation_rate, population_size, seed",
    ]


def test_a_misspelt_top_level_key_is_reported_with_the_parameters() -> None:
    text = EVOLUTION.replace('component = "evolution"', 'component = "evolution"\nsamplse = 3')
    text = text.replace("[matrix]\npopulation_size", "[matrix]\npopulaton_size")
    lines = _error(text)
    assert lines[0].startswith("s.toml:3: samplse: unknown key; did you mean 'samples'?")
    assert lines[1].startswith("s.toml:9: matrix.populaton_size: ")
    assert len(lines) == 2


def test_bad_values_are_found_by_the_components_own_checks_before_running() -> None:
    text = EVOLUTION.replace("[50, 100]", "[-50, 100]").replace("[0.1, 0.2]", "[0.1, 1.5]")
    lines = _error(text)
    assert lines == [
        "s.toml:8: matrix.population_size: population_size must be an integer in "
        "[2, 10000000], got -50 (2 of 4 cells, e.g. mutation_rate=0.1,population_size=-50)",
        "s.toml:9: matrix.mutation_rate: mutation_rate must be a number in [0, 1], got 1.5 "
        "(1 of 4 cells, e.g. mutation_rate=1.5,population_size=100)",
    ]


@pytest.mark.parametrize(
    ("component", "matrix", "expected"),
    [
        ("kraken", {"reservoir_size": [0]}, "reservoir_size must be an integer in [1, 100000]"),
        ("kraken", {"sequence_length": [0]}, "sequence_length must be an integer"),
        ("agent", {"temperature": [5.0]}, "temperature"),
        ("agent", {"provider": ["nope"]}, "provider"),
        ("python", {"kernel": ["bogosort"]}, "python kernel 'bogosort' is unknown"),
        ("python", {"size": [0]}, "size must be an integer in [1, 100000000]"),
    ],
)
def test_every_builtin_component_checks_its_values(
    component: str, matrix: dict[str, list[object]], expected: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        Suite(name="s", component=component, matrix=matrix)
    assert expected in str(info.value)


def test_a_function_suite_passes_its_parameters_to_its_factory_unchecked() -> None:
    suite = Suite(name="f", component="function", target="m:f", matrix={"anything": [1, 2]})
    assert len(suite.cells()) == 2


def test_a_grid_beyond_max_cells_is_refused_without_being_expanded() -> None:
    # 10 parameters of 4 values: about a million cells, refused from the counts alone.
    matrix = {f"p{i}": [1, 2, 3, 4] for i in range(10)}
    assert count_cells(matrix) == 4**10
    with pytest.raises(
        ConfigurationError, match=r"1,048,576 cells .* more than max_cells = 10,000"
    ):
        Suite(name="big", component="function", target="m:f", matrix=matrix)
    small = {"a": [1, 2, 3], "b": [1, 2]}
    with pytest.raises(ConfigurationError, match="set max_cells"):
        Suite(name="s", component="function", target="m:f", matrix=small, max_cells=5)
    assert (
        len(Suite(name="s", component="function", target="m:f", matrix=small, max_cells=6).cells())
        == 6
    )
    assert count_cells({"a": [1, 2], "b": [3, 4], "c": [5]}, [["a", "b"]]) == 2


def test_max_cells_is_raised_from_the_command_line_loader(tmp_path: Path) -> None:
    path = tmp_path / "grid.toml"
    path.write_text(
        'name = "grid"\ncomponent = "python"\n[matrix]\nsize = [1, 2, 3]\nseed = [1, 2, 3]\n'
    )
    assert len(resolve_suite(str(path)).cells()) == 9
    with pytest.raises(ConfigurationError, match="more than max_cells = 4"):
        resolve_suite(str(path), max_cells=4)
    assert resolve_suite("python", max_cells=50).max_cells == 50


def test_duplicates_are_found_in_linear_time_and_nan_is_refused() -> None:
    values = list(range(8000))
    check_matrix({"n": values})  # distinct: accepted (a set, not pairwise comparisons)
    with pytest.raises(MatrixError, match="repeats the value 17"):
        check_matrix({"n": [*values, 17]})
    with pytest.raises(MatrixError, match=r"repeats the value 1\.0"):
        check_matrix({"n": [1, 1.0]})  # the same number
    check_matrix({"flag": [True, 1]})  # a boolean is not a number here
    lines = _error(EVOLUTION.replace("[50, 100]", "[nan, nan]"))
    assert lines[0].startswith("s.toml:8: matrix.population_size.0: ")
    assert "has the value nan" in lines[0]
    with pytest.raises(ConfigurationError, match="'generations' is nan"):
        Suite(name="s", component="function", target="m:f", params={"generations": float("nan")})


def test_run_settings_are_bounded() -> None:
    text = EVOLUTION.replace(
        'component = "evolution"',
        'component = "evolution"\nmin_time = inf\ntimeout = 1e308\nsamples = 1000000000000\n'
        "runs = 1000000000000",
    )
    lines = _error(text)
    assert [line.split(": ")[1] for line in lines] == ["min_time", "timeout", "samples", "runs"]
    assert "finite number" in lines[0] and "less than or equal to 604800" in lines[1]
    assert "less than or equal to 100000" in lines[2] and "1000" in lines[3]
    with pytest.raises(ConfigurationError, match=r"quick\.samples"):
        Suite(name="s", component="python", quick={"samples": 10**9})


def test_bench_run_rejects_a_bad_suite_before_starting_anything(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text(EVOLUTION.replace("generations = 2", "generatons = 2"))
    store = tmp_path / "never.db"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "allele",
            "bench",
            "run",
            str(path),
            "--store",
            f"sqlite:///{store}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert "did you mean 'generations'?" in done.stderr
    assert f"{path}:5: params.generatons" in done.stderr.replace("\n", "")
    assert not store.exists()  # nothing was stored: the run never started


def test_bench_run_names_the_target_it_imports(tmp_path: Path) -> None:
    (tmp_path / "fake_target_mod.py").write_text("def factory(**_):\n    return lambda: None\n")
    path = tmp_path / "f.toml"
    path.write_text(
        'name = "f"\ncomponent = "function"\ntarget = "fake_target_mod:factory"\nruns = 1\n'
        "samples = 1\nwarmup = 0\nmin_time = 0.0\nmax_inner_loops = 1\n[matrix]\nn = [1]\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "allele", "bench", "run", str(path), "--no-progress", "--store",
         f"sqlite:///{tmp_path / 'f.db'}"],
        capture_output=True, text=True, timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "importing benchmark target fake_target_mod:factory" in done.stdout
