"""Sending Allele's operations to MLflow: batched, off the caller's thread, spooled when it fails.

Everything Allele logs is a list of operations (JSON-ready dicts); each names its MLflow run by
Allele's key (``suite:<suite_id>``, ``cell:<suite_id>:<cell key>``...), never by MLflow's run id:

- ``{"op": "run", "key", "experiment", "group", "parent", "name", "tags", "start_time"}``
  creates the run unless a run with that key exists (``allele.run_key`` tag);
- ``{"op": "log", ..., "params": {...}, "metrics": [[name, value, timestamp_ms, step]...],
  "tags": {...}}`` is sent as ``log_batch`` calls of at most 100 params, 100 tags and
  ``ALLELE_MLFLOW_METRICS_BATCH_SIZE`` (<= 1000) metrics;
- ``{"op": "artifact", ..., "path", "artifact_path"}`` uploads a file;
- ``{"op": "end", ..., "status", "end_time"}`` terminates the run.

Every operation also carries ``experiment``, ``group`` (the suite id: runs of a group are found
with one search) and ``parent`` (the parent's key, or None), so a spooled operation can be
replayed by any process. ``send`` runs the operations of different child runs in parallel lanes
(their order within a run is kept; a parent's operations wait for the children before them).
When the tracking database can be reached (``database_uri``), the child runs of a block that are
whole finished runs (run, logs, end) are first written into it in one transaction
(``mlflow_integration/database.py``); the lanes only carry what is left.

When MLflow cannot be reached, the operation that failed and everything after it go to the
``Spool`` (``ALLELE_MLFLOW_SPOOL_DIR``), in order; the logger retries with back-off and, once
the server answers again, sends the spool before anything new (``allele mlflow sync`` does the
same from the command line, and the next run of any logger does it first). Replays are
idempotent: a run is looked up by its key before it is created (a run created just before a
crash is found, not duplicated) and MLflow ignores metric points, params and tags it already
has. A request MLflow refuses for good (a changed param value) is set aside in the spool's
``rejected.jsonl`` with the error. Nothing here raises into the caller: tracking never fails
the run it tracks.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import queue
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from allele.observability.mlflow_integration.client import is_transient, open_client
from allele.observability.mlflow_integration.config import artifact_location, mlflow_config
from allele.observability.mlflow_integration.database import (
    DatabaseRunWriter,
    RunRecord,
    finished_runs,
)
from allele.observability.mlflow_integration.runs import run_writer
from allele.observability.mlflow_integration.spool import (
    Operation,
    Rejected,
    ReplayResult,
    SendFailed,
    Spool,
)
from allele.observability.redact import mask_secrets
from allele.observability.types import MLflowConfig

logger = logging.getLogger(__name__)

RUN_KEY_TAG = "allele.run_key"
GROUP_TAG = "allele.group"
PARENT_TAG = "mlflow.parentRunId"
MAX_PARAMS = 100  # per log_batch, MLflow's limit
MAX_TAGS = 100
MAX_METRICS = 1000
_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
DATABASE_RETRY_S = 60.0


def now_ms() -> int:
    """The current time in milliseconds since the epoch, as MLflow stamps it."""
    return int(time.time() * 1000)


@dataclass
class SendResult:
    """What ``ExperimentLogger.send`` did: operations sent, spooled (to retry), refused."""

    sent: int = 0
    spooled: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)


class ExperimentLogger:
    """Sends operations to one MLflow tracking server, spooling what it cannot send.

    >>> log = ExperimentLogger(mlflow_config(tracking_uri="sqlite:///mlflow.db"))  # doctest: +SKIP
    >>> log.submit(ops)        # returns at once; a background thread sends  # doctest: +SKIP
    >>> log.flush(timeout=30)  # wait until everything submitted is sent or spooled
    >>> log.close()

    ``lanes`` is how many child runs are sent at once by ``send``.
    """

    def __init__(
        self,
        config: MLflowConfig | None = None,
        *,
        client: Any = None,
        spool: Spool | None = None,
        lanes: int = 8,
    ) -> None:
        self.config = config or mlflow_config()
        self.client = client if client is not None else open_client(self.config)
        self.runs = run_writer(self.config.tracking_uri, self.client, injected=client is not None)
        # Where finished child runs can be written in bulk (None: request by request).
        self._database_uri = None if client is not None else database_uri(self.config)
        self._database: DatabaseRunWriter | None = None
        self._database_retry = 0.0  # monotonic time before which it is not opened again
        self.spool = spool or Spool(self.config.spool_dir)
        self.lanes = lanes
        self.batch_size = min(MAX_METRICS, self.config.metrics_batch_size)
        self._experiments: dict[str, str] = {}
        self._runs: dict[str, str] = {}
        self._searched: set[str] = set()  # groups whose run ids are all known
        self._ids_lock = threading.Lock()
        self._queue: queue.Queue[list[Operation] | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._retry_at = 0.0
        self._failures = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self.sent = 0
        self.spooled = 0
        self.rejected = 0
        _open_loggers.add(self)

    # the caller's side ---------------------------------------------------------------------------

    def submit(self, operations: Sequence[Operation]) -> None:
        """Queue ``operations`` for the background sender; returns at once, never raises."""
        if not operations:
            return
        try:
            if self._closed:
                self.spool.append(operations)
                self.spooled += len(operations)
                return
            with self._idle:
                self._pending += 1
            self._queue.put(list(operations))
            self._start()
        except Exception:
            logger.exception("MLflow tracking: could not queue %d operations", len(operations))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every submitted operation was sent or spooled; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self, timeout: float | None = 30.0) -> None:
        """Send what is queued (up to ``timeout``), spool the rest and stop the thread."""
        if self._closed:
            return
        self.flush(timeout)
        self._closed = True
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        leftover: list[Operation] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item:
                leftover.extend(item)
        if leftover:
            self._spool(leftover)
        _open_loggers.discard(self)

    def __enter__(self) -> ExperimentLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_id(self, key: str) -> str | None:
        """The MLflow run id of Allele's run ``key``, when this logger has seen it."""
        return self._runs.get(key)

    # sending -------------------------------------------------------------------------------------

    def send(self, operations: Sequence[Operation]) -> SendResult:
        """Send ``operations`` now, on this thread (child runs in parallel lanes).

        What the spool holds is sent first; what fails for a reason that may pass goes to the
        spool, with everything after it.
        """
        result = SendResult()
        if self.spool.pending():
            replay = self.sync()
            if replay.pending:
                self._spool(operations)
                result.spooled = len(operations)
                return result
        unsent = self._send_all(list(operations), result)
        if unsent:
            self._spool(unsent)
            result.spooled += len(unsent)
        self.sent += result.sent
        self.rejected += result.rejected
        return result

    def sync(self) -> ReplayResult:
        """Send what the spool holds, in order; returns what was sent and what still waits."""
        result = self.spool.replay(self._send_spooled)
        if result.pending:
            self._failed()
        elif result.sent:
            self._recovered()
        return result

    def _send_spooled(self, op: Operation) -> None:
        try:
            self._send_one(op)
        except Exception as exc:
            if _transient(exc):
                self._forget_searches()
                raise SendFailed(str(exc)) from exc
            raise Rejected(str(exc)) from exc

    def _send_all(self, ops: list[Operation], result: SendResult) -> list[Operation]:
        """Send in order with child lanes in parallel; returns what was not sent (spool it)."""
        index = 0
        while index < len(ops):
            if ops[index].get("parent") is None:
                failed = self._send_guarded(ops[index], result)
                if failed:
                    return ops[index:]
                index += 1
                continue
            end = index
            while end < len(ops) and ops[end].get("parent") is not None:
                end += 1
            unsent = self._send_lanes(ops[index:end], result)
            if unsent:
                return unsent + ops[end:]
            index = end
        return []

    def _send_lanes(self, ops: list[Operation], result: SendResult) -> list[Operation]:
        lanes: dict[str, list[tuple[int, Operation]]] = defaultdict(list)
        for i, op in enumerate(ops):
            lanes[op["key"]].append((i, op))
        try:
            for key in self._write_finished(lanes):
                result.sent += len(lanes.pop(key))
        except Exception as exc:
            if not _transient(exc):
                raise
            # One transaction: none of the block was written, all of it is sent again later.
            self._forget_searches()
            result.errors.append(f"bulk write of {len(lanes)} runs: {exc}")
            return ops
        if not lanes:
            return []
        stop = threading.Event()

        def run(lane: list[tuple[int, Operation]]) -> list[tuple[int, Operation]]:
            for position, (_, op) in enumerate(lane):
                if stop.is_set() or self._send_guarded(op, result):
                    stop.set()
                    return lane[position:]
            return []

        if len(lanes) == 1 or self.lanes <= 1:
            left = [item for lane in lanes.values() for item in run(lane)]
        else:
            with ThreadPoolExecutor(min(self.lanes, len(lanes))) as pool:
                left = [item for part in pool.map(run, lanes.values()) for item in part]
        return [op for _, op in sorted(left, key=lambda item: item[0])]

    def _write_finished(self, lanes: dict[str, list[tuple[int, Operation]]]) -> list[str]:
        """Write the lanes that are whole finished runs into the database in one transaction;
        returns their keys (the other lanes are sent request by request)."""
        writer = self._database_writer()
        if writer is None:
            return []
        records = finished_runs({k: [op for _, op in lane] for k, lane in lanes.items()})
        blocks: dict[tuple[str, str, str], list[RunRecord]] = defaultdict(list)
        for key, record in records.items():
            op = lanes[key][0][1]
            blocks[(op["experiment"], op["group"], op["parent"])].append(record)
        written: list[str] = []
        for (experiment, group, parent), block in blocks.items():
            experiment_id = self._experiment_id(experiment)
            self._search_group(experiment_id, group)
            parent_id = self._find_run({"key": parent, "experiment": experiment, "group": group})
            checked = []
            for record in block:
                if record.key in self._runs:  # created before (a replay): finish it by requests
                    continue
                record.tags.update(
                    {RUN_KEY_TAG: record.key, GROUP_TAG: group, PARENT_TAG: parent_id}
                )
                try:
                    checked.append(writer.check(record))
                except Exception:  # refused: the request path records why
                    continue
            ids = writer.write_runs(experiment_id, checked)
            with self._ids_lock:
                self._runs.update(ids)
            written.extend(ids)
        return written

    def _database_writer(self) -> DatabaseRunWriter | None:
        now = time.monotonic()
        if (
            self._database is None
            and self._database_uri is not None
            and now >= self._database_retry
        ):
            try:
                self._database = DatabaseRunWriter(
                    self._database_uri, artifact_location(self.config) or "./mlruns"
                )
            except Exception as exc:  # unreachable, locked or another schema: by requests
                self._database_retry = now + DATABASE_RETRY_S
                logger.warning(
                    "MLflow tracking database %s not usable for bulk writes (%s); "
                    "sending runs request by request, trying it again in %.0f s",
                    mask_secrets(self._database_uri),
                    mask_secrets(str(exc).splitlines()[0]),
                    DATABASE_RETRY_S,
                )
        return self._database

    def _send_guarded(self, op: Operation, result: SendResult) -> bool:
        """Send one operation; True when it failed for a reason that may pass (spool it)."""
        try:
            self._send_one(op)
        except Exception as exc:
            if _transient(exc):
                self._forget_searches()
                result.errors.append(f"{op.get('op')} {op.get('key')}: {exc}")
                return True
            self.spool._reject(op, str(exc))  # logs the refusal
            result.rejected += 1
            return False
        result.sent += 1
        return False

    def _send_one(self, op: Operation) -> None:
        kind = op["op"]
        if kind == "run":
            self._ensure_run(op)
            return
        run_id = self._find_run(op)
        if kind == "log":
            self._log(run_id, op)
        elif kind == "artifact":
            self.client.log_artifact(run_id, op["path"], op.get("artifact_path"))
        elif kind == "end":
            self.runs.end_run(run_id, op.get("status", "FINISHED"), op.get("end_time"))
        else:
            raise Rejected(f"unknown operation {kind!r}; known: run, log, artifact, end")

    def _experiment_id(self, name: str) -> str:
        found = self._experiments.get(name)
        if found is not None:
            return found
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                experiment_id = self.client.create_experiment(
                    name, artifact_location=artifact_location(self.config)
                )
            except Exception as exc:
                if getattr(exc, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
                    raise
                experiment_id = self.client.get_experiment_by_name(name).experiment_id
        else:
            if experiment.lifecycle_stage == "deleted":
                self.client.restore_experiment(experiment.experiment_id)
            experiment_id = experiment.experiment_id
        self._experiments[name] = experiment_id
        return str(experiment_id)

    def _search_group(self, experiment_id: str, group: str) -> None:
        """Learn the run ids of every run of ``group`` with one paginated search."""
        with self._ids_lock:
            if group in self._searched:
                return
        token = None
        while True:
            page = self.client.search_runs(
                [experiment_id],
                filter_string=f"tags.`{GROUP_TAG}` = '{group}'",
                max_results=1000,
                page_token=token,
            )
            with self._ids_lock:
                for run in page:
                    key = run.data.tags.get(RUN_KEY_TAG)
                    if key:
                        self._runs.setdefault(key, run.info.run_id)
            token = page.token
            if not token:
                break
        with self._ids_lock:
            self._searched.add(group)

    def _ensure_run(self, op: Operation) -> str:
        key = op["key"]
        if key in self._runs:
            return self._runs[key]
        experiment_id = self._experiment_id(op["experiment"])
        group = op["group"]
        self._search_group(experiment_id, group)
        if key in self._runs:
            return self._runs[key]
        tags = {**op.get("tags", {}), RUN_KEY_TAG: key, GROUP_TAG: group}
        if op.get("parent") is not None:
            tags[PARENT_TAG] = self._find_run({**op, "key": op["parent"], "parent": None})
        run_id = self.runs.create_run(
            experiment_id, start_time=op.get("start_time"), tags=tags, run_name=op.get("name")
        )
        with self._ids_lock:
            self._runs[key] = run_id
        return run_id

    def _find_run(self, op: Operation) -> str:
        key = op["key"]
        found = self._runs.get(key)
        if found is not None:
            return found
        self._search_group(self._experiment_id(op["experiment"]), op["group"])
        found = self._runs.get(key)
        if found is None:
            raise Rejected(f"no MLflow run has {RUN_KEY_TAG}={key!r} (its 'run' operation is lost)")
        return found

    def _forget_searches(self) -> None:
        # A failed request may have created a run whose id we never received: search again.
        with self._ids_lock:
            self._searched.clear()

    def _log(self, run_id: str, op: Operation) -> None:
        params = [(str(k), str(v)) for k, v in op.get("params", {}).items()]
        tags = [(str(k), str(v)) for k, v in op.get("tags", {}).items()]
        metrics = [
            (str(k), float(v), int(ts), int(step))
            for k, v, ts, step in op.get("metrics", [])
            if v is not None and not math.isnan(float(v))
        ]
        while params or tags or metrics:
            chunk_p, params = params[:MAX_PARAMS], params[MAX_PARAMS:]
            chunk_t, tags = tags[:MAX_TAGS], tags[MAX_TAGS:]
            room = min(self.batch_size, MAX_METRICS - len(chunk_p) - len(chunk_t))
            chunk_m, metrics = metrics[:room], metrics[room:]
            self.runs.log_batch(run_id, chunk_m, chunk_p, chunk_t)

    # the background thread -----------------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._ids_lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._loop, name="allele-mlflow", daemon=True
                    )
                    self._thread.start()

    def _loop(self) -> None:
        _yield_cpu()
        while True:
            item = self._queue.get()
            if item is None:
                return
            batches = [item]
            while True:  # take what else is queued: fewer, larger requests
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batches.append(more)
            try:
                self._deliver(coalesce([op for batch in batches for op in batch]))
            except Exception:  # never let the sender thread die
                logger.exception("MLflow tracking: sending failed")
            finally:
                with self._idle:
                    self._pending -= len(batches)
                    self._idle.notify_all()

    def _deliver(self, ops: list[Operation]) -> None:
        if time.monotonic() < self._retry_at:
            self._spool(ops)
            return
        result = self.send(ops)
        if result.spooled:
            self._failed()
            logger.warning(
                "MLflow tracking server unreachable (%s); %d operations spooled in %s",
                result.errors[0] if result.errors else "spool waiting",
                result.spooled,
                self.spool.directory,
            )
        else:
            self._recovered()

    def _spool(self, ops: Iterable[Operation]) -> None:
        ops = list(ops)
        try:
            self.spool.append(ops)
            self.spooled += len(ops)
        except Exception:
            logger.exception("MLflow tracking: could not spool %d operations", len(ops))

    def _failed(self) -> None:
        self._retry_at = time.monotonic() + _BACKOFF_S[min(self._failures, len(_BACKOFF_S) - 1)]
        self._failures += 1

    def _recovered(self) -> None:
        self._failures = 0
        self._retry_at = 0.0


