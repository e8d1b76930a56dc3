"""Where and on what code a suite ran: machine and commit information (pytest-benchmark's fields).

``machine_info()`` has node, processor, machine, python_compiler, python_implementation,
python_implementation_version, python_version, python_build, release, system and cpu {...};
``commit_info()`` has id, time, author_time, dirty, project, branch (or ``error`` outside git);
``code_commit_info()`` adds ``path``, the checkout it describes.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any


def machine_info() -> dict[str, Any]:
    """This machine and interpreter, as pytest-benchmark records them."""
    version = sys.implementation.version
    implementation_version = f"{version.major}.{version.minor}.{version.micro}"
    if version.releaselevel != "final":
        implementation_version += f"{version.releaselevel[0]}{version.serial}"
    return {
        "node": platform.node(),
        "processor": platform.processor(),
        "machine": platform.machine(),
        "python_compiler": platform.python_compiler(),
        "python_implementation": platform.python_implementation(),
        "python_implementation_version": implementation_version,
        "python_version": platform.python_version(),
        "python_build": list(platform.python_build()),
        "release": platform.release(),
        "system": platform.system(),
        "cpu": cpu_info(),
        # How busy the machine already was (1-minute load average; see caveats).
        "load_average": load_average(),
    }


def load_average() -> float | None:
    """The 1-minute load average, or None where the system has none (Windows)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def cpu_info() -> dict[str, Any]:
    """CPU brand, architecture, logical and physical core counts and frequency when known."""
    import psutil

    info: dict[str, Any] = {
        "arch": platform.machine(),
        "bits": 64 if platform.architecture()[0] == "64bit" else 32,
        "count": os.cpu_count() or 0,
        "physical_count": psutil.cpu_count(logical=False) or 0,
        "brand_raw": _cpu_brand(),
    }
    try:
        frequency = psutil.cpu_freq()
    except (OSError, NotImplementedError):  # not exposed in some containers
        frequency = None
    if frequency is not None:
        info["hz_actual_mhz"] = float(frequency.current)
        info["hz_max_mhz"] = float(frequency.max)
    return info


def _cpu_brand() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def commit_info(path: str | Path | None = None) -> dict[str, Any]:
    """The git commit of ``path`` (default: the working directory), or ``{"error": ...}``."""
    folder = str(path or Path.cwd())

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        commit_id = git("rev-parse", "HEAD")
        commit_time, author_time = git("log", "-1", "--format=%cI%n%aI").splitlines()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        top = git("rev-parse", "--show-toplevel")
        branch = git("rev-parse", "--abbrev-ref", "HEAD")
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return {"error": f"no git commit information for {folder}: {exc}"}
    return {
        "id": commit_id,
        "time": commit_time,
        "author_time": author_time,
        "dirty": dirty,
        "project": Path(top).name,
        "branch": "(detached head)" if branch == "HEAD" else branch,
    }


def code_commit_info() -> dict[str, Any]:
    """The commit of the code under test: the working directory's checkout, else Allele's own.

    Run from a project's checkout, that project's commit (as pytest-benchmark records it); run
    from elsewhere (``allele demo`` in an empty folder), the commit of the Allele checkout the
    package is installed from, since the built-in suites measure Allele itself. ``path`` names
    the checkout; outside any checkout the result is ``{"error": ...}``.
    """
    info = commit_info()
    if "error" not in info:
        return {**info, "path": str(Path.cwd())}
    import allele

    package = Path(allele.__file__).resolve().parent
    own = commit_info(package)
    return {**own, "path": str(package)} if "error" not in own else info
