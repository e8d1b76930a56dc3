"""Lazy package namespaces: names listed once, their modules imported on first use.

A package's ``__init__`` names what it offers and where each lives, and stays cheap to
import (``import allele`` must not load numpy-heavy modules, torch or FastAPI)::

    __getattr__, __dir__, __all__ = lazy_namespace(__name__, globals(), {"Name": "pkg.mod"})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_namespace(
    package: str, namespace: dict[str, Any], names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """The ``__getattr__``, ``__dir__`` and ``__all__`` of ``package`` for ``names``
    (attribute -> module); a loaded attribute is cached in ``namespace``."""
    table = dict(names)

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(table)

    return __getattr__, __dir__, list(table)
