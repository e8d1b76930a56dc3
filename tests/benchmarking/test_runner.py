"""The runner end to end: worker processes, timeouts, crashes, storage, resume after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy

from allele.observability.benchmarking import storage
from allele.observability.benchmarking.runner import _Cell, _empty_cell, _jobs, run_suite
from allele.observability.benchmarking.suites import Suite
from allele.observability.store import open_store

# Workloads for the tests, imported by the worker processes through the inherited sys.path.
WORKLOADS = """
import os, time

def steady(delay=0.0, **_):
    # sleep(0) yields the CPU, which takes milliseconds on a busy machine: a no-op instead.
    return (lambda: time.sleep(delay)) if delay else (lambda: None)

def misbehave(mode="ok", pidfile="", **_):
    if mode == "hang":
        if pidfile:
            with open(pidfile, "w") as out:
                out.write(str(os.getpid()))
        return lambda: time.sleep(3600)
    if mode == "raise":
        def boom():
            raise RuntimeError("workload exploded on purpose")
        return boom
    if mode == "exit":
        return lambda: os._exit(7)
    return lambda: None
"""


@pytest.fixture
def workloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    module = tmp_path / "bench_workloads_fake.py"
    module.write_text(WORKLOADS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "bench_workloads_fake"


def test_cells_are_measured_in_separate_processes_with_all_samples(workloads: str) -> None:
    suite = Suite(
        name="steady",
        component="function",
        target=f"{workloads}:steady",
        matrix={"delay": [0.0, 0.001]},
        runs=2,
        samples=3,
        warmup=0,
        min_time=0.002,
        workers=2,
        timeout=60,
    )
    run = run_suite(suite)
    assert run.status == "complete"
    assert [c.params for c in run.cells] == [{"delay": 0.0}, {"delay": 0.001}]
    for cell in run.cells:
        assert cell.status == "ok" and cell.processes == 2
        assert sorted(cell.run_indices) == [0, 1]
        assert len(cell.samples["time_s"]) == len(cell.samples["cpu_time_s"]) == 6
        assert len(cell.samples["peak_rss_bytes"]) == 2
        assert cell.metrics["latency_p50_s"] <= cell.metrics["latency_p99_s"]
        assert cell.inner_loops >= 1
        assert cell.metrics["rounds_per_sample"] >= 1
    # A 1 ms sleep is calibrated to few loops, a no-op to many: calibration is per cell.
    assert run.cells[0].inner_loops > run.cells[1].inner_loops
    assert min(run.cells[1].samples["time_s"]) >= 0.001
    assert run.machine["python_version"] and "cpu" in run.machine


def test_timeout_and_crashes_are_recorded_and_the_suite_goes_on(
    workloads: str, tmp_path: Path
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'r.db'}")
    suite = Suite(
        name="misbehave",
        component="function",
        target=f"{workloads}:misbehave",
        matrix={"mode": ["hang", "raise", "exit", "ok"]},
        params={"pidfile": str(tmp_path / "hang.pid")},
        runs=2,
        samples=2,
        warmup=0,
        min_time=0.0,
        max_inner_loops=10,
        workers=2,
        timeout=2.0,
    )
    run = run_suite(suite, store=store)
    by_mode = {c.params["mode"]: c for c in run.cells}
    assert by_mode["hang"].status == "timeout"
    assert "2 s timeout" in (by_mode["hang"].error or "")
    # The timed-out worker was killed, not left sleeping.
    pid = int((tmp_path / "hang.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert by_mode["raise"].status == "error"
    raised, exited = by_mode["raise"].error, by_mode["exit"].error
    assert raised is not None and exited is not None
    assert "Traceback" in raised and "workload exploded on purpose" in raised
    assert by_mode["exit"].status == "error" and "exited with code 7" in exited
    assert by_mode["ok"].status == "ok" and len(by_mode["ok"].samples["time_s"]) == 4
    # A failed cell's later runs are skipped, not measured.
    assert by_mode["hang"].processes == 0
    stored = storage.load_run(store, run.suite_id)
    assert [c.status for c in stored.cells] == ["timeout", "error", "error", "ok"]
    assert stored.status == "complete"


RESUME_SCRIPT = """
import sys
sys.path.insert(0, {folder!r})
from allele.observability.benchmarking.runner import run_suite
from allele.observability.benchmarking.suites import Suite
suite = Suite(name="resumable", component="function", target="bench_workloads_fake:steady",
              matrix={{"delay": [0.05, 0.051, 0.052, 0.053, 0.054, 0.055]}}, runs=2, samples=2,
              warmup=0, min_time=0.0, max_inner_loops=1, workers=1, timeout=60)
