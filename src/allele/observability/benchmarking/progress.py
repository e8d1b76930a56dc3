"""Progress of a suite run: a rich progress bar with ETA, or nothing (tests, pipes)."""

from __future__ import annotations

from typing import Any, Protocol

from allele.observability.benchmarking.executors.base import JobResult


class Progress(Protocol):
    """What the runner reports: the job count up front, then each finished job."""

    def start(self, suite: str, total_jobs: int, done_jobs: int) -> None: ...

    def advance(self, result: JobResult, cell_key: str) -> None: ...

    def stop(self) -> None: ...


class SilentProgress:
    """Reports nothing."""

    def start(self, suite: str, total_jobs: int, done_jobs: int) -> None:
        return None

    def advance(self, result: JobResult, cell_key: str) -> None:
        return None

    def stop(self) -> None:
        return None


class RichProgress:
    """A rich progress bar over the suite's jobs (cell x process run) with elapsed time and ETA.

    Timeouts and errors are printed above the bar as they happen.
    """

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self._progress: Any = None
        self._task: Any = None

    def start(self, suite: str, total_jobs: int, done_jobs: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichBar

        self._progress = RichBar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(suite, total=total_jobs, completed=done_jobs)

    def advance(self, result: JobResult, cell_key: str) -> None:
        if self._progress is None:
            return
        if result.status in ("timeout", "error"):
            first_line = (result.error or "").strip().splitlines()[-1:] or [""]
            self._progress.console.print(
                f"[red]{result.status}[/red] {cell_key} (run {result.run_index}): {first_line[0]}"
            )
        self._progress.advance(self._task)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
