"""What could not be sent to MLflow yet, on disk, in order, until it is sent once.

An operation is a JSON-ready dict (see ``benchmarking/experiment_logger.py`` for the kinds).
Operations name their MLflow run by Allele's own key, never by an MLflow run id (the run may not
exist yet), so a spooled operation means the same thing whichever process replays it.

Layout of ``ALLELE_MLFLOW_SPOOL_DIR``:

- ``<batch>.jsonl``: one operation per line, in the order they must be sent; each ``append``
  writes whole lines and fsyncs, so a crash loses at most the append in progress;
- ``<batch>.done``: how many leading lines were sent (replay resumes after them);
- ``files/<batch>/...``: copies of the artifact files the operations upload (the originals may be
  temporary);
- ``rejected.jsonl``: operations MLflow refused for good (a bad value), with the error, kept
  for inspection instead of being retried forever.

Replays are safe to repeat: creating a run looks for Allele's key first, and MLflow ignores a
metric point, parameter or tag logged again with the same value.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

Operation = dict[str, Any]


@dataclass
class ReplayResult:
    """What one ``Spool.replay`` did: operations sent, refused for good, and still waiting."""

    sent: int = 0
    rejected: int = 0
    pending: int = 0

    def __iadd__(self, other: ReplayResult) -> ReplayResult:
        self.sent += other.sent
        self.rejected += other.rejected
        self.pending += other.pending
        return self


class SendFailed(Exception):
    """Raised by a replay's ``send`` for an operation that may succeed later."""


class Rejected(Exception):
    """Raised by a replay's ``send`` for an operation MLflow refused for good."""


class Spool:
    """A directory of operations waiting for MLflow.

    >>> import tempfile
    >>> spool = Spool(tempfile.mkdtemp())
    >>> spool.append([{"op": "end", "key": "suite:1", "status": "FINISHED"}])
    >>> spool.pending()
    1
    >>> spool.replay(lambda op: None).sent
    1
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).expanduser()
        self._batch = uuid.uuid4().hex

    def append(self, operations: Iterable[Operation]) -> None:
        """Add ``operations`` at the end of this process's batch (artifact files are copied)."""
        ops = [self._keep_files(op) for op in operations]
        if not ops:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{self._batch}.jsonl"
        text = "".join(json.dumps(op, allow_nan=True, sort_keys=True) + "\n" for op in ops)
        with self._locked(path, wait=True), open(path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def pending(self) -> int:
        """How many operations wait to be sent."""
        return sum(len(lines) - done for _, lines, done in self._batches())

    def replay(self, send: Callable[[Operation], None]) -> ReplayResult:
        """Send every waiting operation in order with ``send``; stop at the first SendFailed.

        ``send`` raises SendFailed when the operation may succeed later (what follows it waits
        too) and Rejected when it never will (it moves to ``rejected.jsonl``). A batch that
        another process is replaying is skipped.
        """
        result = ReplayResult()
        for path, lines, done in self._batches():
            with self._locked(path) as locked:
                if not locked:
                    result.pending += len(lines) - done
                    continue
                # Read again under the lock: another process may have gone on meanwhile.
                lines, done = _read_lines(path), self._done(path)
                outcome = self._replay_batch(path, lines, done, send)
                result += outcome
                if outcome.pending:
                    result.pending += self.pending_after(path)
                    break
        return result

    def pending_after(self, path: Path) -> int:
        """Operations of the batches after ``path`` (they wait behind it)."""
        names = sorted(p.name for p in self.directory.glob("*.jsonl") if p.name != "rejected.jsonl")
        later = [n for n in names if n > path.name]
        total = 0
        for name in later:
            p = self.directory / name
            total += len(_read_lines(p)) - self._done(p)
        return total

    # internals ---------------------------------------------------------------------------------

    def _replay_batch(
        self, path: Path, lines: list[str], done: int, send: Callable[[Operation], None]
    ) -> ReplayResult:
        result = ReplayResult()
        for index in range(done, len(lines)):
            op = json.loads(lines[index])
            try:
                send(op)
                result.sent += 1
            except Rejected as exc:
                self._reject(op, str(exc))
                result.rejected += 1
            except SendFailed:
                self._set_done(path, index)
                result.pending = len(lines) - index
                return result
            if (index + 1) % 64 == 0:
                self._set_done(path, index + 1)
        self._finish(path)
        return result

    def _batches(self) -> Iterator[tuple[Path, list[str], int]]:
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("*.jsonl")):
            if path.name == "rejected.jsonl":
                continue
            yield path, _read_lines(path), self._done(path)

    def _done(self, path: Path) -> int:
        try:
            return int(path.with_suffix(".done").read_text() or 0)
        except (OSError, ValueError):
            return 0

    def _set_done(self, path: Path, count: int) -> None:
        marker = path.with_suffix(".done")
        tmp = marker.with_suffix(".done.tmp")
        tmp.write_text(str(count))
        os.replace(tmp, marker)

    def _finish(self, path: Path) -> None:
        shutil.rmtree(self.directory / "files" / path.stem, ignore_errors=True)
        path.with_suffix(".done").unlink(missing_ok=True)
        path.unlink(missing_ok=True)

    def _reject(self, op: Operation, error: str) -> None:
        logger.error("MLflow refused %s for %s: %s", op.get("op"), op.get("key"), error)
        self.directory.mkdir(parents=True, exist_ok=True)  # a refusal can come before any spooling
        with open(self.directory / "rejected.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"error": error, "operation": op}, allow_nan=True) + "\n")

    def _keep_files(self, op: Operation) -> Operation:
        """An artifact operation pointing at a copy of its file inside the spool."""
        source = op.get("path")
        if op.get("op") != "artifact" or not source:
            return op
        folder = self.directory / "files" / self._batch
        if Path(source).is_relative_to(folder):
            return op
        target = folder / uuid.uuid4().hex[:12] / Path(source).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        return {**op, "path": str(target)}

    @contextmanager
    def _locked(self, path: Path, wait: bool = False) -> Iterator[bool]:
        # Lock files stay: removing one while another process waits on it would let two
        # processes hold "the" lock at once.
        flags = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
        with open(path.with_suffix(".lock"), "a+") as lock:
            try:
                fcntl.flock(lock.fileno(), flags)
            except OSError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    # A line cut by a crash mid-append has no newline: it was never acknowledged, drop it.
    return [line for line in text.split("\n")[:-1] if line.strip()] if text else []
