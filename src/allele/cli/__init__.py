"""The ``allele`` command line: thin wrappers that parse, call the library and render.

Each command group lives in its own module and registers itself on ``app``; heavy imports stay
inside the command functions so that ``allele --help`` is fast.
"""

from __future__ import annotations

import typer

from allele import __version__

app = typer.Typer(
    name="allele",
    help="Benchmark and observe AI-agent components.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# ``allele bench ...`` gathers commands from two modules (running, and analysing), so its
# sub-application lives here where both can reach it.
bench_app = typer.Typer(
    help="Matrix benchmarks: run, compare, check, report.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")

# ``allele analytics ...`` gathers anomaly detection (nab, detect) and forecasting (forecast),
# each in its own module, so its sub-application lives here too.
analytics_app = typer.Typer(
    help="Anomaly detection and forecasting on stored series; the NAB harness.",
    no_args_is_help=True,
)
app.add_typer(analytics_app, name="analytics")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"allele {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Benchmark and observe AI-agent components."""
    from allele.cli.output import check_environment

    check_environment()


def _register() -> None:
    # Each module adds its commands to ``app``; the order here is the order in --help.
    for name in (
        "demo",
        "chat",
        "bench",
        "bench_report",
        "bench_optimize",
        "monitor",
        "metrics",
        "alerts",
        "serve",
        "dashboard",
        "analytics",
        "analytics_forecast",
        "mlflow",
    ):
        try:
            __import__(f"allele.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"allele.cli.{name}":
                raise


_register()


def main() -> None:
    """Entry point of the ``allele`` console script."""
    app()
