"""Stored series and alerts as JSON, CSV or Parquet files (never pickle).

Series layouts:

* JSON: ``{"exported_at", "series": [{"name", "kind", "labels": {..}, "timestamps": [epoch s],
  "values": [..]}]}`` -- one object per series, columns as arrays;
* CSV and Parquet: one row per point, long format: ``name, kind, labels, timestamp, value``.
  ``labels`` is the canonical JSON text of the label set; ``timestamp`` is ISO 8601 UTC in CSV
  and ``timestamp[us, tz=UTC]`` in Parquet.

Alerts are the stored ``Alert.to_dict()`` records: a JSON list, or one row per alert in CSV and
Parquet (nested values such as ``labels`` as JSON text). Parquet needs the ``parquet`` extra
(pyarrow), imported only when asked for.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from allele.errors import ValidationError, require
from allele.observability.clock import utc_datetime
from allele.observability.store.epoch import Instant
from allele.observability.store.repository.base import labels_to_text
from allele.observability.store.repository.series import SeriesPoints
from allele.observability.store.repository.store import Store
from allele.observability.types import SeriesKey

FORMATS = ("json", "csv", "parquet")
SERIES_COLUMNS = ("name", "kind", "labels", "timestamp", "value")


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValidationError(
            f"format={fmt!r} is not supported; choose one of {', '.join(FORMATS)}"
        )
    return fmt


def _iso(seconds: float) -> str:
    return utc_datetime(seconds).isoformat()


def export_series(
    store: Store,
    fmt: str,
    output: str | Path | None = None,
    *,
    name: str | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
) -> int:
    """Write the stored points (optionally of metric ``name``, in ``[since, until)``).

    ``output`` is a file path, or ``None`` for standard output (JSON and CSV only). Returns the
    number of points written.
    """
    _check_format(fmt)
    series = ((k, p) for k, p in store.iter_series(name, since, until) if len(p))
    if fmt == "parquet":
        return _series_parquet(series, _parquet_path(output))
    with _open_text(output) as out:
        if fmt == "json":
            return _series_json(series, out)
        return _series_csv(series, out)


def export_alerts(
    store: Store, fmt: str, output: str | Path | None = None, *, state: str | None = None
) -> int:
    """Write the stored alerts (optionally only those in ``state``); returns how many."""
    _check_format(fmt)
    alerts = [stored.to_dict() for stored in store.load_alerts(state)]
    if fmt == "parquet":
        pa = require("pyarrow", "parquet")
        pq = require("pyarrow.parquet", "parquet")
        table = pa.Table.from_pylist([_flat(a) for a in alerts])  # type: ignore[attr-defined]
        pq.write_table(table, str(_parquet_path(output)))  # type: ignore[attr-defined]
        return len(alerts)
    with _open_text(output) as out:
        if fmt == "json":
            json.dump({"exported_at": _iso(time.time()), "alerts": alerts}, out, indent=2)
            out.write("\n")
        else:
            columns = sorted({k for a in alerts for k in a}, key=lambda k: (k != "alert_id", k))
            writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(_flat(a) for a in alerts)
    return len(alerts)


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with nested values as JSON text (one column each in CSV and Parquet)."""
    return {
        k: json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v
        for k, v in record.items()
    }


def _parquet_path(output: str | Path | None) -> Path:
    if output is None:
        raise ValidationError("Parquet is a binary format: give an output path (--output FILE)")
    return Path(output)


class _open_text:
    """A text stream on ``output``, or on standard output when it is None (left open)."""

    def __init__(self, output: str | Path | None) -> None:
        self._output = output
        self._file: IO[str] | None = None

    def __enter__(self) -> IO[str]:
        if self._output is None:
            return sys.stdout
        self._file = Path(self._output).open("w", encoding="utf-8", newline="")
        return self._file

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()


def _series_json(series: Iterator[tuple[SeriesKey, SeriesPoints]], out: IO[str]) -> int:
    written = 0
    out.write('{"exported_at": ' + json.dumps(_iso(time.time())) + ', "series": [')
    for index, (key, points) in enumerate(series):
        item = {
            "name": key.name,
            "kind": str(key.kind),
            "labels": dict(key.labels),
            "timestamps": points.timestamps.tolist(),
            "values": points.values.tolist(),
        }
        out.write(("\n  " if index == 0 else ",\n  ") + json.dumps(item))
        written += len(points)
    out.write("\n]}\n")
    return written


def _series_csv(series: Iterator[tuple[SeriesKey, SeriesPoints]], out: IO[str]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SERIES_COLUMNS)
    written = 0
    for key, points in series:
        labels = labels_to_text(key.labels)
        kind = str(key.kind)
        stamps = [_iso(ts) for ts in points.timestamps.tolist()]
        writer.writerows(
            (key.name, kind, labels, stamp, repr(value))
            for stamp, value in zip(stamps, points.values.tolist(), strict=True)
        )
        written += len(points)
    return written


def _series_parquet(series: Iterator[tuple[SeriesKey, SeriesPoints]], path: Path) -> int:
    pa: Any = require("pyarrow", "parquet")
    pq: Any = require("pyarrow.parquet", "parquet")
    schema = pa.schema(
        [
            ("name", pa.dictionary(pa.int32(), pa.string())),
            ("kind", pa.dictionary(pa.int32(), pa.string())),
            ("labels", pa.dictionary(pa.int32(), pa.string())),
            ("timestamp", pa.timestamp("us", tz="UTC")),
            ("value", pa.float64()),
        ]
    )
    written = 0
    with pq.ParquetWriter(str(path), schema) as writer:
        for key, points in series:
            n = len(points)
            # One dictionary entry per column per series: the file stays small for long series.
            zeros = pa.array(np.zeros(n, dtype=np.int32))
            micros = np.round(points.timestamps * 1e6).astype("int64")
            columns = [
                pa.DictionaryArray.from_arrays(zeros, pa.array([key.name])),
                pa.DictionaryArray.from_arrays(zeros, pa.array([str(key.kind)])),
                pa.DictionaryArray.from_arrays(zeros, pa.array([labels_to_text(key.labels)])),
                pa.array(micros, type=pa.timestamp("us", tz="UTC")),
                pa.array(points.values, type=pa.float64()),
            ]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
            written += n
    return written
