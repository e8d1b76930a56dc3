"""``allele mlflow ...`` and ``allele registry ...``: suite runs in MLflow, registered models.

``allele mlflow log SUITE_ID`` logs a stored suite run (cells as child runs, reports and raw
samples as artifacts); ``sync`` sends what the spool holds; ``status`` says where tracking goes
and what waits; ``prune`` deletes Allele's runs older than the retention
(``ALLELE_MLFLOW_ARTIFACT_RETENTION_DAYS``).
``allele registry list | promote | compare`` work on registered models (genomes, components).

Exit codes: 0 done; 1 not done (something is still spooled, a promotion was refused); 2 bad
input (unknown suite id, version or alias; MLflow not installed).
"""

from __future__ import annotations

from typing import Any

import typer

from allele.cli import app

mlflow_app = typer.Typer(
    help="Benchmark suites in MLflow: log stored runs, send the spool.", no_args_is_help=True
)
registry_app = typer.Typer(
    help="Registered models in MLflow: list versions, promote, compare.", no_args_is_help=True
)
app.add_typer(mlflow_app, name="mlflow")
app.add_typer(registry_app, name="registry")

_STORE = typer.Option(
    None, "--store", envvar="ALLELE_STORE_URI", help="Store URI (default sqlite:///allele.db)."
)
_TRACKING = typer.Option(
    None,
    "--tracking-uri",
    help="MLflow tracking URI (default $ALLELE_MLFLOW_TRACKING_URI or sqlite:///mlflow.db).",
)


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _fail(message: str, code: int = 2) -> typer.Exit:
    _console(stderr=True).print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _config(tracking_uri: str | None) -> Any:
    from allele.observability.mlflow_integration.config import mlflow_config

    return mlflow_config(tracking_uri=tracking_uri) if tracking_uri else mlflow_config()


def _quiet_mlflow() -> None:
    import os

    # MLflow prints a "View run" link for every run it ends: a thousand for a large suite.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


@mlflow_app.command("log")
def log_command(
    suite_id: str = typer.Argument(..., help="A stored run (see `allele bench list`)."),
    baseline: str | None = typer.Option(
        None, "--baseline", help="Named baseline to compare with (default: the previous run)."
    ),
    store: str | None = _STORE,
    tracking_uri: str | None = _TRACKING,
) -> None:
    """Log a stored suite run to MLflow: a run, a child run per cell, reports as artifacts."""
    from allele.errors import AlleleError
    from allele.observability.benchmarking.experiment_logger import ExperimentLogger
    from allele.observability.benchmarking.experiment_tracking import log_stored_run
    from allele.observability.store import open_store

    _quiet_mlflow()
    try:
        config = _config(tracking_uri)
        logger = ExperimentLogger(config)
        run, result = log_stored_run(
            open_store(store), suite_id, experiment_logger=logger, baseline=baseline
        )
    except AlleleError as exc:
        raise _fail(str(exc)) from exc
    console = _console()
    console.print(
        f"suite [bold]{run.name}[/bold] run {run.suite_id}: {len(run.cells)} cells, "
        f"{result.sent} operations sent to {config.tracking_uri}"
    )
    run_id = logger.run_id(f"suite:{run.suite_id}")
    if run_id:
        console.print(f"MLflow run {run_id} in experiment {config.experiment_prefix}{run.name}")
    if result.rejected:
        console.print(f"[red]{result.rejected} operations refused by MLflow[/red] (see the spool)")
    if result.spooled:
        raise _fail(
            f"MLflow unreachable: {result.spooled} operations spooled in {config.spool_dir}; "
            "send them with `allele mlflow sync`",
            code=1,
        )


@mlflow_app.command("sync")
def sync_command(tracking_uri: str | None = _TRACKING) -> None:
    """Send what could not be sent to MLflow before (the spool), once, in order."""
    from allele.errors import AlleleError
    from allele.observability.benchmarking.experiment_logger import ExperimentLogger

    _quiet_mlflow()
    try:
        config = _config(tracking_uri)
        result = ExperimentLogger(config).sync()
    except AlleleError as exc:
        raise _fail(str(exc)) from exc
    _console().print(
        f"sent {result.sent} operations to {config.tracking_uri}; {result.rejected} refused, "
        f"{result.pending} still waiting in {config.spool_dir}"
    )
    if result.pending:
        raise typer.Exit(1)


@mlflow_app.command("status")
def status_command(tracking_uri: str | None = _TRACKING) -> None:
    """Where tracking goes, whether it is on, and what waits in the spool."""
    from allele.observability.mlflow_integration.spool import Spool

    config = _config(tracking_uri)
    waiting = Spool(config.spool_dir).pending()
    console = _console()
    console.print(f"tracking URI   {config.tracking_uri}")
    console.print(f"registry URI   {config.model_registry_uri}")
    console.print(
        f"tracking       {'on' if config.enabled else 'off'} (ALLELE_MLFLOW_ENABLED), "
        f"automatic {'on' if config.auto_experiment_tracking else 'off'}"
    )
    console.print(f"experiments    {config.experiment_prefix}<suite name>")
    console.print(f"spool          {config.spool_dir}: {waiting} operations waiting")


