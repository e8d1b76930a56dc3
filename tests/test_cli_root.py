"""The installed ``allele`` console script: ``--version`` and the command groups in ``--help``.

These run the real entry point (``.venv/bin/allele``, next to the interpreter running the
tests) in a subprocess, so a broken ``[project.scripts]`` entry or an import error at start-up
fails here even when the in-process typer app works.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import allele

SCRIPT = Path(sys.executable).parent / "allele"
GROUPS = (
    "demo",
    "chat",
    "bench",
    "monitor",
    "metrics",
    "alerts",
    "serve-metrics",
    "mlflow",
    "registry",
)


def _allele(*args: str) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.is_file(), f"console script {SCRIPT} is missing: pip install -e '.[dev]'"
    # A wide, colourless terminal, so rich neither wraps nor truncates the command names.
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def _commands(help_text: str) -> list[str]:
    """Command names listed in the ``Commands`` panel of ``--help``, in order."""
    panel = help_text.split("Commands", 1)[1]
    return re.findall(r"^[│|]\s+([a-z][a-z-]*)\s", panel, flags=re.MULTILINE)


def test_version_prints_the_package_version() -> None:
    completed = _allele("--version")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == f"allele {allele.__version__}"
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", allele.__version__)


def test_help_lists_the_command_groups() -> None:
    completed = _allele("--help")
    assert completed.returncode == 0, completed.stderr
    assert "--version" in completed.stdout
    commands = _commands(completed.stdout)
    missing = [g for g in GROUPS if g not in commands]
    assert not missing, f"--help lacks {missing}; it lists {commands}"


def test_no_arguments_shows_help_and_unknown_command_fails() -> None:
    bare = _allele()
    assert "Usage: allele" in bare.stdout + bare.stderr
    unknown = _allele("no-such-command")
    assert unknown.returncode != 0
    assert "no-such-command" in unknown.stderr
