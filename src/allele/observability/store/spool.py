"""The spool: points a shutdown could not write to the store, kept on disk for the next start.

A process that must stop while its store is locked or unreachable writes what it still holds
into one ``.npz`` file here (numpy arrays and a JSON header, no pickle) instead of losing it;
the next flusher on the same store takes the files, writes their points and deletes them.

A file is taken by renaming it to ``<name>.taken-<pid>``, so two processes starting at once do
not both write it; a taken file whose process has died is taken again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from allele.observability.store.faults import safe_url
from allele.observability.types import MetricType, SeriesBatch, SeriesKey

log = logging.getLogger(__name__)

_SUFFIX = ".npz"


def spool_dir_for(uri: str) -> Path | None:
    """Where the spool of the store at ``uri`` lives: beside a SQLite file, else in the user's
    state directory (one folder per store); None for an in-memory store."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(uri)
    except Exception:
        return None
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or "mode=memory" in str(url):
            return None
        path = Path(database)
        return path.with_name(path.name + ".spool")
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    digest = hashlib.sha256(safe_url(uri).encode()).hexdigest()[:16]
    return base / "allele" / "spool" / digest


class Spool:
    """Spooled batches in ``directory`` (created on the first ``save``)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def save(self, batches: list[SeriesBatch]) -> int:
        """Write ``batches`` to one new file; returns the points saved. Raises ``OSError``."""
        batches = [b for b in batches if len(b.values)]
        if not batches:
            return 0
        self.directory.mkdir(parents=True, exist_ok=True)
        header = [
            {"name": b.key.name, "labels": list(map(list, b.key.labels)), "kind": str(b.key.kind)}
            for b in batches
        ]
        arrays: dict[str, np.ndarray] = {
            "header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
        }
        for i, batch in enumerate(batches):
            arrays[f"t{i}"] = np.asarray(batch.timestamps, dtype=np.float64)
            arrays[f"v{i}"] = np.asarray(batch.values, dtype=np.float64)
        stem = f"pending-{time.time_ns()}-{os.getpid()}"
        partial = self.directory / f"{stem}.partial"
        with open(partial, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
            handle.flush()
            os.fsync(handle.fileno())
        partial.rename(self.directory / f"{stem}{_SUFFIX}")  # complete files only
        return sum(len(b.values) for b in batches)

    def take(self) -> list[tuple[Path, list[SeriesBatch]]]:
        """Claim every spooled file (and those a dead process had claimed); returns each
        claimed path with its batches. ``done(path)`` deletes one once written."""
        if not self.directory.is_dir():
            return []
        taken = []
        for path in sorted(self.directory.iterdir()):
            claimed = self._claim(path)
            if claimed is None:
                continue
            try:
                taken.append((claimed, _read(claimed)))
            except Exception as exc:  # a damaged file must not stop the others
                log.error("cannot read the spooled points in %s (%s); leaving it", claimed, exc)
        return taken

    def _claim(self, path: Path) -> Path | None:
        name = path.name
        if name.endswith(_SUFFIX):
            base = name
        elif ".taken-" in name:
            base, _, pid = name.rpartition(".taken-")
            if not pid.isdigit() or _alive(int(pid)):
                return None
        else:
            return None
        target = path.with_name(f"{base}.taken-{os.getpid()}")
        try:
            path.rename(target)
        except OSError:
            return None  # another process claimed it first
        return target

    @staticmethod
    def done(path: Path) -> None:
        """Delete a claimed file whose points are now in the store."""
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(path: Path) -> list[SeriesBatch]:
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(bytes(data["header"]).decode("utf-8"))
        return [
            SeriesBatch(
                SeriesKey(
                    entry["name"],
                    tuple((str(k), str(v)) for k, v in entry["labels"]),
                    MetricType(entry["kind"]),
                ),
                np.array(data[f"t{i}"], dtype=np.float64),
                np.array(data[f"v{i}"], dtype=np.float64),
            )
            for i, entry in enumerate(header)
        ]
