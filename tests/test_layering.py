"""The layers' imports point one way: workloads know nothing of observability, and the
observability core knows nothing of what is built on it.

Every import statement counts, at module level or inside a function (a lazy import is still a
dependency), read from the source with ``ast``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import allele

PACKAGE = Path(allele.__file__).parent

#: The monitored workloads: they must run with no observability at all.
WORKLOADS = ("genome", "evolution", "kraken", "agent", "cmr", "fitness")
#: What is built on the core (the core may never import them).
ABOVE_THE_CORE = (
    "allele.observability.integration",
    "allele.observability.export",
    "allele.observability.benchmarking",
    "allele.observability.ml_analytics",
    "allele.observability.mlflow_integration",
    "allele.observability.dashboard",
    "allele.cli",
)


def _modules(*parts: str) -> list[Path]:
    found = []
    for part in parts:
        base = PACKAGE.joinpath(*part.split("/"))
        if base.with_suffix(".py").is_file():
            found.append(base.with_suffix(".py"))
        if base.is_dir():
            found.extend(sorted(base.rglob("*.py")))
    return found


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _core_modules() -> list[Path]:
    observability = PACKAGE / "observability"
    above = {p.removeprefix("allele.observability.") for p in ABOVE_THE_CORE}
    return [
        path
        for path in sorted(observability.rglob("*.py"))
        if path.relative_to(observability).parts[0].removesuffix(".py") not in above
    ]


@pytest.mark.parametrize("path", _modules(*WORKLOADS), ids=_module_name)
def test_workloads_import_nothing_of_observability(path: Path) -> None:
    bad = sorted(n for n in _imports(path) if _within(n, "allele.observability"))
    assert bad == [], f"{_module_name(path)} imports {bad}"


@pytest.mark.parametrize("path", _core_modules(), ids=_module_name)
def test_the_core_imports_nothing_built_on_it(path: Path) -> None:
    bad = sorted(n for n in _imports(path) if any(_within(n, p) for p in ABOVE_THE_CORE))
    assert bad == [], f"{_module_name(path)} imports {bad}"


def test_the_layering_test_sees_the_modules_it_guards() -> None:
    names = {_module_name(p) for p in _core_modules()}
    assert {"allele.observability.engine", "allele.observability.collector.fold"} <= names
    assert not any(_within(n, "allele.observability.integration") for n in names)
    workloads = {_module_name(p) for p in _modules(*WORKLOADS)}
    assert {"allele.evolution", "allele.kraken", "allele.agent.agent"} <= workloads
    # The check itself can fail: the integration package does import the core and workloads.
    integration = _imports(PACKAGE / "observability" / "integration" / "evolution.py")
    assert "allele.evolution" in integration and "allele.observability.engine" in integration
