"""``allele.cmr`` is a workload: it imports nothing of ``allele.observability``, and
``import allele`` / ``import allele.cmr`` load no torch."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

CMR = Path(__file__).resolve().parents[2] / "src" / "allele" / "cmr"


def test_no_cmr_module_imports_observability() -> None:
    offenders = []
    for path in sorted(CMR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("allele.observ")]
    assert offenders == []


def _modules(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_whole_cmr_package_loads_without_observability() -> None:
    modules = _modules(
        "import allele.cmr.model, allele.cmr.monitor, allele.cmr.tasks, "
        "allele.cmr.cmr_full_integrated, allele.cmr.cmr_performance_monitor"
    )
    assert not [m for m in modules if m.startswith("allele.observability")]


def test_importing_the_namespace_loads_no_torch() -> None:
    modules = _modules("import allele, allele.cmr\nfrom allele.cmr import CMRConfig")
    assert "torch" not in modules
