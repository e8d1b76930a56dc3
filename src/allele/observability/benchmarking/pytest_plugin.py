"""pytest plugin of Allele's benchmarking (registered through the ``pytest11`` entry point).

The ``allele_bench`` fixture measures a callable with the benchmark runner's measurement core
(``measure.measure_calls``: calls per round calibrated, rounds of about 0.1 ms, each sample the
median round of ``--allele-bench-min-time``), one cell per test::

    @pytest.mark.parametrize("population", [50, 100])
    def test_evolve(allele_bench, population):
        engine = make_engine(population)
        allele_bench(engine.step)                      # calibrated, repeated samples
        # or: allele_bench.pedantic(engine.step, rounds=10, iterations=5, setup=reset)

The cell's parameters are the test's node id (without the ``[...]`` suffix) as ``benchmark`` plus
the test's parametrize values. At the end of the session the cells form one ``SuiteRun``,
written as JSON (``--allele-bench-json PATH``, the ``SuiteRun.to_dict`` layout; compare two with
``allele bench compare a.json b.json``) and/or saved to a store (``--allele-bench-store URI``).

The plugin is loaded by every pytest run, so it imports nothing heavy at import time and does
nothing unless the fixture is used.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

_SUFFIX = re.compile(r"\[[^\[\]]*\]$")
_RESULTS = pytest.StashKey[list[Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("allele-bench", "Allele benchmarks (the allele_bench fixture)")
    group.addoption(
        "--allele-bench-json",
        metavar="PATH",
        default=None,
        help="write the allele_bench results of this session as a SuiteRun JSON file",
    )
    group.addoption(
        "--allele-bench-store",
        metavar="URI",
        default=None,
        help="save the allele_bench results of this session to this store (e.g. sqlite:///a.db)",
    )
    group.addoption(
        "--allele-bench-name",
        metavar="NAME",
        default="pytest",
        help="suite name of the saved results (default: pytest)",
    )
    group.addoption(
        "--allele-bench-samples",
        type=int,
        default=20,
        metavar="N",
        help="samples per benchmark (default: 20)",
    )
    group.addoption(
        "--allele-bench-min-time",
        type=float,
        default=0.005,
        metavar="SECONDS",
        help="minimum duration of one sample; the inner loop is calibrated to it (default: 0.005)",
    )
    group.addoption(
        "--allele-bench-warmup",
        type=int,
        default=1,
        metavar="N",
        help="warm-up samples discarded before measuring (default: 1)",
    )
    group.addoption(
        "--allele-bench-max-inner-loops",
        type=int,
        default=1_000_000,
        metavar="N",
        help="upper bound of the calibrated inner loop (default: 1000000)",
    )


class BenchFixture:
    """Measures one callable per test and records it as a cell of the session's run."""

    def __init__(self, params: dict[str, Any], options: dict[str, Any], sink: list[Any]) -> None:
        self.params = params
        self.options = options
        self._sink = sink
        self._used = False
        self.cell: Any = None  # the CellResult once measured

    def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Measure ``fn(*args, **kwargs)`` with a calibrated inner loop; return its result."""
        from allele.observability.benchmarking import measure

        self._claim()
        target = functools.partial(fn, *args, **kwargs) if args or kwargs else fn
        started = datetime.now(UTC)
        try:
            result = target()  # the caller's value, and a first warm call
            # The worker's protocol: short rounds, median per sample (robust to preemption).
            timing = measure.measure_calls(
                target,
                min_time=self.options["min_time"],
                max_inner_loops=self.options["max_inner_loops"],
                samples=self.options["samples"],
                warmup=self.options["warmup"],
            )
            wall, cpu, loops = timing.wall, timing.cpu, timing.loops
        except BaseException as exc:
            self._record(started, error=exc)
            raise
        self._record(started, wall=wall, cpu=cpu, loops=loops)
        return result

    def pedantic(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        setup: Callable[[], Any] | None = None,
        rounds: int = 1,
        iterations: int = 1,
        warmup_rounds: int = 0,
    ) -> Any:
        """Measure exactly ``rounds`` samples of ``iterations`` calls each; return the last result.

        ``setup``, when given, runs before every round outside the timed window; if it returns
        ``(args, kwargs)`` those are the call's arguments (then ``iterations`` must be 1, since
        the state it prepares is consumed by one call).
        """
        from allele.errors import ValidationError

        if rounds < 1 or iterations < 1 or warmup_rounds < 0:
            raise ValidationError(
                f"rounds and iterations must be >= 1 and warmup_rounds >= 0, got rounds={rounds}, "
                f"iterations={iterations}, warmup_rounds={warmup_rounds}"
            )
        if setup is not None and iterations > 1:
            raise ValidationError(f"with setup, iterations must be 1, got {iterations}")
        self._claim()
        started = datetime.now(UTC)
        wall: list[float] = []
        cpu: list[float] = []
        result = None
        try:
            for index in range(warmup_rounds + rounds):
                call_args, call_kwargs = args, kwargs or {}
                if setup is not None:
                    prepared = setup()
                    if prepared is not None:
                        call_args, call_kwargs = prepared
                result, w, c = _timed(fn, call_args, call_kwargs, iterations)
                if index >= warmup_rounds:
                    wall.append(w / iterations)
                    cpu.append(c / iterations)
        except BaseException as exc:
            self._record(started, error=exc)
            raise
        self._record(started, wall=wall, cpu=cpu, loops=iterations)
        return result

    def _claim(self) -> None:
        from allele.errors import BenchmarkError

        if self._used:
            raise BenchmarkError(
                f"allele_bench measured {self.params.get('benchmark')!r} already; "
                "use it once per test (parametrize the test for more cells)"
            )
        self._used = True

    def _record(
        self,
        started: datetime,
        *,
        wall: list[float] | None = None,
        cpu: list[float] | None = None,
        loops: int = 1,
        error: BaseException | None = None,
    ) -> None:
        from allele.observability.benchmarking.measure import latency_metrics
        from allele.observability.benchmarking.model import PRIMARY_METRIC, CellResult

        if error is not None:
            cell = CellResult(
                params=self.params,
                status="error",
                error=f"{type(error).__name__}: {error}",
                started_at=started,
                finished_at=datetime.now(UTC),
            )
        else:
            assert wall is not None and cpu is not None
            cell = CellResult(
                params=self.params,
                samples={PRIMARY_METRIC: wall, "cpu_time_s": cpu},
                metrics=latency_metrics(wall),
                inner_loops=loops,
                started_at=started,
                finished_at=datetime.now(UTC),
            )
        self.cell = cell
        self._sink.append(cell)


def _timed(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], iterations: int
) -> tuple[Any, float, float]:
    """The last result, wall seconds and CPU seconds of ``iterations`` calls of ``fn``."""
    perf_counter = time.perf_counter
    result = None
    c0 = time.process_time()
    t0 = perf_counter()
    for _ in range(iterations):
        result = fn(*args, **kwargs)
    t1 = perf_counter()
    c1 = time.process_time()
    return result, t1 - t0, c1 - c0


@pytest.fixture
def allele_bench(request: pytest.FixtureRequest) -> BenchFixture:
    """Measure a callable as one benchmark cell: ``allele_bench(fn, *args)`` or ``.pedantic``."""
    from allele.errors import ValidationError

    config = request.config
    options = {
        "samples": config.getoption("allele_bench_samples"),
        "min_time": config.getoption("allele_bench_min_time"),
        "warmup": config.getoption("allele_bench_warmup"),
        "max_inner_loops": config.getoption("allele_bench_max_inner_loops"),
    }
    if options["samples"] < 1 or options["warmup"] < 0 or options["max_inner_loops"] < 1:
        raise ValidationError(
            "--allele-bench-samples and --allele-bench-max-inner-loops must be >= 1 and "
            f"--allele-bench-warmup >= 0, got {options}"
        )
    if not (options["min_time"] > 0 and math.isfinite(options["min_time"])):
        raise ValidationError(
            f"--allele-bench-min-time must be a positive number, got {options['min_time']}"
        )
    sink = config.stash.setdefault(_RESULTS, [])
    return BenchFixture(_cell_params(request.node), options, sink)


def _cell_params(node: Any) -> dict[str, Any]:
    callspec = getattr(node, "callspec", None)
    params: dict[str, Any] = {"benchmark": _SUFFIX.sub("", node.nodeid)}
    if callspec is not None:
        for name, value in callspec.params.items():
            params[name] = value if _is_json_scalar(value) else repr(value)
    return params


def _is_json_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int | bool)


def pytest_sessionfinish(session: pytest.Session) -> None:
    cells = session.config.stash.get(_RESULTS, None)
    if not cells:
        return
    config = session.config
    json_path = config.getoption("allele_bench_json")
    store_uri = config.getoption("allele_bench_store")
    if not json_path and not store_uri:
        return
    run = _session_run(config, cells)
    try:
        if json_path:
            path = Path(json_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(run.to_dict(), indent=2), encoding="utf-8")
        if store_uri:
            from allele.observability.benchmarking.storage import save_run

            save_run(store_uri, run)
    except Exception as exc:  # a report, not a traceback through pytest's internals
        sys.stderr.write(f"allele_bench: could not save the results: {exc}\n")
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _session_run(config: pytest.Config, cells: list[Any]) -> Any:
    from allele.observability.benchmarking.machine import commit_info, machine_info
    from allele.observability.benchmarking.model import SuiteRun

    return SuiteRun(
        name=config.getoption("allele_bench_name"),
        component="pytest",
        config={
            "source": "pytest",
            "samples": config.getoption("allele_bench_samples"),
            "min_time": config.getoption("allele_bench_min_time"),
            "warmup": config.getoption("allele_bench_warmup"),
        },
        machine=machine_info(),
        commit=commit_info(config.rootpath),
        cells=list(cells),
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    cells = terminalreporter.config.stash.get(_RESULTS, None)
    if not cells:
        return
    from allele.observability.benchmarking.report.summary import format_value
    from allele.observability.benchmarking.stats import describe

    terminalreporter.write_sep("-", f"allele_bench: {len(cells)} benchmarks")
    for cell in cells:
        samples = cell.samples.get("time_s")
        if cell.status != "ok" or not samples:
            terminalreporter.write_line(f"{cell.key}: {cell.status} {cell.error or ''}")
            continue
        s = describe(samples)
        low, high = (format_value(v, "time_s") for v in s.median_ci)
        terminalreporter.write_line(
            f"{cell.key}: median {format_value(s.median, 'time_s')} "
            f"[{low} - {high}], n={s.n}, inner loops={cell.inner_loops}"
        )
