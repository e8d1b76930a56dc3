"""MLflow tracking and registry speed, beside MLflow's fluent API used the plain way.

A local ``mlflow server`` (SQLite backend, proxied artifacts, ``--server-workers`` workers: 2 by
default, one per core of the machine, 127.0.0.1) is started for the run. Four measurements,
each printed as ``RATIO`` lines of medians:

1. **A finished suite**: ours, ``log_suite_run`` (a run, a child run per cell with its
   parameters, statistics, figures and tags, reports and raw samples as artifacts) for a
   ``--cells``-cell suite (1000 by default), measured whole, three ways: to the server with its
   database reachable from here (``ALLELE_MLFLOW_BACKEND_STORE_URI``: the finished cells are
   written in one transaction, the rest goes through the server), to a plain ``sqlite:///``
   tracking URI, and to the server's REST API alone (with where the time goes: the requests,
   the server's CPU per request, the floor they make). Every variant's runs are counted back
   through the tracking URI. The anchor, a parent ``mlflow.start_run`` and for every cell a
   nested ``start_run`` with ``log_params``, one ``log_metric`` per figure and ``set_tags``,
   then ``log_artifacts``, takes minutes for 1000 cells, so it is measured on ``--subset``
   cells and extrapolated linearly per cell (said so in its line); ours is measured on the
   same subset too, for a like-for-like ratio.
2. **Tracking during a suite**: a real suite (the built-in ``python`` component) run with and
   without a ``SuiteTracker`` in interleaved pairs (alternating which runs first); the cost to
   the benchmark is the time the runner's thread spends
   inside the tracker's calls (the sending happens on the logger's thread, the measuring in
   worker processes), as a share of the suite's wall time; the end-to-end wall-time ratio of
   tracked and untracked pairs is printed beside it (noisy on a loaded machine).
3. **Register a genome version**: ``GenomeRegistry.register_genome`` vs
   ``mlflow.pyfunc.log_model`` of the same code file and artifact with
   ``registered_model_name`` inside ``mlflow.start_run``.
4. **Promote** (excluding the comparison): ``ModelRegistry.promote(..., to="challenger")``
   (reads the version and the aliases, moves the alias, records why) vs the plain
   ``MlflowClient.set_registered_model_alias``.

    .venv/bin/python benchmarks/bench_mlflow.py [--cells 1000] [--subset 40] [--repeats 5]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

warnings.filterwarnings("ignore")


def start_server(folder: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination",
        str(folder / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    log = open(folder / "server.log", "ab")  # noqa: SIM115
    process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{uri}/health", timeout=2).status_code == 200:
                return process, uri
        except httpx.HTTPError:
            time.sleep(0.5)
    raise RuntimeError("mlflow server did not start")


def server_cpu(pid: int) -> float:
    """CPU seconds of the server's process tree, without MLflow's job consumers (huey), which
    poll their queues whether or not anything is logged."""
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        try:
            if any("huey" in part or "_job_runner" in part for part in process.cmdline()):
                continue
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


@contextlib.contextmanager
def count_requests() -> Iterator[list[int]]:
    """Counts the REST requests made through MLflow's ``http_request`` meanwhile."""
    from mlflow.utils import rest_utils

    count = [0]
    original = rest_utils.http_request

    def counted(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return original(*args, **kwargs)

    rest_utils.http_request = counted  # type: ignore[assignment]
    try:
        yield count
    finally:
        rest_utils.http_request = original  # type: ignore[assignment]


def make_run(cells: int, samples: int = 20) -> Any:
    """A finished suite run shaped like a real one (log-normal timings, figures, memory)."""
    from allele.observability.benchmarking.model import CellResult, SuiteRun

    rng = np.random.default_rng(0)
    start = datetime.now(UTC)
    out = []
    for i in range(cells):
        times = rng.lognormal(-7, 0.05, samples).tolist()
        out.append(
            CellResult(
                params={"population_size": 10 + i, "mutation_rate": 0.1},
                samples={"time_s": times, "cpu_time_s": times, "peak_rss_bytes": [1e8, 1.1e8]},
                metrics={
                    "latency_p50_s": float(np.median(times)),
                    "latency_p95_s": float(np.percentile(times, 95)),
                    "latency_p99_s": float(np.percentile(times, 99)),
                    "ops_per_s": float(1 / np.median(times)),
                    "peak_rss_bytes": 1.1e8,
                    "best_fitness": 0.9,
                },
                inner_loops=10,
                processes=2,
                run_indices=[0, 1],
                node="bench",
                started_at=start + timedelta(milliseconds=i),
                finished_at=start + timedelta(milliseconds=i + 1),
            )
        )
    return SuiteRun(
        name="bench",
        component="evolution",
        suite_id=uuid.uuid4().hex,
        config={"runs": 2, "samples": samples, "matrix": {"population_size": list(range(cells))}},
        machine={"node": "bench"},
        commit={"id": "deadbeef"},
        cells=out,
    )


def ours_suite(uri: str, run: Any, prefix: str, spool: str, database: str = "") -> float:
    """``log_suite_run`` timed whole; ``database``: the server's own database, reachable from
    here (``ALLELE_MLFLOW_BACKEND_STORE_URI``), or empty to send everything as requests. The
    runs are then counted through the tracking URI (the server's API)."""
    import mlflow

    from allele.observability.benchmarking.experiment_logger import ExperimentLogger
    from allele.observability.benchmarking.experiment_tracking import log_suite_run
    from allele.observability.mlflow_integration.config import mlflow_config

    config = mlflow_config(
        tracking_uri=uri, experiment_prefix=prefix, spool_dir=spool, backend_store_uri=database
    )
    log = ExperimentLogger(config)
    t = time.perf_counter()
    result = log_suite_run(run, experiment_logger=log)
    elapsed = time.perf_counter() - t
    assert result.spooled == 0 and result.rejected == 0, result.errors[:3]
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(prefix + run.name)
    found = client.search_runs([experiment.experiment_id], max_results=5000)
    assert len(found) == len(run.cells) + 1, (len(found), len(run.cells))
    return elapsed


def anchor_suite(uri: str, run: Any, prefix: str) -> float:
    """MLflow's fluent API, the plain way: nested runs, log_params, a log_metric per figure."""
    import mlflow

    from allele.observability.benchmarking.experiment_tracking import cell_metrics, write_artifacts

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(prefix + run.name)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_name=run.suite_id[:8]):
        mlflow.log_params({k: json.dumps(v) for k, v in run.config.items()})
        for cell in run.cells:
            with mlflow.start_run(run_name=cell.key, nested=True):
                mlflow.log_params({**cell.params, "inner_loops": cell.inner_loops})
                for name, value in cell_metrics(cell).items():
                    mlflow.log_metric(name, value)
                mlflow.set_tags({"suite_id": run.suite_id, "cell_key": cell.key})
        write_artifacts(run, Path(tmp))
        mlflow.log_artifacts(tmp)
    return time.perf_counter() - t


