"""The CLI refuses bad ALLELE_* values and prints messages exactly, markup characters and all."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from allele.cli import app


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("ALLELE_COLLECTION_INTERVAL", "abc", "ALLELE_COLLECTION_INTERVAL must be a number"),
        ("ALLELE_FLUSH_INTERVAL", "1e-300", "[0.01, 3600], got '1e-300'"),
        ("ALLELE_BENCHMARK_RUNS", "zero", "ALLELE_BENCHMARK_RUNS"),
    ],
)
def test_a_bad_environment_value_stops_every_command_with_its_name(
    tmp_path, monkeypatch, variable, value, fragment
):
    monkeypatch.setenv(variable, value)
    uri = f"sqlite:///{tmp_path / 'x.db'}"
    for args in (["monitor", "--once", "--store", uri], ["bench", "list", "--store", uri]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "bad environment" in result.output
        assert fragment in result.output.replace("\n", "")


def test_a_store_uri_password_never_reaches_the_error(monkeypatch):
    monkeypatch.setenv("ALLELE_STORE_URI", "postgresql://ana:hunter2@db:notaport/x")
    result = CliRunner().invoke(app, ["monitor", "--once"])
    assert result.exit_code == 1
    assert "hunter2" not in result.output
    assert "ana:***@db" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["monitor", "--once", "--store"],
        ["bench", "list", "--store"],
        ["bench", "report", "x", "--store"],
        ["demo", "--store"],
    ],
)
def test_install_hints_keep_their_brackets(args, monkeypatch):
    # No driver named "nosuchdriver": the error carries the install hint with [postgres].
    result = CliRunner().invoke(app, [*args, "postgresql+nosuchdriver://u@127.0.0.1:1/db"])
    assert result.exit_code != 0
    assert "allele[postgres]" in result.output.replace("\n", ""), result.output