@mlflow_app.command("prune")
def prune_command(
    days: int | None = typer.Option(
        None, "--days", min=1, help="Age limit (default $ALLELE_MLFLOW_ARTIFACT_RETENTION_DAYS)."
    ),
    tracking_uri: str | None = _TRACKING,
) -> None:
    """Delete Allele's suite runs older than the retention (MLflow's `gc` frees the artifacts)."""
    from allele.errors import AlleleError
    from allele.observability.benchmarking.experiment_tracking import prune_runs

    try:
        config = _config(tracking_uri)
        deleted = prune_runs(config, days or config.artifact_retention_days)
    except AlleleError as exc:
        raise _fail(str(exc)) from exc
    _console().print(
        f"deleted {deleted} runs older than {days or config.artifact_retention_days} days"
    )


@registry_app.command("list")
def list_command(
    name: str = typer.Argument(..., help="Registered model name, e.g. allele-genomes."),
    tracking_uri: str | None = _TRACKING,
) -> None:
    """The versions of a registered model with their aliases, kind and suite."""
    from rich.table import Table

    from allele.errors import AlleleError
    from allele.observability.benchmarking.model_registry import ModelRegistry

    try:
        registry = ModelRegistry(_config(tracking_uri))
        aliases = registry.aliases(name)
        versions = registry.client.search_model_versions(f"name = '{name}'")
    except AlleleError as exc:
        raise _fail(str(exc)) from exc
    marks: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        marks.setdefault(version, []).append(alias)
    table = Table(title=name, title_justify="left")
    for column in ("version", "aliases", "kind", "suite id", "fitness", "description"):
        table.add_column(column)
    for v in sorted(versions, key=lambda v: int(v.version)):
        table.add_row(
            str(v.version),
            ", ".join(sorted(marks.get(str(v.version), []))),
            v.tags.get("allele.kind", ""),
            v.tags.get("allele.suite_id", ""),
            v.tags.get("allele.fitness", ""),
            v.description or "",
        )
    _console().print(table)


@registry_app.command("promote")
def promote_command(
    name: str = typer.Argument(..., help="Registered model name."),
    version: str = typer.Argument(..., help="The version to promote."),
    to: str = typer.Option("champion", "--to", help="Alias: champion or challenger."),
    force: bool = typer.Option(False, "--force", help="Promote without the comparison."),
    metric: str = typer.Option("time_s", "--metric", help="Sample metric the suites compare."),
    higher_is_better: bool = typer.Option(
        False, "--higher-is-better", help="For throughputs and fitness (timings: lower)."
    ),
    store: str | None = _STORE,
    tracking_uri: str | None = _TRACKING,
) -> None:
    """Point an alias at a version; champion only if significantly better than the current one."""
    from allele.errors import AlleleError
    from allele.observability.benchmarking.model_registry import ModelRegistry
    from allele.observability.store import open_store

    try:
        registry = ModelRegistry(_config(tracking_uri))
        result = registry.promote(
            name,
            version,
            to=to,
            store=open_store(store),
            metric=metric,
            higher_is_better=higher_is_better,
            force=force,
        )
    except AlleleError as exc:
        raise _fail(str(exc)) from exc
    console = _console()
    if not result.promoted:
        console.print(f"[yellow]not promoted[/yellow]: {result.reason}")
        raise typer.Exit(1)
    was = f" (was v{result.previous})" if result.previous else ""
    console.print(f"{name} v{result.version} is now [bold]{to}[/bold]{was}: {result.reason}")


@registry_app.command("compare")
def compare_command(
    name: str = typer.Argument(..., help="Registered model name."),
    first: str = typer.Argument(..., help="A version or alias (the reference)."),
    second: str = typer.Argument(..., help="A version or alias (compared with the first)."),
    metric: str = typer.Option("time_s", "--metric", help="Sample metric the suites compare."),
    higher_is_better: bool = typer.Option(False, "--higher-is-better"),
    store: str | None = _STORE,
    tracking_uri: str | None = _TRACKING,
) -> None:
    """Two versions side by side: tags that differ, and the benchmark comparison of their suites."""
    from rich.table import Table

    from allele.errors import AlleleError
    from allele.observability.benchmarking.model_registry import ModelRegistry
    from allele.observability.store import open_store

    try:
        registry = ModelRegistry(_config(tracking_uri))
        result = registry.compare(
            name,
            first,
            second,
            store=open_store(store),
            metric=metric,
            higher_is_better=higher_is_better,
        )
    except AlleleError as exc:
        raise _fail(str(exc)) from exc
    console = _console()
    a, b = result.first.version, result.second.version
    table = Table(title=f"{name}: v{a} vs v{b}", title_justify="left")
    for column in ("tag", f"v{a}", f"v{b}"):
        table.add_column(column)
    for key, (left, right) in result.differences.items():
        table.add_row(key, left or "", right or "")
    console.print(table)
    if result.comparison is None:
        console.print(f"no benchmark comparison: {result.note}")
        return
    from allele.observability.benchmarking.report.terminal import render_comparison

    console.print(render_comparison(result.comparison))
