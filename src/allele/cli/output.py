"""What every command prints on failure, and the one escape for text that is not markup.

Rich reads ``[...]`` as markup, so a message holding ``pip install 'allele[postgres]'`` loses
its ``[postgres]`` unless escaped: every message built from data goes through ``escape``.
"""

from __future__ import annotations

from typing import Any

import typer


def escape(text: object) -> str:
    """``text`` with Rich markup characters escaped, so it prints exactly as it is."""
    from rich.markup import escape as rich_escape

    return rich_escape(str(text))


def print_error(message: object, console: Any = None) -> None:
    """Print ``error: <message>`` in red on stderr, the message exactly as given."""
    if console is None:
        from rich.console import Console

        console = Console(stderr=True, soft_wrap=True)
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False)


def fail(message: object, code: int = 2) -> typer.Exit:
    """Print the error and return the ``typer.Exit`` to raise."""
    print_error(message)
    return typer.Exit(code)


def check_environment() -> None:
    """Refuse to run with a bad ``ALLELE_*`` value: the settings are read now, not when first
    needed (a command that never needs a bad value would otherwise run as if it were unset)."""
    from allele.errors import ConfigurationError
    from allele.observability.benchmarking.config import get_matrix_benchmark_settings
    from allele.observability.config import ObservabilitySettings

    try:
        ObservabilitySettings()
        get_matrix_benchmark_settings()
    except ConfigurationError as exc:
        raise fail(f"bad environment: {exc}") from None
