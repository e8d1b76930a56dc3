"""The runner end to end: worker processes, timeouts, crashes, storage, resume after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from allele.observability.benchmarking import storage
from allele.observability.benchmarking.runner import _Cell, _empty_cell, _jobs, run_suite
from allele.observability.benchmarking.suites import Suite
from allele.observability.store import open_store

# Workloads for the tests, imported by the worker processes through the inherited sys.path.
WORKLOADS = """
import os, signal, time

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
    if mode == "killed":
        return lambda: os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
    return lambda: None

def flaky(counter="", fail_at=-1, **_):
    # The process number fail_at of the cell fails (the first is 0), every other one succeeds.
    count = int(open(counter).read()) if os.path.exists(counter) else 0
    with open(counter, "w") as out:
        out.write(str(count + 1))
    if count == fail_at:
        raise RuntimeError("second process fails once")
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
        matrix={"mode": ["hang", "raise", "exit", "killed", "ok"]},
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
    killed = by_mode["killed"]
    assert killed.status == "killed" and killed.signal == signal.SIGKILL
    assert "killed by signal 9 (SIGKILL)" in (killed.error or "")
    assert by_mode["ok"].status == "ok" and len(by_mode["ok"].samples["time_s"]) == 4
    # A failed cell's later runs are skipped, not measured.
    assert by_mode["hang"].processes == 0
    stored = storage.load_run(store, run.suite_id)
    assert [c.status for c in stored.cells] == ["timeout", "error", "error", "killed", "ok"]
    assert stored.cell("mode='killed'").signal == signal.SIGKILL  # type: ignore[union-attr]
    # Every job ran, some cells failed: the run is "failed", and so resumable.
    assert stored.status == "failed"
    assert storage.latest_unfinished(store, "misbehave") is not None


def test_resume_redoes_exactly_the_failed_jobs_of_a_failed_run(
    workloads: str, tmp_path: Path
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'retry.db'}")
    counter = tmp_path / "flaky.count"

    def suite() -> Suite:
        return Suite(
            name="retry",
            component="function",
            target=f"{workloads}:flaky",
            matrix={"counter": [str(counter), str(tmp_path / "steady.count")], "fail_at": [1, -1]},
            zip=[["counter", "fail_at"]],
            runs=3,
            samples=2,
            warmup=0,
            min_time=0.0,
            max_inner_loops=1,
            timeout=60,
        )

    first = run_suite(suite(), store=store)
    flaky, steady = first.cells
    assert first.status == "failed"
    assert flaky.status == "error" and flaky.run_indices == [0]  # run 1 failed, run 2 skipped
    assert steady.status == "ok" and steady.run_indices == [0, 1, 2]
    # Without retrying, a resume has nothing to run: the failed cell stays failed.
    kept = run_suite(suite(), store=store, resume=True, retry_failed=False)
    assert kept.suite_id == first.suite_id and kept.status == "failed"
    assert kept.cells[0].status == "error" and counter.read_text() == "2"

    again = run_suite(suite(), store=store, resume=True)
    assert again.suite_id == first.suite_id and again.status == "complete"
    flaky_after, steady_after = again.cells
    assert flaky_after.status == "ok" and flaky_after.error is None
    assert flaky_after.run_indices == [0, 1, 2]  # run 0 kept, runs 1 and 2 measured now
    assert flaky_after.samples["time_s"][:2] == flaky.samples["time_s"]
    assert counter.read_text() == "4"  # two more processes: exactly the missing jobs
    assert steady_after.samples == steady.samples  # the good cell was not measured again
    assert (tmp_path / "steady.count").read_text() == "3"
    assert len(storage.list_runs(store, name="retry")) == 1


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


# `allele` with Ctrl-C's handler set explicitly: a process started with SIGINT ignored (under
# nohup, or `&` from a script, as a test runner may be) passes the ignoring on to its children,
# and Python then installs no KeyboardInterrupt handler of its own.
_CLI_WITH_SIGINT = [
    sys.executable,
    "-c",
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv = ['allele', *sys.argv[1:]]; runpy.run_module('allele', run_name='__main__')",
]


