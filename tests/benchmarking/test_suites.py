"""Suites from TOML and Python: validation, line numbers of errors, built-ins, quick variants."""

from __future__ import annotations

from pathlib import Path

import pytest

from allele.errors import ConfigurationError
from allele.observability.benchmarking.suites import (
    Suite,
    builtin_suite,
    builtin_suite_names,
    load_suite_file,
    load_suite_text,
    resolve_suite,
)

VALID = """\
name = "mine"
component = "function"
target = "my_benchmarks:factory"
samples = 4
zip = [["kernel", "size"]]

[params]
seed = 3

[matrix]
kernel = ["sort", "sum", "json"]
size = [10, 20, 30]
loops = [1, 2]

[[exclude]]
kernel = "json"
loops = 2
"""


def test_toml_suite_loads_and_expands(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(VALID)
    suite = load_suite_file(path)
    assert suite.name == "mine" and suite.samples == 4 and suite.params == {"seed": 3}
    assert suite.cells() == [
        {"kernel": "sort", "size": 10, "loops": 1},
        {"kernel": "sort", "size": 10, "loops": 2},
        {"kernel": "sum", "size": 20, "loops": 1},
        {"kernel": "sum", "size": 20, "loops": 2},
        {"kernel": "json", "size": 30, "loops": 1},
    ]
    assert suite.cell_params({"kernel": "sum", "size": 20, "loops": 1})["seed"] == 3


def _error(text: str) -> str:
    with pytest.raises(ConfigurationError) as info:
        load_suite_text(text, source="s.toml")
    return str(info.value)


def test_toml_syntax_error_names_the_line() -> None:
    message = _error('name = "x"\ncomponent = "python"\n[matrix]\nsize = [1, 2\nkernel = 3\n')
    # tomllib reports the unclosed array where it gives up: the next line.
    assert message.startswith("s.toml:5: invalid TOML: Unclosed array")


def test_toml_syntax_error_on_a_precise_line() -> None:
    message = _error('name = "x"\ncomponent = "python"\nruns = = 3\n')
    assert message.startswith("s.toml:3: invalid TOML")


def test_wrong_type_in_the_matrix_names_the_key_line() -> None:
    text = VALID.replace("size = [10, 20, 30]", 'size = "big"')
    message = _error(text)
    assert message.startswith("s.toml:12: ")
    assert "matrix.size" in message


def test_unknown_key_names_its_line_and_the_allowed_keys() -> None:
    text = VALID.replace("samples = 4", "samples = 4\nrepeat = 3")
    message = _error(text)
    assert message.startswith("s.toml:5: ")
    assert "repeat: unknown key" in message and "samples" in message


def test_out_of_range_value_names_its_line() -> None:
    message = _error(VALID.replace("samples = 4", "samples = 0"))
    assert message.startswith("s.toml:4: ") and "samples" in message


def test_zip_with_unknown_parameter_names_the_zip_line() -> None:
    message = _error(VALID.replace('zip = [["kernel", "size"]]', 'zip = [["kernel", "sizes"]]'))
    assert message.startswith("s.toml:5: ")
    assert "'sizes', which is not in the matrix" in message


def test_exclude_rule_error_names_the_line_inside_the_array_of_tables() -> None:
    message = _error(VALID.replace("loops = 2\n", "loop = 2\n"))
    assert message.startswith("s.toml:17: ")
    assert "'loop'" in message


def test_unknown_component_names_its_line() -> None:
    message = _error(VALID.replace('component = "function"', 'component = "quantum"'))
    assert message.startswith("s.toml:2: ") and "unknown component 'quantum'" in message


def test_missing_required_key_is_named() -> None:
    assert "name: Field required" in _error('component = "python"\n')


def test_unreadable_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read suite file"):
        load_suite_file(tmp_path / "absent.toml")


def test_python_api_validates_like_the_file() -> None:
    suite = Suite(name="api", component="python", matrix={"size": [1, 2]}, runs=2)
    assert suite.cells() == [{"size": 1}, {"size": 2}]
    with pytest.raises(ConfigurationError, match="runs"):
        Suite(name="api", component="python", runs=0)
    with pytest.raises(ConfigurationError, match="both fixed and in the matrix"):
        Suite(name="api", component="python", params={"size": 1}, matrix={"size": [1]})
    with pytest.raises(ConfigurationError, match="needs target"):
        Suite(name="api", component="function")


def test_builtin_suites_hold_the_design_documents_matrices() -> None:
    assert {"evolution", "kraken", "agent", "python"} <= set(builtin_suite_names())
    evolution = builtin_suite("evolution")
    assert evolution.matrix == {
        "population_size": [50, 100, 200, 500, 1000],
        "mutation_rate": [0.05, 0.1, 0.2, 0.3],
    }
    assert len(evolution.cells()) == 20
    kraken = builtin_suite("kraken")
    assert kraken.matrix == {"reservoir_size": [50, 100, 200, 500], "connectivity": [0.1, 0.2, 0.3]}
    agent = builtin_suite("agent")
    assert agent.matrix == {"temperature": [0.1, 0.3, 0.7, 1.0], "provider": ["synthetic"]}
    with pytest.raises(ConfigurationError, match="no built-in suite 'nope'"):
        builtin_suite("nope")


def test_quick_variant_applies_the_quick_table_under_its_own_name() -> None:
    quick = builtin_suite("evolution").quick_variant()
    assert quick.name == "evolution-quick"
    assert (quick.runs, quick.samples, quick.params["generations"]) == (5, 10, 5)
    assert len(quick.cells()) == 20
    python_quick = builtin_suite("python").quick_variant()
    assert python_quick.matrix["size"] == [100, 1000]


def test_resolve_suite_accepts_names_and_files(tmp_path: Path) -> None:
    assert resolve_suite("kraken").name == "kraken"
    path = tmp_path / "x.toml"
    path.write_text(VALID)
    assert resolve_suite(str(path)).name == "mine"
    with pytest.raises(ConfigurationError, match="neither a built-in suite"):
        resolve_suite("not-a-suite")


def test_fingerprint_changes_with_what_is_measured() -> None:
    a = Suite(name="f", component="python", matrix={"size": [1, 2]})
    b = Suite(name="f", component="python", matrix={"size": [1, 3]})
    assert (
        a.fingerprint()
        == Suite(name="f", component="python", matrix={"size": [1, 2]}).fingerprint()
    )
    assert a.fingerprint() != b.fingerprint()