def database_uri(config: MLflowConfig) -> str | None:
    """The tracking database finished runs can be written to in bulk, if any: the tracking URI
    itself when it is one, else ``ALLELE_MLFLOW_BACKEND_STORE_URI`` (a server's database)."""
    scheme = config.tracking_uri.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme in ("sqlite", "postgresql", "mysql", "mssql"):
        return config.tracking_uri
    return config.backend_store_uri or None


def _yield_cpu() -> None:
    """Lower this thread's CPU priority (Linux: nice is per thread; the lanes it starts inherit
    it), so sending while a suite runs takes CPU from the benchmark only when it has spare."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + 10))
    except (AttributeError, OSError):  # not Linux, or not allowed: send at normal priority
        pass


def _transient(exc: BaseException) -> bool:
    return not isinstance(exc, Rejected) and is_transient(exc)


def coalesce(ops: list[Operation]) -> list[Operation]:
    """Merge neighbouring ``log`` operations of the same run (fewer ``log_batch`` calls)."""
    out: list[Operation] = []
    for op in ops:
        last = out[-1] if out else None
        if (
            last is not None
            and op["op"] == "log"
            and last["op"] == "log"
            and last["key"] == op["key"]
            and not (set(last.get("params", {})) & set(op.get("params", {})))
        ):
            out[-1] = {
                **last,
                "params": {**last.get("params", {}), **op.get("params", {})},
                "tags": {**last.get("tags", {}), **op.get("tags", {})},
                "metrics": [*last.get("metrics", []), *op.get("metrics", [])],
            }
        else:
            out.append(op)
    return out


_open_loggers: weakref.WeakSet[ExperimentLogger] = weakref.WeakSet()


@atexit.register
def _close_open_loggers() -> None:
    # At exit, what is still queued is spooled rather than lost.
    for log in list(_open_loggers):
        try:
            log.close(timeout=10.0)
        except Exception:
            logger.exception("MLflow tracking: closing at exit failed")