def test_ctrl_c_stores_what_was_measured_and_resume_finishes_the_rest(
    workloads: str, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'ctrlc.db'}"
    suite_file = tmp_path / "ctrlc.toml"
    suite_file.write_text(CLI_SUITE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    command = [*_CLI_WITH_SIGINT, "bench", "run", str(suite_file), "--store", uri]
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


# -- workers never outlive their runner or their timeout -------------------------------------
HANG_SCRIPT = """
import sys
sys.path.insert(0, {folder!r})
from allele.observability.benchmarking.runner import run_suite
from allele.observability.benchmarking.suites import Suite
suite = Suite(name="hang", component="function", target="bench_workloads_fake:misbehave",
              params={{"pidfile": {pidfile!r}}}, matrix={{"mode": ["hang"]}}, runs=1, samples=1,
              warmup=0, min_time=0.0, max_inner_loops=1, workers=1, timeout=600)
run_suite(suite, store={uri!r})
"""


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for a reaper that is not its parent is dead)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _wait_for(predicate: Any, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _start_hanging_runner(tmp_path: Path) -> tuple[Any, int]:
    pidfile = tmp_path / "worker.pid"
    uri = f"sqlite:///{tmp_path / 'hang.db'}"
    script = HANG_SCRIPT.format(folder=str(tmp_path), pidfile=str(pidfile), uri=uri)
    runner = subprocess.Popen([sys.executable, "-c", script])
    assert _wait_for(lambda: pidfile.exists() and pidfile.read_text()), "the worker never started"
    return runner, int(pidfile.read_text())


def test_a_worker_dies_with_a_killed_runner(workloads: str, tmp_path: Path) -> None:
    runner, worker = _start_hanging_runner(tmp_path)
    assert _alive(worker)
    os.kill(runner.pid, signal.SIGKILL)  # the runner alone: the worker is in its own session
    runner.wait()
    assert _wait_for(lambda: not _alive(worker)), "the worker outlived its killed runner"


def test_sigterm_stops_the_run_like_ctrl_c(workloads: str, tmp_path: Path) -> None:
    suite_file = tmp_path / "hang.toml"
    suite_file.write_text(
        'name = "hang"\ncomponent = "function"\ntarget = "bench_workloads_fake:misbehave"\n'
        "runs = 1\nsamples = 1\nwarmup = 0\nmin_time = 0.0\nmax_inner_loops = 1\n"
        f'timeout = 600\n[params]\npidfile = "{tmp_path / "worker.pid"}"\n'
        '[matrix]\nmode = ["hang"]\n'
    )
    uri = f"sqlite:///{tmp_path / 'term.db'}"
    command = [*_CLI_WITH_SIGINT, "bench", "run", str(suite_file), "--store", uri, "--no-progress"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    pidfile = tmp_path / "worker.pid"
    runner = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert _wait_for(lambda: pidfile.exists() and pidfile.read_text()), "the worker never started"
    worker = int(pidfile.read_text())
    runner.send_signal(signal.SIGTERM)
    out, _ = runner.communicate(timeout=60)
    assert runner.returncode == 128 + signal.SIGTERM, out
    assert "interrupted (SIGTERM)" in out and "--resume" in out
    assert not _alive(worker)
    stored = storage.latest_unfinished(uri, "hang")
    assert stored is not None and stored.status == "interrupted"


def _worker_job(timeout: float) -> bytes:
    import json

    from allele.observability.benchmarking.executors.base import Job

    job = Job(
        cell_index=0,
        run_index=0,
        component="function",
        target="bench_workloads_fake:misbehave",
        params={"mode": "hang"},
        samples=1,
        warmup=0,
        min_time=0.0,
        max_inner_loops=1,
        timeout=timeout,
    )
    return json.dumps(job.to_dict()).encode()


def _worker_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}


def test_a_worker_enforces_its_timeout_itself(workloads: str, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "allele.observability.benchmarking.worker"]
    worker = subprocess.Popen(
        [*command, str(tmp_path / "result.json")],
        stdin=subprocess.PIPE,
        env=_worker_env(tmp_path),
    )
    worker.communicate(_worker_job(timeout=0.5), timeout=60)  # nobody but itself stops it
    assert worker.returncode == -signal.SIGALRM
    assert not (tmp_path / "result.json").exists()


def test_a_worker_ends_when_the_watchdog_pipe_closes(workloads: str, tmp_path: Path) -> None:
    read, write = os.pipe()
    command = [sys.executable, "-m", "allele.observability.benchmarking.worker"]
    worker = subprocess.Popen(
        [*command, str(tmp_path / "result.json"), str(read)],
        stdin=subprocess.PIPE,
        env=_worker_env(tmp_path),
        pass_fds=(read,),
        start_new_session=True,
    )
    os.close(read)
    assert worker.stdin is not None
    worker.stdin.write(_worker_job(timeout=600))
    worker.stdin.close()
    time.sleep(0.5)
    assert worker.poll() is None  # hangs while the pipe is open
    os.close(write)  # what the runner's death does
    assert worker.wait(timeout=60) == -signal.SIGKILL