def tracking_overhead(uri: str, pairs: int, spool: str) -> tuple[list[float], ...]:
    """Per pair: share of the suite's wall time in the tracker's calls, tracked wall,
    untracked wall, and the wait for the reports and uploads after the suite."""
    from allele.observability.benchmarking.experiment_tracking import SuiteTracker
    from allele.observability.benchmarking.runner import run_suite
    from allele.observability.benchmarking.suites import Suite
    from allele.observability.mlflow_integration.config import mlflow_config

    config = mlflow_config(tracking_uri=uri, experiment_prefix="overhead_", spool_dir=spool)
    suite = Suite(
        name="overhead",
        component="python",
        matrix={"size": [100, 300, 1000, 3000], "kernel": ["sort", "sum", "json"]},
        runs=2,
        samples=10,
        warmup=1,
        min_time=0.02,
        workers=1,
        timeout=300,
    )

    class Timed:
        """Times the runner's thread inside each tracker call."""

        def __init__(self, inner: SuiteTracker) -> None:
            self.inner = inner
            self.spent = 0.0

        def _call(self, name: str, *args: Any) -> None:
            t = time.perf_counter()
            getattr(self.inner, name)(*args)
            self.spent += time.perf_counter() - t

        def suite_started(self, run: Any) -> None:
            self._call("suite_started", run)

        def cell_finished(self, run: Any, cell: Any) -> None:
            self._call("cell_finished", run, cell)

        def suite_finished(self, run: Any) -> None:
            self._call("suite_finished", run)

    shares, tracked, plain, after = [], [], [], []

    def untracked() -> None:
        t = time.perf_counter()
        run_suite(suite)
        plain.append(time.perf_counter() - t)

    def with_tracker() -> None:
        timed = Timed(SuiteTracker(config=config))
        t = time.perf_counter()
        run_suite(suite, observers=[timed])
        wall = time.perf_counter() - t
        tracked.append(wall)
        shares.append(timed.spent / wall)
        t = time.perf_counter()
        timed.inner.close()  # reports and uploads finish after the suite
        after.append(time.perf_counter() - t)

    for i in range(pairs):
        # Interleaved, alternating which goes first (ABBA), so a drift in the machine's load
        # falls on both sides alike.
        for measure in (untracked, with_tracker) if i % 2 == 0 else (with_tracker, untracked):
            measure()
    return shares, tracked, plain, after