run_suite(suite, store={uri!r}, resume={resume})
"""


def _stored_cells(uri: str) -> list[tuple[str, str, str]]:
    engine = sqlalchemy.create_engine(uri)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    sqlalchemy.text("SELECT cell_key, status, run_indices FROM bench_cells")
                )
            )
    except sqlalchemy.exc.OperationalError:
        return []
    finally:
        engine.dispose()


def test_resume_after_a_killed_runner_redoes_nothing(workloads: str, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'resume.db'}"
    script = RESUME_SCRIPT.format(folder=str(tmp_path), uri=uri, resume=False)
    runner = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = [row for row in _stored_cells(uri) if row[1] == "ok"]
        if len(done) >= 1 and runner.poll() is None:
            break
        time.sleep(0.05)
    assert runner.poll() is None, "the runner finished before it could be killed"
    os.killpg(runner.pid, signal.SIGKILL)  # the runner and its worker die mid-suite
    runner.wait()

    before = storage.latest_unfinished(uri, "resumable")
    assert before is not None and before.status == "running"
    finished_before = {c.key: c for c in before.cells if c.status == "ok"}
    partial_before = {c.key: list(c.run_indices) for c in before.cells if c.status == "partial"}
    assert finished_before, "no cell was finished before the kill"

    resumed = subprocess.run(
        [sys.executable, "-c", RESUME_SCRIPT.format(folder=str(tmp_path), uri=uri, resume=True)],
        timeout=120,
    )
    assert resumed.returncode == 0
    after = storage.load_run(uri, before.suite_id)
    assert after.status == "complete" and len(after.cells) == 6
    assert len(storage.list_runs(uri, name="resumable")) == 1
    for cell in after.cells:
        assert cell.status == "ok"
        assert sorted(cell.run_indices) == [0, 1], cell.key  # each process run measured once
        assert len(cell.samples["time_s"]) == 4
        if cell.key in finished_before:
            # Untouched by the resumed runner: identical samples and timestamps.
            assert cell.samples == finished_before[cell.key].samples
            assert cell.finished_at == finished_before[cell.key].finished_at
        if cell.key in partial_before:
            assert cell.run_indices[: len(partial_before[cell.key])] == partial_before[cell.key]


def test_resume_refuses_a_changed_suite(workloads: str, tmp_path: Path) -> None:
    from allele.errors import BenchmarkError

    uri = f"sqlite:///{tmp_path / 'changed.db'}"
    store = open_store(uri)
    suite = Suite(name="c", component="python", matrix={"size": [10]}, runs=1, samples=1)
    run = run_suite(suite, store=store)
    storage.set_run_status(store, run.suite_id, "interrupted")
    changed = Suite(name="c", component="python", matrix={"size": [20]}, runs=1, samples=1)
    with pytest.raises(BenchmarkError, match="the suite changed"):
        run_suite(changed, store=store, resume=True)
    # The unchanged suite resumes the interrupted run and has nothing left to measure.
    again = run_suite(suite, store=store, resume=True)
    assert again.suite_id == run.suite_id and again.status == "complete"
    assert again.cells[0].samples == run.cells[0].samples


def test_jobs_go_round_robin_over_cells_and_skip_what_is_done() -> None:
    suite = Suite(
        name="rr", component="python", matrix={"size": [1, 2, 3]}, runs=3, timeout=10, samples=1
    )
    cells = [_Cell(i, _empty_cell(p), 3) for i, p in enumerate(suite.cells())]
    # Cell 1 already has its run 0 (a resumed run); cell 2 failed and gets no more jobs.
    cells[1].result.run_indices = [0]
    cells[2].result.status = "error"
    order = [(j.run_index, j.cell_index) for j in _jobs(suite, cells)]
    assert order == [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1)]


CLI_SUITE = """
name = "ctrlc"
component = "function"
target = "bench_workloads_fake:steady"
runs = 2
samples = 2
warmup = 0
min_time = 0.0
max_inner_loops = 1
workers = 1
timeout = 60

[matrix]
delay = [0.05, 0.051, 0.052, 0.053, 0.054, 0.055]
"""


def test_ctrl_c_stores_what_was_measured_and_resume_finishes_the_rest(
    workloads: str, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'ctrlc.db'}"
    suite_file = tmp_path / "ctrlc.toml"
    suite_file.write_text(CLI_SUITE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    command = [sys.executable, "-m", "allele", "bench", "run", str(suite_file), "--store", uri]
    command.append("--no-progress")
    runner = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and runner.poll() is None:
        if any(row[1] == "ok" for row in _stored_cells(uri)):
            break
        time.sleep(0.05)
    assert runner.poll() is None, "the runner finished before it could be interrupted"
    os.killpg(runner.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
    out, _ = runner.communicate(timeout=60)
    assert runner.returncode == 130, out
    assert "--resume" in out

    interrupted = storage.latest_unfinished(uri, "ctrlc")
    assert interrupted is not None and interrupted.status == "interrupted"
    done = {c.key: c for c in interrupted.cells if c.status == "ok"}
    assert done and len(done) < 6

    resumed = subprocess.run(
        [*command, "--resume"], env=env, capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = storage.load_run(uri, interrupted.suite_id)
    assert after.status == "complete" and [c.status for c in after.cells] == ["ok"] * 6
    assert len(storage.list_runs(uri, name="ctrlc")) == 1
    for key, cell in done.items():
        assert after.cell(key).samples == cell.samples  # type: ignore[union-attr]


def test_progress_bar_counts_jobs_and_shows_the_eta() -> None:
    import io

    from rich.console import Console

    from allele.observability.benchmarking.executors.base import JobResult
    from allele.observability.benchmarking.progress import RichProgress

    console = Console(file=io.StringIO(), width=120, record=True)
    progress = RichProgress(console=console)
    progress.start("suite-x", total_jobs=4, done_jobs=1)  # one job done before a resume
    progress.advance(JobResult(cell_index=0, run_index=0), "a=1")
    failed = JobResult(cell_index=1, run_index=1, status="timeout", error="killed after 2 s")
    progress.advance(failed, "a=2")
    progress.stop()
    text = console.export_text()
    assert "timeout a=2 (run 1): killed after 2 s" in text
    assert "suite-x" in text and "3/4" in text and "ETA" in text and "elapsed" in text


def test_worker_calibrates_rounds_and_takes_median_round_samples(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A workload on a fake clock: every call lasts 1 ms. Calls per round are calibrated to
    # reach ROUND_TIME (0.1 ms): 1 call. Rounds per sample fill min_time (10 ms): 10 rounds,
    # counted by a sample that then counts as the first warmup sample.
    import types

    from allele.observability.benchmarking import measure, worker
    from allele.observability.benchmarking.executors.base import Job

    now = [0.0]
    calls = [0]

    def call() -> None:
        calls[0] += 1
        now[0] += 0.001

    fake_clock = types.SimpleNamespace(perf_counter=lambda: now[0], process_time=lambda: now[0])
    monkeypatch.setattr(measure, "time", fake_clock)
    module = types.ModuleType("fake_clock_workload")
    module.make = lambda: call  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_clock_workload", module)
    job = Job(
        cell_index=0,
        run_index=0,
        component="function",
        params={},
        target="fake_clock_workload:make",
        samples=3,
        warmup=2,
        min_time=0.01,
        measure_memory=False,
    )
    result = worker.run_job(job)
    assert result.status == "ok", result.error
    assert result.inner_loops == 1
    assert result.metrics["rounds_per_sample"] == 10
    assert result.samples["time_s"] == pytest.approx([0.001] * 3)
    # calibration 2, counting sample 10, one more warmup sample 10, three samples 30
    assert calls[0] == 2 + 10 + 10 + 30