def registry_timings(uri: str, repeats: int, spool: str) -> dict[str, list[float]]:
    import mlflow

    from allele.genome import TRAIT_NAMES, ConversationalGenome
    from allele.observability.benchmarking.genome_registry import GenomeRegistry
    from allele.observability.mlflow_integration.config import mlflow_config
    from allele.observability.mlflow_integration.models import genome_model

    config = mlflow_config(tracking_uri=uri, experiment_prefix="registry_bench_", spool_dir=spool)
    registry = GenomeRegistry(config)
    ours_name, anchor_name = f"ours-{uuid.uuid4().hex[:6]}", f"anchor-{uuid.uuid4().hex[:6]}"
    rng = np.random.default_rng(1)
    out: dict[str, list[float]] = {
        k: [] for k in ("register", "anchor_register", "promote", "anchor_alias")
    }
    registry.register_genome(ConversationalGenome(None, dict.fromkeys(TRAIT_NAMES, 0.5)), ours_name)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("registry_bench_anchor")
    client = mlflow.MlflowClient(uri)
    for _ in range(repeats):
        genome = ConversationalGenome(
            None, dict(zip(TRAIT_NAMES, rng.random(8).tolist(), strict=True))
        )
        t = time.perf_counter()
        version = registry.register_genome(genome, ours_name, suite_id="s")
        out["register"].append(time.perf_counter() - t)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "genome.json"
            path.write_text(json.dumps(genome.to_dict()))
            t = time.perf_counter()
            with mlflow.start_run():
                info = mlflow.pyfunc.log_model(
                    name="genome",
                    python_model=genome_model.__file__,
                    artifacts={"genome": str(path)},
                    registered_model_name=anchor_name,
                    pip_requirements=["allele"],
                )
            out["anchor_register"].append(time.perf_counter() - t)
        t = time.perf_counter()
        registry.promote(ours_name, version.version, to="challenger")
        out["promote"].append(time.perf_counter() - t)
        t = time.perf_counter()
        client.set_registered_model_alias(anchor_name, "challenger", info.registered_model_version)
        out["anchor_alias"].append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--subset", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument(
        "--server-workers", type=int, default=2, help="mlflow server --workers (2 cores: 2)"
    )
    parser.add_argument(
        "--parts", default="suite,tracking,registry", help="Which measurements to run."
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-mlflow-"))
    spool = str(folder / "spool")
    process, uri = start_server(folder, args.server_workers)
    args.server_pid = process.pid
    args.database = f"sqlite:///{folder / 'mlflow.db'}"  # the server's --backend-store-uri
    try:
        print(
            f"mlflow server {uri} --workers {args.server_workers} (SQLite "
            f"{folder / 'mlflow.db'}), cells={args.cells}, load average {os.getloadavg()}"
        )
        parts = set(args.parts.split(","))
        for part, measure in (
            ("suite", suite_ratios),
            ("tracking", tracking_ratio),
            ("registry", registry_ratios),
        ):
            if part in parts:
                measure(uri, args, spool)
                print(f"  ({part}: load average {os.getloadavg()})", flush=True)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def suite_ratios(uri: str, args: Any, spool: str) -> None:
    ours_small, anchor_small = [], []
    for i in range(args.repeats):
        sub = make_run(args.subset)
        ours_small.append(ours_suite(uri, sub, f"o{i}_", spool, args.database))
        anchor_small.append(anchor_suite(uri, make_run(args.subset), f"a{i}_"))
    per_cell_ours = statistics.median(ours_small) / args.subset
    per_cell_anchor = statistics.median(anchor_small) / args.subset
    print(
        f"RATIO suite_{args.subset}_cells anchor/ours "
        f"{per_cell_anchor / per_cell_ours:.1f}x "
        f"(median of {args.repeats}: ours {statistics.median(ours_small):.2f} s with the "
        f"server's database reachable, fluent log_metric loop "
        f"{statistics.median(anchor_small):.2f} s)"
    )
    fulls = [
        ours_suite(uri, make_run(args.cells), f"full{i}_", spool, args.database)
        for i in range(args.repeats)
    ]
    ours_full = statistics.median(fulls)
    print(
        f"RATIO suite_{args.cells}_cells ours {ours_full:.2f} s (median of {args.repeats}, "
        f"server's database reachable: ALLELE_MLFLOW_BACKEND_STORE_URI; target 5 s: "
        f"{ours_full / 5.0:.2f}x of it); fluent loop extrapolated from {args.subset} cells: "
        f"{per_cell_anchor * args.cells:.0f} s; anchor/ours "
        f"{per_cell_anchor * args.cells / ours_full:.1f}x"
    )
    folder = Path(tempfile.mkdtemp(prefix="bench-mlflow-db-"))
    direct = [
        ours_suite(f"sqlite:///{folder / 'runs.db'}", make_run(args.cells), f"d{i}_", spool)
        for i in range(args.repeats)
    ]
    print(
        f"RATIO suite_{args.cells}_cells ours {statistics.median(direct):.2f} s with a "
        f"sqlite:/// tracking URI (the design documents' default; median of {args.repeats})"
    )
    server_before, client_before = server_cpu(args.server_pid), time.process_time()
    with count_requests() as requests:
        rest = ours_suite(uri, make_run(args.cells), "rest_", spool)
    server_s = server_cpu(args.server_pid) - server_before
    client_s = time.process_time() - client_before
    n = max(1, requests[0])
    print(
        f"RATIO suite_{args.cells}_cells ours {rest:.2f} s through the server's REST API alone "
        f"(no database access): {requests[0]} REST requests "
        f"({requests[0] / args.cells:.2f} per cell), server CPU {server_s / n * 1000:.1f} ms "
        f"per request ({server_s:.1f} s), ours {client_s / n * 1000:.1f} ms per request "
        f"({client_s:.1f} s); floor with {args.server_workers} workers "
        f"{server_s / args.server_workers:.1f} s"
    )


def tracking_ratio(uri: str, args: Any, spool: str) -> None:
    shares, tracked, plain, after = tracking_overhead(uri, args.pairs, spool)
    print(
        "RATIO tracking_during_suite runner-thread share "
        f"{statistics.median(shares) * 100:.3f}% of the suite's wall (target <= 1%); "
        "tracked/untracked wall (median of the pairs' ratios) "
        f"{statistics.median(t / p for t, p in zip(tracked, plain, strict=True)):.3f} "
        f"(medians of {args.pairs}: {statistics.median(tracked):.1f} s vs "
        f"{statistics.median(plain):.1f} s); reports+uploads after the suite "
        f"{statistics.median(after):.1f} s"
    )


def registry_ratios(uri: str, args: Any, spool: str) -> None:
    timings = registry_timings(uri, args.repeats, spool)
    med = {k: statistics.median(v) * 1000 for k, v in timings.items()}
    print(
        f"RATIO register_genome ours {med['register']:.0f} ms (target 100 ms) vs "
        f"pyfunc.log_model {med['anchor_register']:.0f} ms: anchor/ours "
        f"{med['anchor_register'] / med['register']:.1f}x"
    )
    print(
        f"RATIO promote ours {med['promote']:.0f} ms (target 50 ms) vs "
        f"set_registered_model_alias {med['anchor_alias']:.0f} ms: ours/anchor "
        f"{med['promote'] / med['anchor_alias']:.1f}x"
    )


if __name__ == "__main__":
    main()
